/*
 * json.c: encodes Lua values as JSON for request bodies, and scans response
 * envelopes without building tables.
 *
 * The encoder is strict by design: a body that cannot be represented exactly
 * (NaN, invalid UTF-8, a sparse or mixed table, a cycle) is refused with the
 * path of the value, so nothing ever sends a truncated or invalid document.
 *
 * The scanner validates a whole document and returns the raw text of a few
 * top-level members, so a write's answer can be checked at once and decoded
 * only when someone reads it.
 */
#include "json.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compat.h"
#include "core.h"

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

/* What each byte needs inside a JSON string: 0 copy, 1 escape, 2 UTF-8 lead or invalid. */
static const unsigned char byte_class[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x00 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x10 */
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x20: '"' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* 0x50: '\\' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 0x80 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

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

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if invalid. */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t len, i;

    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
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

/* ---- scanning ----------------------------------------------------------- */

/*
 * The scanner accepts RFC 8259 JSON only, and within it only what lua-cjson
 * 2.1.0 decodes: a write's answer is decoded with cjson when a field is read,
 * so a document accepted here must never fail there (a lone UTF-16 surrogate
 * escape is valid JSON grammar but cjson refuses it). Where cjson is laxer
 * (raw control characters or invalid UTF-8 in strings, numbers such as 01,
 * 0x10, 1. or inf, text after a NUL byte, 101 to 1000 levels of nesting) the
 * scanner refuses: such an answer is not JSON, and a protocol error at the
 * call is the right outcome. spec/core/json_members_spec.lua pins both sides.
 */

/*
 * The scan functions take the offset they start at and return the offset
 * after what they scanned, or SCAN_FAILED with err_at and why set: offsets
 * stay in registers on the hot path, and every value ends past byte 0 (the
 * top-level '{' comes first), so 0 is free to mean failure.
 */
typedef struct scanner {
    const unsigned char *s;
    size_t n;
    int depth;
    size_t err_at;   /* offset of the first problem */
    const char *why; /* what the problem is */
} scanner;

#define SCAN_FAILED 0

static size_t scan_fail(scanner *sc, size_t at, const char *why)
{
    sc->err_at = at;
    sc->why = why;
    return SCAN_FAILED;
}

/* Fails at i: "what" was expected, or the text ended. */
static size_t scan_expected(scanner *sc, size_t i, const char *what)
{
    return scan_fail(sc, i, i >= sc->n ? "unexpected end of text" : what);
}

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Server JSON is compact: one test of the first byte, the loop only after real space. */
static inline size_t skip_space(const scanner *sc, size_t i)
{
    if (i < sc->n && sc->s[i] <= ' ')
        while (i < sc->n && is_space(sc->s[i]))
            i++;
    return i;
}

static int hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
        return (c | 0x20) - 'a' + 10;
    return -1;
}

