/*
** tide: an incremental data-processing engine for Lua.
** This is the only public header. Every fallible call returns 0 or a
** negative TIDE_E* code; the message lives on the object the call used.
*/
#ifndef TIDE_H
#define TIDE_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#if defined(__GNUC__)
#define TIDE_API __attribute__((visibility("default")))
#else
#define TIDE_API
#endif

#define TIDE_VERSION_MAJOR 0
#define TIDE_VERSION_MINOR 1
#define TIDE_VERSION_PATCH 0
#define TIDE_VERSION "0.1.0"

/* Error codes: one list, negative values, like libuv's UV_E*. */
#define TIDE_ERRNO_MAP(XX)                                               \
  XX(NOMEM, "out of memory")                                            \
  XX(INVAL, "invalid argument")                                         \
  XX(IO, "input/output error")                                          \
  XX(ENCODE, "value cannot be encoded")                                 \
  XX(DECODE, "malformed or non-canonical encoding")                     \
  XX(STORE, "state store error")                                        \
  XX(LOCKED, "state store is locked by another writer")                 \
  XX(VERSION, "unsupported state store version")                        \
  XX(NOTSTORE, "file is not a tide state store")                        \
  XX(NOTFOUND, "not found")                                             \
  XX(LUA, "error in Lua code")                                          \
  XX(FAILED, "some components failed")

typedef enum {
  TIDE_OK = 0,
#define TIDE_ERRNO_ENUM(name, msg) TIDE__E##name,
  TIDE__EBASE = 0,
  TIDE_ERRNO_MAP(TIDE_ERRNO_ENUM)
#undef TIDE_ERRNO_ENUM
  TIDE__ELAST
} tide_errno_base;

#define TIDE_ERRNO_VALUE(name, msg) enum { TIDE_E##name = -TIDE__E##name };
TIDE_ERRNO_MAP(TIDE_ERRNO_VALUE)
#undef TIDE_ERRNO_VALUE

/* A short, static description of an error code. */
TIDE_API const char *tide_strerror(int code);

/* The name of an error code, from the list above: "ENOMEM" for
** TIDE_ENOMEM, "OK" for 0, "UNKNOWN" for any other value. Static. */
TIDE_API const char *tide_err_name(int code);

/* The allocator every part of tide allocates through; lua_Alloc's
** signature, so a host hands in one allocator for Lua and tide alike. */
typedef void *(*tide_Alloc)(void *ud, void *ptr, size_t osize, size_t nsize);

/* The version string, e.g. "0.1.0". */
TIDE_API const char *tide_version(void);

/* ---- The engine ----
**
** An engine runs one pipeline's app on its own lua_State, with its own
** libuv loop (or the host's) and allocator. It is a session: the state
** store, the component index and the loaded pipeline stay open across
** update cycles, so a second update costs what a no-change run costs. It
** never calls chdir, getenv or exit. Every call returns 0 or a negative
** TIDE_E* code; the message is on the engine (tide_engine_errmsg). Two
** engines in one process are independent; one engine is used by one
** thread at a time. The lua_State it makes collects garbage in
** generational mode (a live session's frames see minor collections).
**
** Threads and signals: a pipeline with `parallel` functions starts worker
** threads (its `jobs`), each with a Lua state made with the engine's
** allocator, which must then be thread-safe (realloc is). tide.exec with
** stdin makes the process ignore SIGPIPE, unless the host set a handler
** for it, so that a program that exits without reading cannot end it.
*/
typedef struct tide_Engine tide_Engine;
struct uv_loop_s;

/* Relative paths inside a pipeline (fs.walk("docs"), a table's db)
** resolve against the host process's working directory, which the engine
** never changes. */
typedef struct tide_EngineOptions {
  const char *db;        /* the state store; NULL: .tide/state.db beside
                            the pipeline file; relative: to the working
                            directory */
  const char *lua_dir;   /* the folder holding tide/init.lua (one that
                            does not: TIDE_EINVAL from tide_engine_new);
                            NULL: found on Lua's package.path */
  tide_Alloc alloc;      /* NULL: realloc and free; thread-safe when the
                            pipeline has parallel functions */
  void *alloc_ud;
  struct uv_loop_s *loop; /* NULL: the engine makes its own */
} tide_EngineOptions;

