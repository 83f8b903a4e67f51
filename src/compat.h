/*
 * compat.h: the few Lua C API differences between 5.1 (and LuaJIT), 5.2, 5.3
 * and 5.4 that envoke.core meets. Everything is prefixed ek_ so nothing clashes
 * with what a given lauxlib.h already declares.
 */
#ifndef ENVOKE_COMPAT_H
#define ENVOKE_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM >= 502
#define ek_setfuncs(L, l, nup) luaL_setfuncs(L, (l), (nup))
#else
/* luaL_setfuncs from 5.2: set each function in the table below the nup upvalues. */
static inline void ek_setfuncs(lua_State *L, const luaL_Reg *l, int nup)
{
    luaL_checkstack(L, nup + 1, "too many upvalues");
    for (; l->name != NULL; l++) {
        int i;
        for (i = 0; i < nup; i++)
            lua_pushvalue(L, -nup);
        lua_pushcclosure(L, l->func, nup);
        lua_setfield(L, -(nup + 2), l->name);
    }
    lua_pop(L, nup);
}
#endif

/* lua_absindex from 5.2, for stack indices (not pseudo-indices). */
#define ek_absindex(L, i) ((i) > 0 ? (i) : lua_gettop(L) + (i) + 1)

/* True when the number at i has Lua 5.3's integer subtype. */
#if LUA_VERSION_NUM >= 503
#define ek_isinteger(L, i) lua_isinteger(L, (i))
#else
#define ek_isinteger(L, i) 0
#endif

#endif
