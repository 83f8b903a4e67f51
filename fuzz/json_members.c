/*
 * json_members.c: libFuzzer harness for the envelope scanner.
 *
 * The input is the text itself. The C entry point (ek_json_members) scans the
 * fuzzer's exact-size copy, so ASan sees any read past its end; then
 * oracle.members calls core.json_members on the same bytes and compares its
 * verdict and members with what cjson decodes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>

#include "json.h"
#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = { "a", "b", "success", "result_data" };
    ek_json_member members[4];
    char err[160];
    lua_State *L = fuzz_state();
    int k, rc;

    for (k = 0; k < 4; k++) {
        members[k].name = names[k];
        members[k].len = strlen(names[k]);
    }
    rc = ek_json_members((const char *)data, size, members, 4, err, sizeof err);
    for (k = 0; rc == 0 && k < 4; k++) {
        if (members[k].found && (members[k].start >= members[k].end || members[k].end > size)) {
            fprintf(stderr, "fuzz: member %s has offsets %zu..%zu in %zu bytes\n", names[k],
                    members[k].start, members[k].end, size);
            abort();
        }
    }
    lua_settop(L, 1);
    lua_pushlstring(L, (const char *)data, size);
    if (rc == 0)
        lua_pushboolean(L, 0);
    else
        lua_pushstring(L, err);
    fuzz_check(L, "members", 2);
    fuzz_done(L);
    return 0;
}
