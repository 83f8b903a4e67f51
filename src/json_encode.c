/*
 * json_encode.c: core.json_encode, which encodes Lua values as JSON for
 * request bodies, and core.null, core.empty_array and core.array_mt, the
 * values that steer it. The encoder is strict by design: a body that cannot
 * be represented exactly (NaN, invalid UTF-8, a sparse or mixed table, a
 * cycle) is refused with the path of the value, so nothing ever sends a
 * truncated or invalid document. Answers are read by json_scan.c.
 */
#include "json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "core.h"
#include "json_bytes.h"

/* The address of this byte is core.empty_array: a value that encodes as []. */
static const char empty_array_sentinel = 0;

/* One step of the path from the document's root to the value being encoded. */
typedef struct path_step {
    const struct path_step *parent;
    const char *key; /* object member name, or NULL for an array index */
    size_t keylen;
    lua_Integer index;
} path_step;

typedef struct encoder {
    lua_State *L;
    ek_buffer *out;
    int depth;
    const void *open_tables[EK_JSON_MAX_DEPTH];
    char *err;
    size_t errlen;
} encoder;

static int is_identifier(const char *s, size_t n)
{
    size_t i;
    if (n == 0 || n > 64 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return 0;
    for (i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

/* Writes the path of step into dst ("$.a[2]"), truncating safely. */
static size_t format_path(const path_step *step, char *dst, size_t cap)
{
    const path_step *steps[EK_JSON_MAX_DEPTH + 1];
    size_t n = 0, len;
    int i;

    for (; step != NULL && n < EK_JSON_MAX_DEPTH + 1; step = step->parent)
        steps[n++] = step;
    len = (size_t)snprintf(dst, cap, "$");
    for (i = (int)n - 1; i >= 0 && len < cap; i--) {
        const path_step *s = steps[i];
        int w;
        if (s->key == NULL) {
            w = snprintf(dst + len, cap - len, "[%lld]", (long long)s->index);
        } else if (is_identifier(s->key, s->keylen)) {
            w = snprintf(dst + len, cap - len, ".%.*s", (int)s->keylen, s->key);
        } else {
            /* Odd keys are shown quoted, with unprintable bytes as \xNN. */
            size_t k;
            w = snprintf(dst + len, cap - len, "[\"");
            for (k = 0; k < s->keylen && k < 40 && w >= 0 && len + (size_t)w < cap; k++) {
                unsigned char c = (unsigned char)s->key[k];
                int x = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
                    ? snprintf(dst + len + w, cap - len - w, "%c", c)
                    : snprintf(dst + len + w, cap - len - w, "\\x%02X", c);
                w += x;
            }
            if (len + (size_t)w < cap)
                w += snprintf(dst + len + w, cap - len - w, "%s\"]", s->keylen > 40 ? "..." : "");
        }
        if (w < 0)
            break;
        len += (size_t)w;
    }
    return len < cap ? len : cap - 1;
}

/* Longest path kept in a message; deeper paths keep their head and tail. */
#define MAX_PATH_TEXT 96

static int fail(encoder *e, const path_step *at, const char *fmt, ...)
{
    char path[1024];
    size_t plen = format_path(at, path, sizeof path), n;
    va_list ap;

    if (plen > MAX_PATH_TEXT) {
        size_t head = MAX_PATH_TEXT / 2, tail = MAX_PATH_TEXT / 2 - 3;
        memcpy(path + head, "...", 3);
        memmove(path + head + 3, path + plen - tail, tail + 1);
    }
    n = (size_t)snprintf(e->err, e->errlen, "%s", path);
    if (n >= e->errlen)
        n = e->errlen - 1;
    if (n + 2 < e->errlen) {
        memcpy(e->err + n, ": ", 3);
        n += 2;
        va_start(ap, fmt);
        vsnprintf(e->err + n, e->errlen - n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int out_of_memory(encoder *e, const path_step *at)
{
    return fail(e, at, "out of memory");
}


/* Appends the escape of c, a byte that JSON strings must not hold raw ('"', '\\', controls). */
static int append_escape(ek_buffer *out, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    char esc[6] = { '\\', 0, '0', '0', 0, 0 };
    size_t elen = 2;

    switch (c) {
    case '"': esc[1] = '"'; break;
    case '\\': esc[1] = '\\'; break;
    case '\b': esc[1] = 'b'; break;
    case '\f': esc[1] = 'f'; break;
    case '\n': esc[1] = 'n'; break;
    case '\r': esc[1] = 'r'; break;
    case '\t': esc[1] = 't'; break;
    default:
        esc[1] = 'u';
        esc[4] = hex[c >> 4];
        esc[5] = hex[c & 15];
        elen = 6;
    }
    return ek_buffer_append(out, esc, elen);
}

static int encode_string(encoder *e, const char *str, size_t n, const path_step *at, int is_key)
{
    const unsigned char *s = (const unsigned char *)str;
    ek_buffer *out = e->out;
    size_t i = 0;

    if (ek_buffer_reserve(out, n + 2) != 0)
        return out_of_memory(e, at);
    ek_buffer_put(out, '"');
    while (i < n) {
        size_t run = i, len = 1;
        int rc;
        while (run < n && byte_class[s[run]] == 0)
            run++;
        if (run > i) {
            len = run - i;
            rc = ek_buffer_append(out, str + i, len);
        } else if (byte_class[s[i]] == 1) {
            rc = append_escape(out, s[i]);
        } else {
            len = utf8_sequence(s + i, n - i);
            if (len == 0)
                return fail(e, at, "%sinvalid UTF-8 at byte %lu", is_key ? "key has " : "",
                            (unsigned long)(i + 1));
            rc = ek_buffer_append(out, str + i, len);
        }
        if (rc != 0)
            return out_of_memory(e, at);
        i += len;
    }
    if (ek_buffer_reserve(out, 1) != 0)
        return out_of_memory(e, at);
    ek_buffer_put(out, '"');
    return 0;
}

static int encode_number(encoder *e, int idx, const path_step *at)
{
    char num[40];
    int len;

    if (ek_isinteger(e->L, idx)) {
        len = snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(e->L, idx));
    } else {
        double d = (double)lua_tonumber(e->L, idx);
        if (isnan(d) || isinf(d))
            return fail(e, at, "%s is not a finite number (JSON has no NaN or infinity)",
                        isnan(d) ? "NaN" : "infinity");
        if (d == floor(d) && fabs(d) < 9007199254740992.0) {
            len = snprintf(num, sizeof num, "%.0f", d);
        } else {
            /* The shortest of 15 or 17 digits that reads back as the same double. */
            int i;
            len = snprintf(num, sizeof num, "%.15g", d);
            if (strtod(num, NULL) != d)
                len = snprintf(num, sizeof num, "%.17g", d);
            /* A locale's decimal comma must never reach the JSON text. */
            for (i = 0; i < len; i++)
                if (num[i] == ',')
                    num[i] = '.';
        }
    }
    if (ek_buffer_append(e->out, num, (size_t)len) != 0)
        return out_of_memory(e, at);
    return 0;
}

static int encode_value(encoder *e, int idx, const path_step *at);

static const char *describe_key(lua_State *L, int idx, char *buf, size_t cap)
{
    if (lua_type(L, idx) == LUA_TNUMBER) {
        snprintf(buf, cap, "number %.14g", (double)lua_tonumber(L, idx));
        return buf;
    }
    return lua_typename(L, lua_type(L, idx));
}

static int is_array_index(lua_State *L, int idx, lua_Integer *out)
{
    lua_Number d;
    if (lua_type(L, idx) != LUA_TNUMBER)
        return 0;
    if (ek_isinteger(L, idx)) {
        *out = lua_tointeger(L, idx);
        return *out >= 1;
    }
    d = lua_tonumber(L, idx);
    if (d >= 1 && d == floor(d) && d < 9007199254740992.0) {
        *out = (lua_Integer)d;
        return 1;
    }
    return 0;
}

static int has_array_mt(lua_State *L, int idx)
{
    int marked;
    if (!lua_getmetatable(L, idx))
        return 0;
    luaL_getmetatable(L, EK_JSON_ARRAY_MT);
    marked = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return marked;
}

/*
 * Decides from the keys alone, before anything is written, whether the table
 * at idx is an array (*count values at 1..n) or an object; -1 when it is neither.
 */
static int classify_table(encoder *e, int idx, const path_step *at, lua_Integer *count, int *is_array)
{
    lua_State *L = e->L;
    lua_Integer strings = 0, max_index = 0;
    int marked = has_array_mt(L, idx), rc;
    char keybuf[48];

    *count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_Integer k;
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            strings++;
        } else if (is_array_index(L, -1, &k)) {
            if (k > max_index)
                max_index = k;
        } else {
            rc = fail(e, at, "has a %s key (object keys must be strings, array indices 1..n)",
                      describe_key(L, -1, keybuf, sizeof keybuf));
            lua_pop(L, 1);
            return rc;
        }
        (*count)++;
    }
    if (strings > 0 && strings < *count)
        return fail(e, at, "mixes string keys and array indices");
    if (strings > 0 && marked)
        return fail(e, at, "is marked as an array but has string keys");
    if (strings == 0 && max_index != *count)
        return fail(e, at, "is a sparse array (%lld values, largest index %lld)",
                    (long long)*count, (long long)max_index);
    /* An empty table is {} (as documented); core.array_mt makes it []. */
    *is_array = strings == 0 && (*count > 0 || marked);
    return 0;
}

static int encode_array(encoder *e, int idx, const path_step *at, lua_Integer count)
{
    lua_Integer i;
    int rc;

    if (ek_buffer_append(e->out, "[", 1) != 0)
        return out_of_memory(e, at);
    for (i = 1; i <= count; i++) {
        path_step step = { at, NULL, 0, i };
        if (i > 1 && ek_buffer_append(e->out, ",", 1) != 0)
            return out_of_memory(e, &step);
        lua_rawgeti(e->L, idx, (int)i);
        rc = encode_value(e, lua_gettop(e->L), &step);
        lua_pop(e->L, 1);
        if (rc != 0)
            return rc;
    }
    return ek_buffer_append(e->out, "]", 1) != 0 ? out_of_memory(e, at) : 0;
}

static int encode_object(encoder *e, int idx, const path_step *at)
{
    lua_State *L = e->L;
    int first = 1, rc = 0;

    if (ek_buffer_append(e->out, "{", 1) != 0)
        return out_of_memory(e, at);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        path_step step = { at, NULL, 0, 0 };
        step.key = lua_tolstring(L, -2, &step.keylen);
        if (!first && ek_buffer_append(e->out, ",", 1) != 0)
            rc = out_of_memory(e, &step);
        if (rc == 0)
            rc = encode_string(e, step.key, step.keylen, &step, 1);
        if (rc == 0 && ek_buffer_append(e->out, ":", 1) != 0)
            rc = out_of_memory(e, &step);
        if (rc == 0)
            rc = encode_value(e, lua_gettop(L), &step);
        lua_pop(L, 1);
        if (rc != 0) {
            lua_pop(L, 1);
            return rc;
        }
        first = 0;
    }
    return ek_buffer_append(e->out, "}", 1) != 0 ? out_of_memory(e, at) : 0;
}

static int encode_table(encoder *e, int idx, const path_step *at)
{
    const void *self = lua_topointer(e->L, idx);
    lua_Integer count;
    int is_array, d, rc;

    if (e->depth >= EK_JSON_MAX_DEPTH)
        return fail(e, at, "nested too deep (more than %d levels)", EK_JSON_MAX_DEPTH);
    for (d = 0; d < e->depth; d++)
        if (e->open_tables[d] == self)
            return fail(e, at, "cycle: the table contains itself");
    if (!lua_checkstack(e->L, 6))
        return fail(e, at, "nested too deep for the Lua stack");
    if (classify_table(e, idx, at, &count, &is_array) != 0)
        return -1;
    e->open_tables[e->depth++] = self;
    rc = is_array ? encode_array(e, idx, at, count) : encode_object(e, idx, at);
    e->depth--;
    return rc;
}

static int encode_value(encoder *e, int idx, const path_step *at)
{
    lua_State *L = e->L;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return ek_buffer_append(e->out, "null", 4) ? out_of_memory(e, at) : 0;
    case LUA_TBOOLEAN:
        return (lua_toboolean(L, idx) ? ek_buffer_append(e->out, "true", 4)
                                      : ek_buffer_append(e->out, "false", 5))
            ? out_of_memory(e, at) : 0;
    case LUA_TNUMBER:
        return encode_number(e, idx, at);
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        return encode_string(e, s, n, at, 0);
    }
    case LUA_TTABLE:
        return encode_table(e, idx, at);
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL)
            return ek_buffer_append(e->out, "null", 4) ? out_of_memory(e, at) : 0;
        if (lua_touserdata(L, idx) == (void *)&empty_array_sentinel)
            return ek_buffer_append(e->out, "[]", 2) ? out_of_memory(e, at) : 0;
        return fail(e, at, "cannot encode a light userdata (only core.null and core.empty_array)");
    default:
        return fail(e, at, "cannot encode a %s", lua_typename(L, lua_type(L, idx)));
    }
}

