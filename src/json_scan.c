/*
 * json_scan.c: core.json_members and core.json_envelope, which check a
 * response body as one JSON object and hand back the raw text of a few
 * top-level members without building any table. They exist so a write's
 * answer (an Envoke envelope) can be checked whole, at the cost of one pass
 * over its bytes, and its result_data decoded only when someone reads it.
 * ek_json_envelope is the one statement of what a successful write's answer
 * is, for the pool (pool.c, its envelope argument) and for the client's Lua
 * transports (Client:outcome) alike. The scan is the hot path of every
 * write: it was tuned for CPU, see its comments before changing it.
 */
#include "json.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#if defined(__SSE2__) && defined(__GNUC__)
#include <emmintrin.h>
#endif

#include <lauxlib.h>

#include "core.h"
#include "json_bytes.h"

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

#if defined(__SSE2__) && defined(__GNUC__)
#define EK_SCAN_SSE2 1
/*
 * As special8 for sixteen bytes, as a bit mask (bit k: byte k). A signed
 * compare below 0x20 also takes the bytes 0x80 and up (negative).
 */
static inline unsigned special16(const unsigned char *p)
{
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i hit = _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')), _mm_cmpeq_epi8(x, _mm_set1_epi8('\\')));
    hit = _mm_or_si128(hit, _mm_cmplt_epi8(x, _mm_set1_epi8(0x20)));
    return (unsigned)_mm_movemask_epi8(hit);
}
#endif

/* The offset of the first byte from i on that is not byte_class 0 (n if none):
 * sixteen bytes at a time with SSE2 (most strings end within the first
 * sixteen), eight at a time while none is, then that byte itself. */
static inline size_t plain_run(const unsigned char *s, size_t i, size_t n)
{
    uint64_t x, special;

#ifdef EK_SCAN_SSE2
    for (; n - i >= 16; i += 16) {
        unsigned hit = special16(s + i);
        if (hit != 0)
            return i + (size_t)__builtin_ctz(hit);
    }
#endif
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

/* Whether the member's text is exactly the literal word (len bytes). */
static int member_is(const char *text, const ek_json_member *m, const char *word, size_t len)
{
    return m->found && m->end - m->start == len && memcmp(text + m->start, word, len) == 0;
}

ek_json_verdict ek_json_envelope(const char *text, size_t n, ek_json_member parts[EK_ENVELOPE_PARTS],
                                 char *err, size_t errlen)
{
    ek_json_member *success = &parts[EK_ENVELOPE_SUCCESS], *data = &parts[EK_ENVELOPE_DATA];

    success->name = "success";
    success->len = 7;
    data->name = "result_data";
    data->len = 11;
    if (ek_json_members(text, n, parts, EK_ENVELOPE_PARTS, err, errlen) != 0)
        return EK_ENVELOPE_INVALID;
    if (member_is(text, success, "true", 4))
        return data->found && text[data->start] == '{' ? EK_ENVELOPE_OK : EK_ENVELOPE_NO_DATA;
    return member_is(text, success, "false", 5) ? EK_ENVELOPE_FALSE : EK_ENVELOPE_BAD_SUCCESS;
}

/***
 * Checks a write's answer against the envelope rule: one valid JSON object
 * whose `success` is exactly `true` and whose `result_data` is an object. The
 * same rule, in the same function, as `pool:request`'s envelope argument.
 * @function core.json_envelope
 * @tparam string text the body of a 2xx answer
 * @treturn string|nil the raw text of `result_data` when the answer is a
 *   successful write; nil otherwise
 * @treturn string what is wrong, with nil only: `"invalid"` (not one valid
 *   JSON object), `"success"` (`success` missing, or neither true nor
 *   false), `"false"` (`success` is false: the server's refusal) or
 *   `"result_data"` (`success` is true, but `result_data` is missing or not
 *   an object)
 * @treturn string|nil with `"invalid"`, the scanner's message ("invalid JSON
 *   at byte 7: ..."); with `"success"` and `"result_data"`, that member's raw
 *   text (nil when it is missing)
 */
static int l_json_envelope(lua_State *L)
{
    size_t n;
    const char *text = luaL_checklstring(L, 1, &n);
    ek_json_member parts[EK_ENVELOPE_PARTS];
    const ek_json_member *part;
    char err[160];
    ek_json_verdict verdict = ek_json_envelope(text, n, parts, err, sizeof err);

    if (verdict == EK_ENVELOPE_OK) {
        part = &parts[EK_ENVELOPE_DATA];
        lua_pushlstring(L, text + part->start, part->end - part->start);
        return 1;
    }
    lua_pushnil(L);
    switch (verdict) {
    case EK_ENVELOPE_INVALID:
        lua_pushliteral(L, "invalid");
        lua_pushstring(L, err);
        return 3;
    case EK_ENVELOPE_FALSE:
        lua_pushliteral(L, "false");
        return 2;
    case EK_ENVELOPE_BAD_SUCCESS:
        lua_pushliteral(L, "success");
        part = &parts[EK_ENVELOPE_SUCCESS];
        break;
    default: /* EK_ENVELOPE_NO_DATA */
        lua_pushliteral(L, "result_data");
        part = &parts[EK_ENVELOPE_DATA];
        break;
    }
    if (part->found)
        lua_pushlstring(L, text + part->start, part->end - part->start);
    else
        lua_pushnil(L);
    return 3;
}

void ek_open_json_scan(lua_State *L)
{
    lua_pushcfunction(L, l_json_members);
    lua_setfield(L, -2, "json_members");
    lua_pushcfunction(L, l_json_envelope);
    lua_setfield(L, -2, "json_envelope");
}
