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
/* core.fork_worker, core.exit_now, core.setenv (lfork.c); main.c gives
** the command line a forked worker's title overwrites. */
void tide_lfork_open(lua_State *L);
void tide_lfork_set_args(int argc, char **argv);
void tide_lindex_open(lua_State *L);
void tide_lsplit_open(lua_State *L);
/* core.gunzip, core.html_text (ldocs.c). */
void tide_ldocs_open(lua_State *L);
void tide_lhash_embed_open(lua_State *L);
void tide_lfs_open(lua_State *L);
void tide_lfs_apply_open(lua_State *L);
void tide_lsqlite_open(lua_State *L);
void tide_lsqlite_rows_open(lua_State *L);
void tide_lsignal_open(lua_State *L);
void tide_lrecord_open(lua_State *L);
void tide_ljson_open(lua_State *L);
void tide_ljsonl_open(lua_State *L);
void tide_lsched_open(lua_State *L);
void tide_lwait_open(lua_State *L);
void tide_lhttp_open(lua_State *L);
void tide_lvec_open(lua_State *L);
void tide_lpg_open(lua_State *L);
void tide_lpg_copy_open(lua_State *L);
void tide_lworkers_open(lua_State *L);
void tide_lclaims_open(lua_State *L);


#include <stddef.h>
#include <stdint.h>

/* Encodes the value at idx with the binding's shared encoder, raising a
** Lua error that names the path on failure. The bytes stay valid until
** the encoder it pushes is popped. `root` names the value in messages.
** [-0, +1, e] */
const uint8_t *tide_lcbor_encode(lua_State *L, int idx, const char *root,
                                 size_t *len);
/* The same without raising: NULL when the value cannot be encoded (the
** encoder, pushed either way, holds the message). [-0, +1, m] */
const uint8_t *tide_lcbor_encode_try(lua_State *L, int idx, const char *root,
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

/* Store, index and loop objects over an engine's own (engine.h): their
** close and __gc let go without freeing. [-0, +1, m] */
void tide_lstore_push_borrowed(lua_State *L, struct tide_Store *s);
struct tide_Index;
void tide_lindex_push_borrowed(lua_State *L, struct tide_Index *ix);
struct tide_IndexEach;
/* The each (index_each.h) of an index:each object, raising if it or its
** index is closed. [-0, +0, v] */
struct tide_IndexEach *tide_lindex_check_each(lua_State *L, int idx);
struct uv_loop_s;
void tide_lloop_push_borrowed(lua_State *L, struct uv_loop_s *loop);
/* The libuv loop of the loop object at idx; raises when it is not one or
** is closed. */
struct uv_loop_s *tide_lloop_check(lua_State *L, int idx);
/* core.watch_new (lwatch.c). */
void tide_lwatch_open(lua_State *L);
void tide_lluv_open(lua_State *L);
struct tide_Sched;
void tide_lsched_push_borrowed(lua_State *L, struct tide_Sched *s);
/* A pool of n worker threads on loop (lworkers.c), whose states find
** modules through path and cpath; raises when it cannot start them.
** [-0, +1, e] */
void tide_lworkers_push(lua_State *L, struct uv_loop_s *loop, int n,
                        const char *path, const char *cpath);

/* Whether a trapped SIGINT or SIGTERM came (lsignal.c). */
int tide_stop_requested(void);
/* A descriptor that becomes readable when that happens (a loop watches it
** so that a stop ends a wait), or -1 when no signal is trapped. */
int tide_stop_fd(void);
/* lua_resume(co, from, narg, nres), with co noted as the coroutine a
** signal must reach while it runs (lsignal.c). */
int tide_lsignal_resume(lua_State *co, lua_State *from, int narg,
                        int *nres);

/* Suspending the running task on something the loop delivers (lsched.c).
** From a C function running in L: the scheduler of the task L runs, with
** the task anchored under *anchor (for tide_sched_wait_begin), or NULL
** when L cannot wait there (outside a component's task, or where it
** cannot yield): the caller then blocks. [-0, +0, m] */
struct tide_Sched *tide_lsched_suspend(lua_State *L, int *anchor);
/* The scheduler running now (a cycle is under way), or NULL.
** [-0, +0, -] */
struct tide_Sched *tide_lsched_running(lua_State *L);
/* Yields the task to its scheduler until its wait is done; k continues.
** Use as `return tide_lsched_yield(L, ctx, k);`. */
int tide_lsched_yield(lua_State *L, lua_KContext ctx, lua_KFunction k);

/* Calls the function below nargs arguments in protected mode under a
** message handler that adds a traceback, as lua.c does: every entry from
** C into Lua code goes through it. [-(nargs+1), +(nres|1), -] */
int tide_lua_pcall(lua_State *L, int nargs, int nres);

void tide_lengine_open(lua_State *L);
void tide_lmemo_open(lua_State *L);
struct tide_Engine;
/* An engine tide_engine_new made, as a Lua object that borrows it.
** [-0, +1, m] */
void tide_lengine_push(lua_State *L, struct tide_Engine *e);

#endif
