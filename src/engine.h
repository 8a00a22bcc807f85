/*
** The engine: what one app's updates share for as long as the host keeps
** it (a session) — the event loop, the state store, the component index,
** the last cycle's statistics and the last error message. A cycle is one
** catch-up pass (`app:update()`); the Lua side (run.lua) runs it through
** the engine's store, index and loop.
**
** Session and cycle. The store is opened by the first cycle and stays
** open; the writer lock is held only while a cycle runs, so another
** process may update the store between cycles (tide_store_unlock). The
** index is reloaded at every cycle start from the store, whose pages are
** warm. An engine never calls chdir, getenv or exit: the host gives the
** base folder (what relative paths in a pipeline are relative to) and the
** store location.
**
** This header is internal: the public C API is tide.h's tide_engine_*,
** built on these calls (host.c), and the Lua binding is lengine.c.
*/
#ifndef TIDE_ENGINE_H
#define TIDE_ENGINE_H

#include <stdint.h>

#include <uv.h>

#include "index.h"
#include "scheduler.h"
#include "store.h"
#include "tide.h"

struct tide_Engine {
  tide_Alloc alloc;
  void *ud;
  lua_State *L;        /* the state user code runs in (its main thread) */
  int owns_state;      /* made by tide_engine_new: closed by it */
  uv_loop_t own_loop;
  uv_loop_t *loop;     /* &own_loop, or the host's */
  char *base, *db;     /* absolute, owned */
  tide_Store *store;   /* NULL until the first cycle */
  tide_Index *index;
  tide_Sched *sched;   /* the ready queue and waits, on loop */
  int in_cycle;
  int shared;          /* a worker of a shared update: TIDE_STORE_SHARED */
  int app_ref;         /* the loaded app (tide_engine_load), or LUA_NOREF */
  tide_Stats stats;
  char msg[1024];
};

/* Makes an engine for one Lua state L (a host's: tide_engine_new makes
** its own): base (absolute) and db (absolute, or relative to
** base) are copied; loop NULL gives the session its own loop. Returns 0 or
** a TIDE_E* code; on failure other than TIDE_ENOMEM *out holds the
** message, to be freed by the caller. */
int tide_engine_make(tide_Engine **out, lua_State *L, const char *base,
                     const char *db, uv_loop_t *loop, tide_Alloc alloc,
                     void *ud);
/* Closes the store and frees everything the engine owns but its Lua
** state. Accepts NULL. */
void tide_engine_destroy(tide_Engine *e);
/* dir + "/" + path (path alone when dir is NULL or path is absolute),
** allocated through the engine's allocator, or NULL when out of memory;
** given back with tide_engine_free_path. */
char *tide_engine_path(tide_Engine *e, const char *dir, const char *path);
void tide_engine_free_path(tide_Engine *e, char *p);

/* Sets the message (printf-style) and returns code. */
int tide_engine_fail(tide_Engine *e, int code, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 3, 4)))
#endif
  ;

const char *tide_engine_base(const tide_Engine *e);
const char *tide_engine_db(const tide_Engine *e);
uv_loop_t *tide_engine_loop(tide_Engine *e);

/* Opens the store the first time, takes the writer lock again after that;
** *reopened says whether the store was opened now (or another writer
** changed it since the last cycle). TIDE_ELOCKED when another process is
** updating it; the message names the store. */
int tide_engine_cycle_begin(tide_Engine *e, int *reopened);
/* Commits what the cycle left and lets the writer lock go. */
int tide_engine_cycle_end(tide_Engine *e);
int tide_engine_in_cycle(const tide_Engine *e);
/* The store (open once a cycle began), the component index and the
** scheduler. */
tide_Store *tide_engine_store(tide_Engine *e);
tide_Index *tide_engine_index(tide_Engine *e);
tide_Sched *tide_engine_sched(tide_Engine *e);

/* The last cycle's counts, written by the cycle (tide.h's tide_Stats). */
tide_Stats *tide_engine_stats_of(tide_Engine *e);

/* Whether the engine was made by tide_engine_new (it owns its Lua state). */
int tide_engine_owns_state(const tide_Engine *e);
lua_State *tide_engine_state(tide_Engine *e);

#endif
