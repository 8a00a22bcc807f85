/*
** Logic fingerprints: what a Lua function computes, as BLAKE2b-128.
**
** A function's fingerprint covers its stripped bytecode without line
** numbers (so comments, blank lines and moved lines do not count) and,
** recursively and cycle-safely, what it depends on: Lua functions held in
** its upvalues, scalar upvalues (strings, numbers, booleans), global
** functions it reads from its _ENV (found in the bytecode, resolved by
** name), values whose metatable has __tide_logic (a tide.fn), and the Lua
** release. Tables held in upvalues count by presence only.
*/
#ifndef TIDE_LOGIC_H
#define TIDE_LOGIC_H

#include <stddef.h>

#include <lua.h>

#include "fingerprint.h"

/* Fingerprints the function (or __tide_logic value) at idx; with
** self_only, only its own code (nested functions included), not what it
** reaches. On failure returns TIDE_EINVAL with a message in err. Raises
** only on memory errors. [-0, +0, m] */
int tide_logic_fingerprint(lua_State *L, int idx, int self_only,
                           tide_Fp *fp, char *err, size_t errlen);

#endif
