/* A C program embedding Lua 5.4 that runs the host game (spec/hosts/driver.lua)
 * in a fixed 60 Hz loop, as a game engine would: one frame() per tick, then
 * quit() when frame() returns false.
 *
 *   cc -std=c99 -Wall -Wextra -Werror host.c -o host $(pkg-config --cflags --libs lua5.4)
 *   ./host ROOT          (ROOT: the lua-envoke checkout; settings in the environment)
 *
 * envoke.core is a C module that does not link liblua: it takes the Lua API
 * from this program, so liblua must be linked shared (-llua5.4), or static
 * with -Wl,-E so that its symbols are exported. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#define FRAME_NS (1000000000L / 60)

/* Sets the paths to the checkout, makes the game (and its client, at load
 * time) and returns its frame and quit functions. */
static const char BOOT[] =
    "local root = ...\n"
    "package.path = root .. '/lua/?.lua;' .. root .. '/lua/?/init.lua;'\n"
    "  .. root .. '/spec/hosts/?.lua;' .. package.path\n"
    "package.cpath = root .. '/build/5.4/?.so;' .. package.cpath\n"
    "local game = require('driver').new()\n"
    "return function() return game:frame() end, function() game:quit() end\n";

static int traceback(lua_State *L)
{
    luaL_traceback(L, L, lua_tostring(L, 1), 1);
    return 1;
}

/* Calls the function on top of the stack; returns its boolean result, or -1
 * after printing the error. */
static int call(lua_State *L, int nresults)
{
    int base = lua_gettop(L), ok;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    if (lua_pcall(L, 0, nresults, base) != LUA_OK) {
        fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
        lua_settop(L, base - 1);
        return -1;
    }
    ok = nresults > 0 ? lua_toboolean(L, -1) : 1;
    lua_settop(L, base - 1);
    return ok;
}

static void next_tick(struct timespec *tick)
{
    tick->tv_nsec += FRAME_NS;
    if (tick->tv_nsec >= 1000000000L) {
        tick->tv_nsec -= 1000000000L;
        tick->tv_sec += 1;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, tick, NULL) == EINTR)
        ;
}

/* The loop: frame() once per tick until it returns false, then quit(). */
static int run(lua_State *L)
{
    struct timespec tick;
    int more;
    clock_gettime(CLOCK_MONOTONIC, &tick);
    do {
        lua_pushvalue(L, 1);
        more = call(L, 1);
        if (more > 0)
            next_tick(&tick);
    } while (more > 0);
    lua_pushvalue(L, 2);
    if (call(L, 0) < 0 || more < 0)
        return 1;
    return 0;
}

int main(int argc, char **argv)
{
    lua_State *L;
    int rc = 1;
    if (argc != 2) {
        fprintf(stderr, "usage: %s ROOT\n", argv[0]);
        return 2;
    }
    L = luaL_newstate();
    if (L == NULL) {
        fprintf(stderr, "host: out of memory\n");
        return 1;
    }
    luaL_openlibs(L);
    lua_pushcfunction(L, traceback);
    if (luaL_loadbuffer(L, BOOT, sizeof BOOT - 1, "=boot") != LUA_OK) {
        fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
    } else {
        lua_pushstring(L, argv[1]);
        if (lua_pcall(L, 1, 2, 1) != LUA_OK)
            fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
        else {
            lua_remove(L, 1); /* the traceback: frame and quit are now 1 and 2 */
            rc = run(L);
        }
    }
    lua_close(L);
    return rc;
}
