/* json.h: JSON encoding of Lua values for request bodies. */
#ifndef ENVOKE_JSON_H
#define ENVOKE_JSON_H

#include <stddef.h>
#include <lua.h>

#include "buffer.h"

/* Deepest nesting of tables accepted; deeper is an error, never a crash. */
#define EK_JSON_MAX_DEPTH 100

/* Registry key of the metatable that marks a table as a JSON array. */
#define EK_JSON_ARRAY_MT "envoke.core.array_mt"

/*
 * Appends the JSON text of the value at idx to out. Returns 0, or -1 with a
 * message in err that starts with the path of the offending value ("$.a[2]: ...").
 * Never raises and never calls Lua code, so it is safe from any C context.
 */
int ek_json_encode(lua_State *L, int idx, ek_buffer *out, char *err, size_t errlen);

#endif
