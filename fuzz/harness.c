/*
 * harness.c: the Lua state the fuzzers share. It lives for the whole process
 * (a new state per input would cost more than the input's check); each input
 * leaves the stack as it found it, and nothing the oracle keeps depends on
 * earlier inputs, so a saved crash reproduces alone.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lualib.h>

/* The module's entry point, linked in from src/ (hidden visibility does not matter here). */
int luaopen_envoke_core(lua_State *L);

#ifndef FUZZ_DIR
#define FUZZ_DIR "fuzz"
#endif

/* Debian's lua-cjson for 5.4: the decoder the library reads answers with. */
#define CJSON_CPATH "/usr/lib/x86_64-linux-gnu/lua/5.4/?.so"

static lua_State *state;

static void die(lua_State *L, const char *what)
{
    fprintf(stderr, "fuzz: %s: %s\n", what, lua_tostring(L, -1));
    abort();
}

static void open_state(void)
{
    lua_State *L = luaL_newstate();
    const char *dir = getenv("ENVOKE_FUZZ_DIR");

    if (L == NULL)
        abort();
    luaL_openlibs(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_envoke_core);
    lua_setfield(L, -2, "envoke.core");
    lua_pop(L, 1);
    lua_getglobal(L, "package");
    lua_pushliteral(L, CJSON_CPATH);
    lua_setfield(L, -2, "cpath");
    lua_pop(L, 1);
    lua_pushfstring(L, "%s/oracle.lua", dir != NULL ? dir : FUZZ_DIR);
    if (luaL_loadfile(L, lua_tostring(L, -1)) != LUA_OK)
        die(L, "cannot load the oracle");
    lua_remove(L, -2);
    if (lua_pcall(L, 0, 1, 0) != LUA_OK)
        die(L, "the oracle failed to start");
    state = L;
}

lua_State *fuzz_state(void)
{
    if (state == NULL)
        open_state();
    return state;
}

void fuzz_check(lua_State *L, const char *name, int nargs)
{
    lua_getfield(L, 1, name);
    lua_insert(L, -nargs - 1);
    if (lua_pcall(L, nargs, 0, 0) != LUA_OK)
        die(L, name);
}

void fuzz_done(lua_State *L)
{
    lua_settop(L, 1);
    lua_gc(L, LUA_GCCOLLECT, 0);
}
