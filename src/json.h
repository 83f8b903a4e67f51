/*
 * json.h: the JSON encoder (json_encode.c: Lua values to request bodies) and
 * the scanner (json_scan.c: response bodies checked without building tables).
 */
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

/* A top-level member asked of ek_json_members, and where its value's text lies. */
typedef struct ek_json_member {
    const char *name; /* as cjson decodes it: a name spelled with escapes matches */
    size_t len;
    size_t start, end; /* offsets of the value's text in the document, when found */
    int found;         /* of duplicates, the last one counts, as in cjson */
} ek_json_member;

/* Most members one call looks for. */
#define EK_JSON_MAX_MEMBERS 8

/*
 * Validates text (n bytes, not necessarily NUL-terminated) as one JSON object
 * and fills in the members asked for. Returns 0, or -1 with a message in err
 * naming the problem and its byte ("invalid JSON at byte 7: lone UTF-16
 * surrogate ..."). Reads nothing outside text and allocates nothing.
 */
int ek_json_members(const char *text, size_t n, ek_json_member *members, int nmembers,
                    char *err, size_t errlen);

/* What ek_json_envelope makes of a write's answer. */
typedef enum ek_json_verdict {
    EK_ENVELOPE_OK,          /* success exactly true, result_data an object: a successful write */
    EK_ENVELOPE_INVALID,     /* not one valid JSON object: err says why */
    EK_ENVELOPE_BAD_SUCCESS, /* success missing, or neither true nor false */
    EK_ENVELOPE_FALSE,       /* success false: the server refused the write */
    EK_ENVELOPE_NO_DATA      /* success true, result_data missing or not an object */
} ek_json_verdict;

/* Where ek_json_envelope puts what it found of each member, in its parts. */
enum { EK_ENVELOPE_SUCCESS, EK_ENVELOPE_DATA, EK_ENVELOPE_PARTS };

/*
 * The envelope rule, stated once for the pool and the client: scans text as
 * ek_json_members does and fills parts[EK_ENVELOPE_SUCCESS] and
 * parts[EK_ENVELOPE_DATA] with where success and result_data lie. The
 * verdict tells the cases apart; err is set with EK_ENVELOPE_INVALID only.
 */
ek_json_verdict ek_json_envelope(const char *text, size_t n, ek_json_member parts[EK_ENVELOPE_PARTS],
                                 char *err, size_t errlen);

#endif
