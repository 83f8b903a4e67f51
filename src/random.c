/* random.c: randomness from the OS for retry jitter, so the library never
 * touches math.random's global seed, which belongs to the application. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>

#include "compat.h"
#include "core.h"

static int fill_random(unsigned char *dst, size_t n)
{
    while (n > 0) {
        ssize_t got = getrandom(dst, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        dst += got;
        n -= (size_t)got;
    }
    return 0;
}

/* core.random() -> a float in [0, 1) with 53 random bits. */
static int l_random(lua_State *L)
{
    uint64_t bits;
    if (fill_random((unsigned char *)&bits, sizeof bits) != 0)
        return luaL_error(L, EK_MODULE ": getrandom failed: %s", strerror(errno));
    lua_pushnumber(L, (lua_Number)(bits >> 11) / 9007199254740992.0);
    return 1;
}

/* core.random_bytes(n) -> a string of n random bytes. */
static int l_random_bytes(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_Buffer b;
    unsigned char chunk[256];

    luaL_argcheck(L, n >= 0 && n <= 1048576, 1, "must be between 0 and 1048576");
    luaL_buffinit(L, &b);
    while (n > 0) {
        size_t take = n < (lua_Integer)sizeof chunk ? (size_t)n : sizeof chunk;
        if (fill_random(chunk, take) != 0)
            return luaL_error(L, EK_MODULE ": getrandom failed: %s", strerror(errno));
        luaL_addlstring(&b, (const char *)chunk, take);
        n -= (lua_Integer)take;
    }
    luaL_pushresult(&b);
    return 1;
}

void ek_open_random(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        { "random", l_random },
        { "random_bytes", l_random_bytes },
        { NULL, NULL },
    };
    ek_setfuncs(L, funcs, 0);
}
