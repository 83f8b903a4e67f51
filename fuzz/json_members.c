/*
 * json_members.c: libFuzzer harness for the envelope scanner.
 *
 * The input is the text itself. The C entry point (ek_json_members) scans the
 * fuzzer's exact-size copy, so ASan sees any read past its end; then
 * oracle.members calls core.json_members on the same bytes and compares its
 * verdict and members with what cjson decodes. ek_json_envelope must read the
 * same bytes as the envelope rule over those members says.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>

#include "json.h"
#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The envelope rule, written again over ek_json_members' answer. */
static ek_json_verdict envelope_rule(const char *text, int rc, const ek_json_member *success,
                                     const ek_json_member *result_data)
{
    size_t len = success->end - success->start;
    if (rc != 0)
        return EK_ENVELOPE_INVALID;
    if (success->found && len == 4 && memcmp(text + success->start, "true", 4) == 0)
        return result_data->found && text[result_data->start] == '{' ? EK_ENVELOPE_OK : EK_ENVELOPE_NO_DATA;
    if (success->found && len == 5 && memcmp(text + success->start, "false", 5) == 0)
        return EK_ENVELOPE_FALSE;
    return EK_ENVELOPE_BAD_SUCCESS;
}

/* Aborts unless ek_json_envelope agrees with the rule, and with the scanner's message and offsets. */
static void check_envelope(const char *text, size_t size, int rc, const char *err, const ek_json_member *members)
{
    ek_json_member parts[EK_ENVELOPE_PARTS];
    char envelope_err[160];
    ek_json_verdict got = ek_json_envelope(text, size, parts, envelope_err, sizeof envelope_err);
    ek_json_verdict want = envelope_rule(text, rc, &members[2], &members[3]);
    const ek_json_member *d = &parts[EK_ENVELOPE_DATA];

    if (got != want || (rc != 0 && strcmp(err, envelope_err) != 0)
        || (got == EK_ENVELOPE_OK && (d->start != members[3].start || d->end != members[3].end))) {
        fprintf(stderr, "fuzz: ek_json_envelope answered %d, the rule over ek_json_members %d\n", (int)got,
                (int)want);
        abort();
    }
}

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
    check_envelope((const char *)data, size, rc, err, members);
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
