/* core.h: what the parts of envoke.core share. Each part adds its functions
 * to the module table on top of the stack through its ek_open_* function. */
#ifndef ENVOKE_CORE_H
#define ENVOKE_CORE_H

#include <lua.h>

#define EK_MODULE "envoke.core"

/* Buffers that grew past this are freed after use, so one large body does not pin memory. */
#define EK_KEEP_BUFFER (64 * 1024)

/* Pushes a new userdata that owns an empty ek_buffer and frees it when collected. */
struct ek_buffer *ek_new_scratch(lua_State *L);

void ek_open_json_encode(lua_State *L);
void ek_open_json_scan(lua_State *L);
void ek_open_pool(lua_State *L);
void ek_open_clock(lua_State *L);
void ek_open_random(lua_State *L);
void ek_open_path(lua_State *L);

#endif
