/*
** The Lua bindings of the C core. Each binding file adds its functions to
** the module table on top of the stack: [-0, +0, m].
**
** One convention for every binding, as STYLE.md asks:
** - Misuse raises: an argument of the wrong type, a string holding a NUL
**   where C needs a path, a closed object, a value that cannot be encoded
**   (luaL_argerror, luaL_error). The message points at the caller.
** - A runtime failure returns nil (luaL_pushfail) and a message, sometimes
**   more values after it: a file that cannot be read, a bad glob pattern,
**   a database that cannot be opened.
** - Out of memory raises, as Lua's own allocations do.
** Each binding file's header says how it applies this and names any
** function that does otherwise.
*/
#ifndef TIDE_LCORE_H
#define TIDE_LCORE_H

#include <lua.h>

void tide_lcbor_open(lua_State *L);
void tide_lfingerprint_open(lua_State *L);
void tide_lstore_open(lua_State *L);
void tide_lloop_open(lua_State *L);
void tide_lsys_open(lua_State *L);
void tide_lindex_open(lua_State *L);
void tide_lsplit_open(lua_State *L);
void tide_lfs_open(lua_State *L);
void tide_lsqlite_open(lua_State *L);
void tide_lsignal_open(lua_State *L);
void tide_ljson_open(lua_State *L);


#include <stddef.h>
#include <stdint.h>

/* Encodes the value at idx with the binding's shared encoder, raising a
** Lua error that names the path on failure. The bytes stay valid until
** the encoder it pushes is popped. `root` names the value in messages.
** [-0, +1, e] */
const uint8_t *tide_lcbor_encode(lua_State *L, int idx, const char *root,
                                 size_t *len);

/* Pushes the name of a TIDE_E* code as the bindings hand it to Lua:
** tide_err_name without the E, in lower case ("nomem", "locked"; "ok",
** "unknown"). Derived from TIDE_ERRNO_MAP, never listed by hand.
** [-0, +1, m] */
void tide_lcore_push_errname(lua_State *L, int code);

struct tide_GlobSet;
/* The glob set a binding was handed at idx, pushed: nil gives NULL (and
** an empty list too: no patterns, no set); a set from core.fs_glob is used
** as is; a list of patterns is compiled (lfs.c, the one place globs are
** compiled), raising with the bad pattern's message. [-0, +1, e] */
const struct tide_GlobSet *tide_lfs_globs(lua_State *L, int idx);

struct tide_Store;
/* The store of a store object (core.store_open), raising if closed.
** [-0, +0, v] */
struct tide_Store *tide_lstore_check(lua_State *L, int idx);

#endif
