/*
 * path.c: core.join_id, a request path made of a prefix and a numeric id.
 * Lua 5.1 to 5.4 turn a number into text through snprintf, about 1.2k
 * instructions; every write to a known contact puts its id in the path.
 */
#include <string.h>

#include "compat.h"
#include "core.h"

/* Room for a prefix of up to 64 bytes and the digits of any lua_Integer. */
#define MAX_PREFIX 64
#define MAX_DIGITS 20

/*
 * core.join_id(prefix, id) -> prefix .. id, for a whole number id >= 0 (as
 * the library normalizes ids): the digits are written here, not by snprintf.
 */
static int l_join_id(lua_State *L)
{
    size_t plen;
    const char *prefix = luaL_checklstring(L, 1, &plen);
    lua_Integer id = luaL_checkinteger(L, 2);
    char buf[MAX_PREFIX + MAX_DIGITS], *end = buf + sizeof buf, *p = end;
    unsigned long long n;

    luaL_argcheck(L, plen <= MAX_PREFIX, 1, "longer than 64 bytes");
    luaL_argcheck(L, id >= 0 && (lua_Number)id == lua_tonumber(L, 2), 2, "must be a whole number >= 0");
    n = (unsigned long long)id;
    do {
        *--p = (char)('0' + n % 10);
        n /= 10;
    } while (n != 0);
    p -= plen;
    memcpy(p, prefix, plen);
    lua_pushlstring(L, p, (size_t)(end - p));
    return 1;
}

void ek_open_path(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        { "join_id", l_join_id },
        { NULL, NULL },
    };
    ek_setfuncs(L, funcs, 0);
}
