/*
** Lua binding of stopping a run on SIGINT or SIGTERM.
**
** core.resume(co, ...) is coroutine.resume for the scheduler's tasks: it
** also notes which coroutine runs, so that a signal can reach it.
**
** core.trap_signals(own_source) is for the tide command only: a program
** that embeds tide keeps its own signal handling. It installs handlers for
** SIGINT, SIGTERM and SIGUSR1, except for a signal already ignored (SIGINT in a
** background job of a script): whoever started tide meant it so. The
** first signal sets the stop flag, which the scheduler reads before each
** task it resumes (core.stop_requested()), and sets a hook on the
** coroutine running at that moment. The hook raises "interrupted" as soon
** as that coroutine runs code other than tide's own (chunks whose source
** begins with own_source), so a component stuck in a loop fails as any
** failed component does, while a step of the engine is never cut in half.
** A second SIGINT or SIGTERM exits at once with status 130. SIGUSR1 is
** a stop asked by a shared update's lead of a worker it started
** (core.ask_stop): it stops the worker as a first signal does, and
** counts as no signal, so that a worker that a Ctrl-C (sent to the whole
** process group) stops already goes on stopping as it was, whichever of
** the two signals the kernel delivers first.
**
** Misuse raises; trap_signals returns nil, message when the handlers
** cannot be installed; resume returns false, message as coroutine.resume
** does.
**
** A signal is process-wide by nature, so the signal count and the running
** coroutine are statics: the only ones in tide, written by the handler and
** by the one thread that runs the scheduler. The source prefix lives in the
** registry of the state that trapped the signals.
*/
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "lcore.h"

/* Whether a SIGINT or SIGTERM came since trap_signals (the next one
** exits); whether a stop came (that, or SIGUSR1: a lead's request); and
** the coroutine core.resume is running (NULL when none is). */
static volatile sig_atomic_t signals_caught;
static volatile sig_atomic_t stop_asked;
static lua_State *volatile running;
/* A pipe the first signal writes a byte to, so that a scheduler blocked
** on its loop wakes up (tide_stop_fd); -1 until signals are trapped. */
static int stop_pipe[2] = {-1, -1};

/* Registry key of the source prefix of tide's own Lua files. */
static const char own_source_key = 0;

/* The innermost Lua function on L's stack into *fn ("Sl" filled in);
** returns 0 when there is none. */
static int innermost_lua(lua_State *L, lua_Debug *fn) {
  int level;
  for (level = 0; lua_getstack(L, level, fn); level++) {
    lua_getinfo(L, "Sl", fn);
    if (fn->what[0] != 'C') return 1;
  }
  return 0;
}

/* The hook the first signal sets on the running coroutine. It stays set,
** so that a pcall in the user's code cannot swallow the interrupt; in
** tide's own code it lets the step go on until the coroutine is back in
** the user's code, yields or ends. [-0, +0, v] */
static void interrupt(lua_State *L, lua_Debug *ar) {
  lua_Debug fn;
  size_t len = 0;
  const char *own;
  int in_tide;
  (void)ar;
  if (!innermost_lua(L, &fn)) return;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &own_source_key);
  own = lua_tolstring(L, -1, &len);
  in_tide = own != NULL && len > 0 && fn.srclen >= len &&
            memcmp(fn.source, own, len) == 0;
  lua_pop(L, 1);
  if (in_tide) return;
  if (fn.currentline > 0)
    lua_pushfstring(L, "%s:%d: interrupted", fn.short_src, fn.currentline);
  else
    lua_pushliteral(L, "interrupted");
  lua_error(L);
}

static void on_signal(int sig) {
  static const char again[] = "tide: interrupted again: exiting at once\n";
  lua_State *co = running;
  if (sig != SIGUSR1) {
    if (signals_caught > 0) {
      ssize_t written = write(STDERR_FILENO, again, sizeof again - 1);
      (void)written;
      _exit(130);
    }
    signals_caught = 1;
  }
  if (stop_asked) return;
  stop_asked = 1;
  if (stop_pipe[1] >= 0) {
    ssize_t w = write(stop_pipe[1], "", 1);
    (void)w;
  }
  if (co != NULL)
    lua_sethook(co, interrupt, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT,
                1);
}

/* trap_signals([own_source]) -> true, or fail and a message */
static int trap_signals(lua_State *L) {
  static const int trapped[] = {SIGINT, SIGTERM, SIGUSR1};
  struct sigaction sa, old;
  size_t i;
  luaL_optstring(L, 1, NULL);
  lua_settop(L, 1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &own_source_key);
  if (stop_pipe[0] < 0 && pipe(stop_pipe) == 0) {
    for (i = 0; i < 2; i++) {
      fcntl(stop_pipe[i], F_SETFD, FD_CLOEXEC);
      fcntl(stop_pipe[i], F_SETFL, O_NONBLOCK);
    }
  }
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART; /* a read or a write goes on after the first */
  sigemptyset(&sa.sa_mask); /* neither interrupts the other's handler */
  sigaddset(&sa.sa_mask, SIGINT);
  sigaddset(&sa.sa_mask, SIGTERM);
  sigaddset(&sa.sa_mask, SIGUSR1);
  for (i = 0; i < sizeof trapped / sizeof trapped[0]; i++) {
    if (sigaction(trapped[i], NULL, &old) != 0 ||
        (old.sa_handler != SIG_IGN &&
         sigaction(trapped[i], &sa, NULL) != 0)) {
      luaL_pushfail(L);
      lua_pushliteral(L, "cannot install the signal handlers");
      return 2;
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

int tide_stop_requested(void) { return stop_asked != 0; }

int tide_stop_fd(void) { return stop_pipe[0]; }

/* stop_requested() -> whether a trapped signal came */
static int stop_requested(lua_State *L) {
  lua_pushboolean(L, stop_asked != 0);
  return 1;
}

int tide_lsignal_resume(lua_State *co, lua_State *from, int narg,
                        int *nres) {
  lua_State *prev = running;
  int status;
  running = co;
  status = lua_resume(co, from, narg, nres);
  running = prev;
  return status;
}

/* resume(co, ...) -> true, results... | false, message: coroutine.resume,
** with co noted as the running coroutine while it runs. */
static int resume(lua_State *L) {
  lua_State *co = lua_tothread(L, 1);
  int narg = lua_gettop(L) - 1, nres, status;
  luaL_argexpected(L, co != NULL, 1, "coroutine");
  if (!lua_checkstack(co, narg)) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "too many arguments to resume");
    return 2;
  }
  lua_xmove(L, co, narg);
  status = tide_lsignal_resume(co, L, narg, &nres);
  if (status == LUA_OK || status == LUA_YIELD) {
    if (!lua_checkstack(L, nres + 1)) {
      lua_pop(co, nres);
      lua_pushboolean(L, 0);
      lua_pushliteral(L, "too many results to resume");
      return 2;
    }
    lua_pushboolean(L, 1);
    lua_xmove(co, L, nres);
    return nres + 1;
  }
  lua_pushboolean(L, 0);
  lua_xmove(co, L, 1); /* the error object */
  return 2;
}

void tide_lsignal_open(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"resume", resume},
    {"trap_signals", trap_signals},
    {"stop_requested", stop_requested},
    {NULL, NULL},
  };
  luaL_setfuncs(L, funcs, 0);
}
