/*
 * json_encode.c: libFuzzer harness for core.json_encode.
 *
 * The input is a small program that builds one Lua value: nested tables
 * (arrays, objects, sparse, marked with core.array_mt, with metamethods that
 * must never run), strings of any bytes or of code points (surrogates and
 * values past U+10FFFF included), integers, floats (NaN and infinities
 * included), booleans, core.null, core.empty_array, functions, userdata, and
 * references to tables built earlier (shared values and cycles).
 * oracle.encode then checks the verdict against the README's rules and the
 * text against cjson's decoding of it.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "harness.h"

typedef struct program {
    const uint8_t *p;
    size_t n;
    int tables; /* tables built so far, in the list at MADE */
} program;

/* Stack slots: 1 the oracle, 2 every table built so far (for references), 3 envoke.core. */
#define MADE 2
#define CORE 3

/* Deepest nesting the builder makes: past the encoder's 100 levels, within the C stack. */
#define BUILD_DEPTH 130

enum { OP_NULL, OP_BOOL, OP_INT, OP_SMALL_INT, OP_DOUBLE, OP_SPECIAL, OP_BYTES, OP_CODEPOINTS,
       OP_ARRAY, OP_OBJECT, OP_SPARSE, OP_MARKED, OP_METATABLE, OP_REFERENCE, OP_EMPTY_ARRAY,
       OP_CHAIN, OP_FUNCTION, OP_USERDATA, OP_COUNT };

static unsigned next_byte(program *pg)
{
    if (pg->n == 0)
        return 0; /* an exhausted program builds nulls: every build ends */
    pg->n--;
    return *pg->p++;
}

static void next_bytes(program *pg, void *dst, size_t len)
{
    size_t have = len < pg->n ? len : pg->n;
    memset(dst, 0, len);
    memcpy(dst, pg->p, have);
    pg->p += have;
    pg->n -= have;
}

static void build(lua_State *L, program *pg, int depth);

static void push_number(lua_State *L, program *pg, unsigned op)
{
    static const double special[] = { 0.5, -0.0, 0.1, 1e300, -1e-300, 4.9e-324, 9007199254740992.0,
                                      9007199254740993.0, 9223372036854775808.0, 1e15, 123456789.125 };
    int64_t i;
    double d;

    if (op == OP_INT) {
        next_bytes(pg, &i, sizeof i);
        lua_pushinteger(L, (lua_Integer)i);
    } else if (op == OP_SMALL_INT) {
        lua_pushinteger(L, (lua_Integer)(int8_t)next_byte(pg));
    } else if (op == OP_DOUBLE) {
        next_bytes(pg, &d, sizeof d);
        lua_pushnumber(L, d);
    } else {
        unsigned k = next_byte(pg);
        if (k % 16 == 12)
            d = HUGE_VAL;
        else if (k % 16 == 13)
            d = -HUGE_VAL;
        else if (k % 16 == 14)
            d = nan("");
        else
            d = special[(k % 16) % (sizeof special / sizeof special[0])];
        lua_pushnumber(L, d);
    }
}

