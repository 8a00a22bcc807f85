/*
** What the two files of the state store's binding share (lstore.c: the
** store object and its methods; lstore_work.c: its shared-update
** methods). Not for other bindings: they reach a store through lcore.h.
*/
#ifndef TIDE_LSTORE_H
#define TIDE_LSTORE_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "store.h"

/* Returns true, or raises with the store's message: a read or write the
** engine cannot go on without. The message names the store; a position
** in the engine's Lua code would tell the user nothing. */
int tide_lstore_ok_or_raise(lua_State *L, tide_Store *s, int rc);

/* Adds the shared-update methods (update_*, work_*, worker*, beat_start)
** to the method table on the top of the stack. */
void tide_lstore_work_methods(lua_State *L);

/* Fields of the table on the top of the stack; a NULL string or blob
** sets nothing. */
static inline void set_str(lua_State *L, const char *k, const char *v,
                           size_t n) {
  if (v == NULL) return;
  lua_pushlstring(L, v, n);
  lua_setfield(L, -2, k);
}

static inline void set_blob(lua_State *L, const char *k, const void *v,
                            size_t n) {
  set_str(L, k, (const char *)v, n);
}

static inline void set_int(lua_State *L, const char *k, int64_t v) {
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, k);
}

#endif
