/* version.h: the library's version; the Makefile and the Lua facade read it from here. */
#ifndef ENVOKE_VERSION_H
#define ENVOKE_VERSION_H
#define ENVOKE_VERSION "0.1.0"
/* The default User-Agent of every transport. Short on purpose: libcurl formats
 * each header line a character at a time (~100 instructions a character),
 * and a save is counted in thousands of them. */
#define ENVOKE_USER_AGENT "lua-envoke/" ENVOKE_VERSION
#endif
