/* version.h: the library's version; the Makefile and the Lua facade read it from here. */
#ifndef ENVOKE_VERSION_H
#define ENVOKE_VERSION_H
#define ENVOKE_VERSION "0.1.0"
#endif