int ek_json_encode(lua_State *L, int idx, ek_buffer *out, char *err, size_t errlen)
{
    encoder e;
    size_t start = out->len;
    int rc;

    e.L = L;
    e.out = out;
    e.depth = 0;
    e.err = err;
    e.errlen = errlen;
    err[0] = '\0';
    rc = encode_value(&e, ek_absindex(L, idx), NULL);
    if (rc != 0)
        out->len = start; /* never leave half a document behind */
    return rc;
}

/* The encoder's reused buffer. A finalizer may call json_encode at any
 * allocation the encoder makes (or while it pushes the result): such a nested
 * call finds the buffer busy and encodes into a buffer of its own. */
typedef struct json_scratch {
    ek_buffer buf;
    int busy;
} json_scratch;

static int json_scratch_gc(lua_State *L)
{
    ek_buffer_free(&((json_scratch *)lua_touserdata(L, 1))->buf);
    return 0;
}

static void new_json_scratch(lua_State *L)
{
    json_scratch *s = (json_scratch *)lua_newuserdata(L, sizeof *s);
    ek_buffer_init(&s->buf);
    s->busy = 0;
    lua_newtable(L);
    lua_pushcfunction(L, json_scratch_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
}

/* core.json_encode(value) -> string; raises naming the path of a value it cannot encode. */
static int l_json_encode(lua_State *L)
{
    json_scratch *s = (json_scratch *)lua_touserdata(L, lua_upvalueindex(1));
    ek_buffer *out = &s->buf;
    char err[256];
    int rc;

    luaL_checkany(L, 1);
    lua_settop(L, 1);
    if (s->busy)
        out = ek_new_scratch(L); /* a nested call: the shared buffer is in use (freed by GC) */
    else
        s->busy = 1;
    ek_buffer_reset(out);
    rc = ek_json_encode(L, 1, out, err, sizeof err);
    if (rc == 0)
        lua_pushlstring(L, out->data, out->len);
    if (out == &s->buf) {
        s->busy = 0;
        ek_buffer_shrink(out, EK_KEEP_BUFFER);
    }
    if (rc != 0)
        return luaL_error(L, "envoke.core: cannot encode JSON: %s", err);
    return 1;
}

void ek_open_json_encode(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        { "json_encode", l_json_encode },
        { NULL, NULL },
    };

    new_json_scratch(L);
    ek_setfuncs(L, funcs, 1);

    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    lua_pushlightuserdata(L, (void *)&empty_array_sentinel);
    lua_setfield(L, -2, "empty_array");
    luaL_newmetatable(L, EK_JSON_ARRAY_MT);
    lua_pushliteral(L, "array");
    lua_setfield(L, -2, "__jsontype");
    lua_setfield(L, -2, "array_mt");
}