/* What one cycle did: the counts `tide update --json` prints. */
typedef struct tide_Stats {
  double elapsed_ms;
  struct { int64_t added, reprocessed, deleted, unchanged, errors; }
    components;
  struct { int64_t inserted, updated, deleted; } targets;
  int interrupted;  /* a stop ended the cycle early (it still committed) */
  int64_t cycles;   /* cycles this engine has run */
} tide_Stats;

/* tide_engine_update flags. */
#define TIDE_UPDATE_FULL_REPROCESS 1 /* run every component again */
#define TIDE_UPDATE_RESET 2          /* trust nothing remembered */
#define TIDE_UPDATE_PREVIEW 4        /* compute, write nothing */
#define TIDE_UPDATE_ALLOW_EMPTY 8    /* accept a source returning nothing */

/* Makes an engine; opts may be NULL. On failure other than TIDE_ENOMEM
** *out holds the message and must still be freed. */
TIDE_API int tide_engine_new(tide_Engine **out,
                             const tide_EngineOptions *opts);
/* Loads the pipeline file (it returns an app). */
TIDE_API int tide_engine_load(tide_Engine *e, const char *pipeline);
/* Runs one catch-up cycle of the loaded app. TIDE_EFAILED when some
** components failed (the others were committed; the message names the
** first failure), TIDE_ELOCKED when another process is updating the
** store, TIDE_EINVAL for a flag other than the TIDE_UPDATE_* above, or
** while a live cycle is under way (a step gave back before its end:
** update between cycles, or after tide_engine_live_stop). */
TIDE_API int tide_engine_update(tide_Engine *e, int flags);
/*
** Live mode in the host's own loop (README.md, Live mode).
** tide_engine_live_start runs a catch-up cycle (it blocks for it, as
** tide_engine_update does; components that failed are in the stats, not
** an error) and starts watching the folders of the app's fs.walk sources
** on the engine's loop. From then on the host calls tide_engine_step from
** its frame loop: each call polls the loop without blocking and does at
** most about budget_us of work (the scheduler gives the step back
** between components once the budget is spent, so a single component's
** own code, a folder walked whole, or the commit that ends a cycle may
** run past it; each step does at least one such part, so a budget of 0
** still moves a cycle on); the counts of each finished cycle are
** tide_engine_stats'.
** Folders are watched before the catch-up walks them.
** tide_engine_live_stop finishes the cycle under
** way (blocking), commits and stops watching. A host that runs the loop
** itself (an engine made on the host's loop) must still call
** tide_engine_step: the file events are taken there. All three are
** called from the engine's thread; TIDE_EINVAL when no pipeline is
** loaded, (start) when live mode runs already, (step, stop) when it
** does not, or (step) when budget_us is negative. A cycle that could
** not run, or whose components failed, still returns 0 from the step
** that ended it, with its message on the engine until the next call
** (for failed components, the first's path and message, as
** tide_engine_update gives them).
*/
TIDE_API int tide_engine_live_start(tide_Engine *e);
TIDE_API int tide_engine_step(tide_Engine *e, long budget_us);
TIDE_API int tide_engine_live_stop(tide_Engine *e);

/* The last cycle's counts. */
TIDE_API int tide_engine_stats(const tide_Engine *e, tide_Stats *out);
/* The message of the last call that failed, "" when the last call that
** can fail (load, update, live start, step, stop) succeeded. Borrowed
** until the next call. */
TIDE_API const char *tide_engine_errmsg(const tide_Engine *e);
/* The engine's Lua state: a host may register functions in it. */
TIDE_API lua_State *tide_engine_lua(tide_Engine *e);
/* Closes the store, the Lua state and the loop (unless the host's), and
** frees everything. Accepts NULL. A host's loop must go on running (or be
** run once more) afterwards: a checkpoint of the store still under way
** on libuv's thread pool finishes there and frees what it used. */
TIDE_API void tide_engine_free(tide_Engine *e);

/* Opens the C core as a Lua module (`require "tide.core"`). [-0, +1, m] */
TIDE_API int luaopen_tide_core(lua_State *L);

#endif