/* UTF-8-style bytes for cp up to 0x1FFFFF, surrogates included (validity is the encoder's to check). */
static void add_codepoint(luaL_Buffer *b, unsigned long cp)
{
    if (cp < 0x80) {
        luaL_addchar(b, (char)cp);
    } else if (cp < 0x800) {
        luaL_addchar(b, (char)(0xC0 | (cp >> 6)));
        luaL_addchar(b, (char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        luaL_addchar(b, (char)(0xE0 | (cp >> 12)));
        luaL_addchar(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
        luaL_addchar(b, (char)(0x80 | (cp & 0x3F)));
    } else {
        luaL_addchar(b, (char)(0xF0 | (cp >> 18)));
        luaL_addchar(b, (char)(0x80 | ((cp >> 12) & 0x3F)));
        luaL_addchar(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
        luaL_addchar(b, (char)(0x80 | (cp & 0x3F)));
    }
}

static void push_string(lua_State *L, program *pg, unsigned op)
{
    size_t len = next_byte(pg) % 48, k;
    luaL_Buffer b;

    if (op == OP_BYTES) {
        char raw[48];
        next_bytes(pg, raw, len);
        lua_pushlstring(L, raw, len);
        return;
    }
    luaL_buffinit(L, &b);
    for (k = 0; k < len; k++) {
        unsigned c = next_byte(pg), hi = next_byte(pg), lo = next_byte(pg);
        unsigned long cp;
        if (c & 0x80)
            cp = lo; /* ASCII and Latin-1, control characters included */
        else if (c & 0x40)
            cp = (unsigned long)hi << 8 | lo; /* the BMP, surrogates included */
        else
            cp = ((unsigned long)(c & 0x1F) << 16) | (unsigned long)hi << 8 | lo;
        add_codepoint(&b, cp);
    }
    luaL_pushresult(&b);
}

/* Calls of forbidden() during one input: the encoder reads tables raw and runs no Lua code. */
static int forbidden_calls;

/* A metamethod, and a function value, that nothing may call. */
static int forbidden(lua_State *L)
{
    forbidden_calls++;
    return luaL_error(L, "forbidden function called");
}

static void set_forbidden_metatable(lua_State *L)
{
    static const char *const events[] = { "__index", "__newindex", "__len", "__pairs", "__tostring",
                                          "__eq", "__lt", "__le", "__call", "__concat" };
    size_t k;
    lua_createtable(L, 0, 10);
    for (k = 0; k < sizeof events / sizeof events[0]; k++) {
        lua_pushcfunction(L, forbidden);
        lua_setfield(L, -2, events[k]);
    }
    lua_setmetatable(L, -2);
}

/* Builds a key into the table on top; a key Lua cannot store (nil, NaN) leaves it out. */
static void add_member(lua_State *L, program *pg, int depth, int sparse)
{
    unsigned how = next_byte(pg);
    if (sparse)
        lua_pushinteger(L, (lua_Integer)(how % 24) - 2);
    else if (how < 200)
        push_string(L, pg, how & 1 ? OP_BYTES : OP_CODEPOINTS);
    else
        build(L, pg, depth + 1); /* numbers, booleans, tables as keys */
    if (lua_isnil(L, -1) || (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) != lua_tonumber(L, -1))) {
        lua_pop(L, 1);
        return;
    }
    build(L, pg, depth + 1);
    lua_rawset(L, -3);
}

static void push_table(lua_State *L, program *pg, int depth, unsigned op)
{
    unsigned count = next_byte(pg) % 12, k;

    lua_createtable(L, 0, 0);
    lua_pushvalue(L, -1);
    lua_rawseti(L, MADE, ++pg->tables);
    if (op == OP_MARKED) {
        lua_getfield(L, CORE, "array_mt");
        lua_setmetatable(L, -2);
    } else if (op == OP_METATABLE) {
        set_forbidden_metatable(L);
    }
    for (k = 1; k <= count; k++) {
        if (op == OP_ARRAY || (op == OP_MARKED && k % 5 != 0) || (op == OP_METATABLE && k % 2 == 0)) {
            lua_Integer at = (lua_Integer)lua_rawlen(L, -1) + 1;
            build(L, pg, depth + 1);
            lua_rawseti(L, -2, at);
        } else {
            add_member(L, pg, depth, op == OP_SPARSE);
        }
    }
}

/* An earlier table again: shared when it is not an ancestor, a cycle when it is. */
static void push_reference(lua_State *L, program *pg)
{
    unsigned k = next_byte(pg);
    if (pg->tables == 0)
        lua_getfield(L, CORE, "null");
    else
        lua_rawgeti(L, MADE, 1 + (lua_Integer)(k % (unsigned)pg->tables));
}

/* A value wrapped in n one-element arrays: the quick way to the depth limit. */
static void push_chain(lua_State *L, program *pg, int depth)
{
    unsigned n = next_byte(pg) % 128, k;
    build(L, pg, depth + 1);
    for (k = 0; k < n; k++) {
        lua_createtable(L, 1, 0);
        lua_insert(L, -2);
        lua_rawseti(L, -2, 1);
    }
}

static void build(lua_State *L, program *pg, int depth)
{
    unsigned op = next_byte(pg) % OP_COUNT;

    luaL_checkstack(L, 8, "fuzz: builder");
    if (depth > BUILD_DEPTH && (op == OP_ARRAY || op == OP_OBJECT || op == OP_SPARSE || op == OP_MARKED ||
                                op == OP_METATABLE || op == OP_CHAIN))
        op = OP_BOOL;
    switch (op) {
    case OP_NULL: lua_getfield(L, CORE, "null"); break;
    case OP_BOOL: lua_pushboolean(L, (int)(next_byte(pg) & 1)); break;
    case OP_INT: case OP_SMALL_INT: case OP_DOUBLE: case OP_SPECIAL: push_number(L, pg, op); break;
    case OP_BYTES: case OP_CODEPOINTS: push_string(L, pg, op); break;
    case OP_REFERENCE: push_reference(L, pg); break;
    case OP_EMPTY_ARRAY: lua_getfield(L, CORE, "empty_array"); break;
    case OP_CHAIN: push_chain(L, pg, depth); break;
    case OP_FUNCTION: lua_pushcfunction(L, forbidden); break;
    case OP_USERDATA: lua_newuserdatauv(L, 1, 0); break;
    default: push_table(L, pg, depth, op); break;
    }
}

/* Runs the builder under lua_pcall: lua_State errors (memory) must not escape into libFuzzer. */
static int l_build(lua_State *L)
{
    program *pg = (program *)lua_touserdata(L, 1);
    lua_settop(L, 0);
    lua_pushnil(L); /* slot 1 is the oracle's outside; unused here */
    lua_newtable(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "envoke.core");
    lua_call(L, 1, 1);
    build(L, pg, 0);
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = fuzz_state();
    program pg;

    pg.p = data;
    pg.n = size;
    pg.tables = 0;
    lua_settop(L, 1);
    lua_pushcfunction(L, l_build);
    lua_pushlightuserdata(L, &pg);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        lua_settop(L, 1); /* out of memory while building: not the encoder's concern */
        return 0;
    }
    forbidden_calls = 0;
    fuzz_check(L, "encode", 1);
    if (forbidden_calls != 0) {
        fprintf(stderr, "fuzz: json_encode called a metamethod or a function of the value\n");
        abort();
    }
    fuzz_done(L);
    return 0;
}
