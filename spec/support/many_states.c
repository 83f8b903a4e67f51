/*
 * many_states.c: a host program that runs several Lua states at once, one per
 * thread, each loading envoke.core and calling a server. It proves the core
 * keeps no process-wide state but libcurl's once-only initialisation.
 *
 *   many_states CPATH URL THREADS CALLS
 * prints "ok N" (the calls that succeeded) and exits 0 when every one did.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

static const char *cpath, *url;
static int calls;

static const char chunk[] =
    "local cpath, url, calls = ...\n"
    "package.cpath = cpath\n"
    "local core = require 'envoke.core'\n"
    "local ok = 0\n"
    "for round = 1, 2 do\n"                  /* two pools per state, one after the other */
    "  local pool = core.pool{ base_url = url }\n"
    "  for i = 1, calls do\n"
    "    local status, body = pool:request('POST', '/echo?n=' .. i, { n = i })\n"
    "    if status == 200 and body:find('\"n\":\"' .. i .. '\"', 1, true) then ok = ok + 1 end\n"
    "  end\n"
    "  pool:close()\n"
    "end\n"
    "return ok\n";

static void *run_state(void *arg)
{
    long *ok = (long *)arg;
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    if (luaL_loadstring(L, chunk) != 0) {
        fprintf(stderr, "load: %s\n", lua_tostring(L, -1));
    } else {
        lua_pushstring(L, cpath);
        lua_pushstring(L, url);
        lua_pushinteger(L, calls);
        if (lua_pcall(L, 3, 1, 0) != 0)
            fprintf(stderr, "run: %s\n", lua_tostring(L, -1));
        else
            *ok = (long)lua_tointeger(L, -1);
    }
    lua_close(L);
    return NULL;
}

int main(int argc, char **argv)
{
    int threads, i;
    long total = 0, *ok;
    pthread_t *tids;

    if (argc != 5)
        return 2;
    cpath = argv[1];
    url = argv[2];
    threads = atoi(argv[3]);
    calls = atoi(argv[4]);
    tids = calloc((size_t)threads, sizeof *tids);
    ok = calloc((size_t)threads, sizeof *ok);
    for (i = 0; i < threads; i++)
        pthread_create(&tids[i], NULL, run_state, &ok[i]);
    for (i = 0; i < threads; i++) {
        pthread_join(tids[i], NULL);
        total += ok[i];
    }
    printf("ok %ld\n", total);
    free(tids);
    free(ok);
    return total == (long)threads * calls * 2 ? 0 : 1;
}
