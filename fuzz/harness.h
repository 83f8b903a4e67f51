/*
 * harness.h: what the libFuzzer harnesses share: one Lua 5.4 state per
 * process with envoke.core (compiled into the fuzzer, instrumented) and
 * Debian's cjson (loaded with require), and the Lua oracle, fuzz/oracle.lua.
 */
#ifndef ENVOKE_FUZZ_HARNESS_H
#define ENVOKE_FUZZ_HARNESS_H

#include <lua.h>

/* The fuzzers' Lua state, made on first use; the oracle's table is at stack index 1. */
lua_State *fuzz_state(void);

/*
 * Calls oracle[name] with the nargs values on top of the stack. A check that
 * fails (raises) is a finding: its message is printed and the process aborts,
 * so libFuzzer saves the input.
 */
void fuzz_check(lua_State *L, const char *name, int nargs);

/*
 * Ends an input: empties the stack and collects all garbage, so that each
 * input frees what it allocated and libFuzzer's leak check (run when an input
 * mallocs more than it frees) stays rare and meaningful.
 */
void fuzz_done(lua_State *L);

#endif
