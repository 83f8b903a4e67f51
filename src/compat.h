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
#define ek_rawlen(L, i) lua_rawlen(L, (i))
#define ek_setfuncs(L, l, nup) luaL_setfuncs(L, (l), (nup))
#else
#define ek_rawlen(L, i) lua_objlen(L, (i))
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

/* True when the number at idx has Lua 5.3's integer subtype. */
#if LUA_VERSION_NUM >= 503
#define ek_isinteger(L, i) lua_isinteger(L, (i))
#else
#define ek_isinteger(L, i) 0
#endif

/* luaL_testudata from 5.2: the userdata at ud if its metatable is tname's, else NULL. */
static inline void *ek_testudata(lua_State *L, int ud, const char *tname)
{
    void *p = lua_touserdata(L, ud);
    if (p != NULL && lua_getmetatable(L, ud)) {
        luaL_getmetatable(L, tname);
        if (!lua_rawequal(L, -1, -2))
            p = NULL;
        lua_pop(L, 2);
        return p;
    }
    return NULL;
}

#endif
