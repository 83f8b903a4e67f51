/* clock.c: a monotonic clock and a sleep, for retry backoff and deadlines. */
#include <errno.h>
#include <time.h>

#include "compat.h"
#include "core.h"

/* core.now() -> milliseconds on a monotonic clock (only differences mean anything). */
static int l_now(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec * 1000.0 + (lua_Number)ts.tv_nsec / 1e6);
    return 1;
}

/* core.sleep(ms): blocks the calling thread; resumes after signals until the time is up. */
static int l_sleep(lua_State *L)
{
    lua_Number ms = luaL_checknumber(L, 1);
    struct timespec ts;

    luaL_argcheck(L, ms >= 0 && ms <= 86400000.0, 1, "must be between 0 and 86400000 milliseconds");
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)((ms - (lua_Number)ts.tv_sec * 1000) * 1e6);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    return 0;
}

void ek_open_clock(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        { "now", l_now },
        { "sleep", l_sleep },
        { NULL, NULL },
    };
    ek_setfuncs(L, funcs, 0);
}