/* The 16-bit unit of four hex digits at p (avail bytes readable), or -1. */
static long hex4(const unsigned char *p, size_t avail)
{
    long v = 0;
    int k;
    if (avail < 4)
        return -1;
    for (k = 0; k < 4; k++) {
        int d = hex_digit(p[k]);
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/*
 * Checks the escape at s[i] (a backslash) and returns its length; 0 after
 * scan_fail. A \u escape of a UTF-16 surrogate must be a high one followed by
 * a low one: lua-cjson refuses anything else ("invalid unicode escape code"),
 * so a field read would raise after a save had succeeded.
 */
static size_t scan_escape(scanner *sc, size_t i)
{
    const unsigned char *s = sc->s;
    size_t n = sc->n;
    long unit, low;

    if (i + 1 >= n)
        return scan_fail(sc, n, "unterminated string");
    if (s[i + 1] != 'u')
        return s[i + 1] != 0 && strchr("\"\\/bfnrt", s[i + 1]) != NULL
            ? 2 : scan_fail(sc, i, "invalid escape in a string");
    unit = hex4(s + i + 2, n - i - 2);
    if (unit < 0)
        return scan_fail(sc, i, "invalid \\u escape (four hex digits needed)");
    if (unit < 0xD800 || unit > 0xDFFF)
        return 6;
    if (unit <= 0xDBFF && i + 7 < n && s[i + 6] == '\\' && s[i + 7] == 'u') {
        low = hex4(s + i + 8, n - i - 8);
        if (low >= 0xDC00 && low <= 0xDFFF)
            return 12;
    }
    return scan_fail(sc, i, "lone UTF-16 surrogate in a \\u escape (not a character)");
}

#define BYTES(b) (UINT64_C(0x0101010101010101) * (b))

/*
 * Flags (0x80) the bytes of x that are not byte_class 0: below 0x20, '"', '\\',
 * or 0x80 and up; 0 when there is none. A subtraction flags a byte that is
 * one of those, or 0x80 and up anyway, and its borrow runs on only from such
 * a byte: the lowest flag is always exact.
 */
static inline uint64_t special8(uint64_t x)
{
    uint64_t q = x ^ BYTES('"'), b = x ^ BYTES('\\');
    return ((x - BYTES(0x20)) | (q - BYTES(1)) | (b - BYTES(1)) | x) & BYTES(0x80);
}

/* The offset of the first byte from i on that is not byte_class 0 (n if none):
 * eight bytes at a time while none is, then that byte itself. */
static inline size_t plain_run(const unsigned char *s, size_t i, size_t n)
{
    uint64_t x, special;

    for (; n - i >= 8; i += 8) {
        memcpy(&x, s + i, 8); /* one unaligned load */
        if ((special = special8(x)) != 0) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            /* The lowest flag is exact (borrows run upwards), and the lowest byte comes first. */
            return i + (size_t)(__builtin_ctzll(special) >> 3);
#else
            break;
#endif
        }
    }
    while (i < n && byte_class[s[i]] == 0)
        i++;
    return i;
}

/* The rest of a string from i, the first byte that is not byte_class 0: escapes, UTF-8, its end. */
static size_t scan_string_rest(scanner *sc, size_t i)
{
    const unsigned char *s = sc->s;
    size_t n = sc->n, len;

    for (;; i = plain_run(s, i + len, n)) {
        if (i >= n)
            return scan_fail(sc, n, "unterminated string");
        if (s[i] == '"')
            return i + 1;
        if (s[i] == '\\')
            len = scan_escape(sc, i);
        else if (s[i] < 0x20)
            return scan_fail(sc, i, "control character in a string (must be escaped)");
        else if ((len = utf8_sequence(s + i, n - i)) == 0)
            return scan_fail(sc, i, "invalid UTF-8 in a string");
        if (len == 0)
            return SCAN_FAILED;
    }
}

/* Scans the string whose opening quote is at i. Inlined where it is called:
 * a plain string, the common case, then calls nothing. */
static inline size_t scan_string(scanner *sc, size_t i)
{
    i = plain_run(sc->s, i + 1, sc->n);
    return i < sc->n && sc->s[i] == '"' ? i + 1 : scan_string_rest(sc, i);
}

static size_t skip_digits(const unsigned char *s, size_t i, size_t n)
{
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    return i;
}

/* Scans the number at i (a '-' or a digit). */
static size_t scan_number(scanner *sc, size_t i)
{
    const unsigned char *s = sc->s;
    size_t n = sc->n, end;

    if (s[i] == '-')
        i++;
    if (i < n && s[i] == '0') {
        if (++i < n && s[i] >= '0' && s[i] <= '9')
            return scan_fail(sc, i, "invalid number (leading zero)");
    } else if ((end = skip_digits(s, i, n)) == i) {
        return scan_fail(sc, i, "invalid number (a digit must follow '-')");
    } else {
        i = end;
    }
    if (i < n && s[i] == '.') {
        i++;
        if ((end = skip_digits(s, i, n)) == i)
            return scan_fail(sc, i, "invalid number (digits needed after '.')");
        i = end;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        if (++i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if ((end = skip_digits(s, i, n)) == i)
            return scan_fail(sc, i, "invalid number (digits needed in the exponent)");
        i = end;
    }
    return i;
}

static size_t scan_literal(scanner *sc, size_t i, const char *word, size_t len)
{
    if (sc->n - i < len || memcmp(sc->s + i, word, len) != 0)
        return scan_fail(sc, i, "expected a value");
    return i + len;
}

/* UTF-8 bytes of code point cp (at most U+10FFFF) into out; returns their count. */
static size_t utf8_encode(long cp, unsigned char *out)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes the escape at p, which scan_escape accepted, into out; returns the escape's length. */
static size_t unescape(const unsigned char *p, unsigned char *out, size_t *outlen)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    long cp;

    if (p[1] != 'u') {
        out[0] = (unsigned char)to[strchr(from, p[1]) - from];
        *outlen = 1;
        return 2;
    }
    cp = hex4(p + 2, 4);
    if (cp < 0xD800 || cp > 0xDBFF) {
        *outlen = utf8_encode(cp, out);
        return 6;
    }
    cp = 0x10000 + ((cp - 0xD800) << 10) + (hex4(p + 8, 4) - 0xDC00);
    *outlen = utf8_encode(cp, out);
    return 12;
}

/* Whether the key text k (between its quotes, already scanned, with escapes) names name, as cjson decodes it. */
static int key_equals(const unsigned char *k, size_t klen, const char *name, size_t nlen)
{
    size_t i = 0, j = 0;

    while (i < klen) {
        unsigned char u[4];
        size_t ulen = 1, step = 1;
        if (k[i] == '\\')
            step = unescape(k + i, u, &ulen);
        else
            u[0] = k[i];
        if (nlen - j < ulen || memcmp(name + j, u, ulen) != 0)
            return 0;
        i += step;
        j += ulen;
    }
    return j == nlen;
}

static size_t scan_value(scanner *sc, size_t i);

/* Which wanted members the key text k (between its quotes, already scanned) names, as a bit set. */
static unsigned match_key(const unsigned char *k, size_t klen, const ek_json_member *wanted, int nwanted)
{
    int escaped = memchr(k, '\\', klen) != NULL, w;
    unsigned matches = 0;

    for (w = 0; w < nwanted; w++) {
        if (escaped ? key_equals(k, klen, wanted[w].name, wanted[w].len)
                    : klen == wanted[w].len && memcmp(k, wanted[w].name, klen) == 0)
            matches |= 1u << w;
    }
    return matches;
}

/* Records a value's text for each wanted member in matches (a later duplicate wins, as in cjson). */
static void record_members(ek_json_member *wanted, int nwanted, unsigned matches, size_t start, size_t end)
{
    int w;
    for (w = 0; w < nwanted; w++) {
        if (matches & (1u << w)) {
            wanted[w].start = start;
            wanted[w].end = end;
            wanted[w].found = 1;
        }
    }
}

/* Scans the key at i, the ':' and the space after it; returns where the value
 * starts. *matches: the wanted members the key names. */
static size_t scan_key(scanner *sc, size_t i, const ek_json_member *wanted, int nwanted, unsigned *matches)
{
    size_t start = i + 1;

    if (i >= sc->n || sc->s[i] != '"')
        return scan_expected(sc, i, "expected a string key");
    if ((i = scan_string(sc, i)) == SCAN_FAILED)
        return SCAN_FAILED;
    if (nwanted > 0)
        *matches = match_key(sc->s + start, i - 1 - start, wanted, nwanted);
    i = skip_space(sc, i);
    if (i >= sc->n || sc->s[i] != ':')
        return scan_expected(sc, i, "expected ':' after a key");
    return skip_space(sc, i + 1);
}

/* Scans the [ ... ] or { ... } at i; for the top-level object, records the members asked for. */
static size_t scan_container(scanner *sc, size_t i, ek_json_member *wanted, int nwanted)
{
    const unsigned char *s = sc->s;
    int object = s[i] == '{';
    unsigned char close = object ? '}' : ']';

    if (++sc->depth > EK_JSON_MAX_DEPTH)
        return scan_fail(sc, i, "nested too deep (more than 100 levels)");
    i = skip_space(sc, i + 1);
    if (i < sc->n && s[i] == close) {
        sc->depth--;
        return i + 1;
    }
    for (;;) {
        unsigned matches = 0;
        size_t start;
        i = skip_space(sc, i);
        if (object && (i = scan_key(sc, i, wanted, nwanted, &matches)) == SCAN_FAILED)
            return SCAN_FAILED;
        start = i;
        /* a string, the most common value, without scan_value's dispatch */
        i = i < sc->n && s[i] == '"' ? scan_string(sc, i) : scan_value(sc, i);
        if (i == SCAN_FAILED)
            return SCAN_FAILED;
        if (matches != 0)
            record_members(wanted, nwanted, matches, start, i);
        i = skip_space(sc, i);
        if (i < sc->n && s[i] == ',') {
            i++;
            continue;
        }
        if (i < sc->n && s[i] == close) {
            sc->depth--;
            return i + 1;
        }
        return scan_expected(sc, i, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static size_t scan_value(scanner *sc, size_t i)
{
    if (i >= sc->n)
        return scan_expected(sc, i, "expected a value");
    switch (sc->s[i]) {
    case '"': return scan_string(sc, i);
    case '{': case '[': return scan_container(sc, i, NULL, 0);
    case 't': return scan_literal(sc, i, "true", 4);
    case 'f': return scan_literal(sc, i, "false", 5);
    case 'n': return scan_literal(sc, i, "null", 4);
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        return scan_number(sc, i);
    default: return scan_fail(sc, i, "expected a value");
    }
}

int ek_json_members(const char *text, size_t n, ek_json_member *members, int nmembers,
                    char *err, size_t errlen)
{
    scanner sc;
    size_t i;
    int w;

    for (w = 0; w < nmembers; w++) {
        members[w].start = members[w].end = 0;
        members[w].found = 0;
    }
    memset(&sc, 0, sizeof sc);
    sc.s = (const unsigned char *)text;
    sc.n = n;
    i = skip_space(&sc, 0);
    if (i >= n || sc.s[i] != '{') {
        snprintf(err, errlen, "not a JSON object");
        return -1;
    }
    i = scan_container(&sc, i, members, nmembers);
    if (i != SCAN_FAILED && (i = skip_space(&sc, i)) < n)
        i = scan_fail(&sc, i, "unexpected text after the document");
    if (i == SCAN_FAILED) {
        snprintf(err, errlen, "invalid JSON at byte %lu: %s", (unsigned long)sc.err_at + 1, sc.why);
        return -1;
    }
    return 0;
}

/*
 * core.json_members(text, name, ...) -> true, then the raw text of each named
 * top-level member (nil where absent); or nil, message when text is not one
 * valid JSON object. The message names the problem and its byte (from 1).
 */
static int l_json_members(lua_State *L)
{
    size_t n;
    const char *text = luaL_checklstring(L, 1, &n);
    int nwanted = lua_gettop(L) - 1, w;
    ek_json_member wanted[EK_JSON_MAX_MEMBERS];
    char err[160];

    luaL_argcheck(L, nwanted >= 1 && nwanted <= EK_JSON_MAX_MEMBERS, 2, "between 1 and 8 member names");
    for (w = 0; w < nwanted; w++)
        wanted[w].name = luaL_checklstring(L, w + 2, &wanted[w].len);
    if (ek_json_members(text, n, wanted, nwanted, err, sizeof err) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    luaL_checkstack(L, nwanted + 1, "too many members");
    lua_pushboolean(L, 1);
    for (w = 0; w < nwanted; w++) {
        if (wanted[w].found)
            lua_pushlstring(L, text + wanted[w].start, wanted[w].end - wanted[w].start);
        else
            lua_pushnil(L);
    }
    return nwanted + 1;
}

void ek_open_json(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        { "json_encode", l_json_encode },
        { NULL, NULL },
    };

    lua_pushcfunction(L, l_json_members);
    lua_setfield(L, -2, "json_members");

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
