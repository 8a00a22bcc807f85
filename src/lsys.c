/*
** Lua binding of the few process-level calls the CLI needs and Lua lacks:
** chdir, getcwd, isatty, errno_text for messages, exists, and for the
** workers of a shared update getpid, hostname, spawn, stop, ask_stop,
** reap and die_with_parent. chdir,
** getcwd, hostname and spawn return nil, message when the call fails;
** misuse (a path holding a NUL, a number that is no errno value) raises.
*/
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <lauxlib.h>
#include <lua.h>

#include "error.h"
#include "lcore.h"

static int sys_chdir(lua_State *L) {
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  char text[TIDE_ERRNO_TEXT_SIZE];
  luaL_argcheck(L, strlen(path) == len, 1, "path contains a NUL byte");
  if (chdir(path) != 0) {
    luaL_pushfail(L);
    lua_pushfstring(L, "%s: %s", path,
                    tide_error_errno_text(errno, text, sizeof text));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int sys_getcwd(lua_State *L) {
  char buf[PATH_MAX];
  if (getcwd(buf, sizeof buf) == NULL) {
    luaL_pushfail(L);
    lua_pushstring(L, tide_error_errno_text(errno, buf, sizeof buf));
    return 2;
  }
  lua_pushstring(L, buf);
  return 1;
}

/* isatty(fd): whether the descriptor (0, 1 or 2) is a terminal. */
static int sys_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
  return 1;
}

/* errno_text(n): the description of the errno value n, lowercase
** ("permission denied"), for messages such as "docs/a.md: permission
** denied". */
static int sys_errno_text(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  char text[TIDE_ERRNO_TEXT_SIZE];
  luaL_argcheck(L, n >= 0 && n <= INT_MAX, 1, "not an errno value");
  lua_pushstring(L, tide_error_errno_text((int)n, text, sizeof text));
  return 1;
}

/* exists(path): whether something is at path. It never opens the file:
** closing a descriptor of a database file would drop the locks every
** SQLite connection of this process holds on it (POSIX record locks are
** the process's), and another process could then take the database as
** unused and delete the write-ahead log under them. */
static int sys_exists(lua_State *L) {
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  struct stat st;
  luaL_argcheck(L, strlen(path) == len, 1, "path contains a NUL byte");
  lua_pushboolean(L, stat(path, &st) == 0);
  return 1;
}

/* exe_path(): the running executable, for starting more of it (the
** workers of a shared update); nil, message when it cannot be read. */
static int sys_exe_path(lua_State *L) {
  char path[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  if (n < 0) {
    luaL_pushfail(L);
    lua_pushstring(L, tide_error_errno_text(errno, path, sizeof path));
    return 2;
  }
  lua_pushlstring(L, path, (size_t)n);
  return 1;
}

/* getpid(): this process's id. */
static int sys_getpid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)getpid());
  return 1;
}

/* hostname(): the machine's name, as workers report it. */
static int sys_hostname(lua_State *L) {
  char name[256];
  if (gethostname(name, sizeof name) != 0) {
    luaL_pushfail(L);
    lua_pushstring(L, tide_error_errno_text(errno, name, sizeof name));
    return 2;
  }
  name[sizeof name - 1] = '\0';
  lua_pushstring(L, name);
  return 1;
}

extern char **environ;

/* Whether entry ("NAME=value") sets one of the names set sets. */
static int overridden(const char *entry, const char *const *set, int n) {
  int i;
  for (i = 0; i < n; i++) {
    size_t len = strcspn(set[i], "=");
    if (strncmp(entry, set[i], len + 1) == 0) return 1;
  }
  return 0;
}

/* spawn(argv[, env]): starts argv[1] (a path) with argv and this
** process's environment, with env's "NAME=value" strings set on top
** (a secret goes there, not in argv, which every user can list);
** standard streams shared. Its pid, to be reaped. */
static int sys_spawn(lua_State *L) {
  const char *argv[64], *set[16];
  const char **envp;
  char text[TIDE_ERRNO_TEXT_SIZE];
  lua_Integer i, n, nset = 0, nenv = 0;
  pid_t pid;
  int rc;
  luaL_checktype(L, 1, LUA_TTABLE);
  n = (lua_Integer)lua_rawlen(L, 1);
  luaL_argcheck(L, n >= 1 && n < 64, 1, "1 to 63 arguments expected");
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, 1, i);
    argv[i - 1] = luaL_checkstring(L, -1);
    lua_pop(L, 1); /* the string stays in the table */
  }
  argv[n] = NULL;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    nset = (lua_Integer)lua_rawlen(L, 2);
    luaL_argcheck(L, nset < 16, 2, "at most 15 variables expected");
    for (i = 1; i <= nset; i++) {
      lua_rawgeti(L, 2, i);
      set[i - 1] = luaL_checkstring(L, -1);
      luaL_argcheck(L, strchr(set[i - 1], '=') != NULL, 2,
                    "NAME=value strings expected");
      lua_pop(L, 1);
    }
  }
  while (environ[nenv]) nenv++;
  envp = lua_newuserdatauv(L, sizeof *envp * (size_t)(nenv + nset + 1), 0);
  for (n = 0, i = 0; i < nenv; i++)
    if (!overridden(environ[i], set, (int)nset)) envp[n++] = environ[i];
  for (i = 0; i < nset; i++) envp[n++] = set[i];
  envp[n] = NULL;
  rc = posix_spawn(&pid, argv[0], NULL, NULL, (char *const *)argv,
                   (char *const *)envp);
  if (rc != 0) {
    luaL_pushfail(L);
    lua_pushfstring(L, "%s: %s", argv[0],
                    tide_error_errno_text(rc, text, sizeof text));
    return 2;
  }
  lua_pushinteger(L, (lua_Integer)pid);
  return 1;
}

/* stop(pid): sends SIGTERM to a child this process started. */
static int sys_stop(lua_State *L) {
  lua_pushboolean(L, kill((pid_t)luaL_checkinteger(L, 1), SIGTERM) == 0);
  return 1;
}

/* ask_stop(pid): sends SIGUSR1 to a tide child this process started,
** which stops as a first SIGINT or SIGTERM stops it, and never more than
** that: one that a signal stops already goes on as it was (lsignal.c). */
static int sys_ask_stop(lua_State *L) {
  lua_pushboolean(L, kill((pid_t)luaL_checkinteger(L, 1), SIGUSR1) == 0);
  return 1;
}

/* reap(pid): nil while the child runs; else its exit code, or 128 plus
** the signal that ended it. */
static int sys_reap(lua_State *L) {
  int status;
  pid_t pid = (pid_t)luaL_checkinteger(L, 1), got;
  do got = waitpid(pid, &status, WNOHANG);
  while (got < 0 && errno == EINTR);
  if (got == 0) return 0;
  if (got < 0) {
    lua_pushinteger(L, 255);
    return 1;
  }
  lua_pushinteger(L, WIFEXITED(status) ? WEXITSTATUS(status)
                                       : 128 + WTERMSIG(status));
  return 1;
}

/* die_with_parent(pid): this process is killed (SIGKILL) when its parent
** ends; true when pid is still its parent, false when pid ended before
** (the parent is another already). A shared update's workers started by
** a lead end with it: none of them writes a target once its lead is gone
** and the next update may have begun. Where the system cannot tell
** (outside Linux), true, and nothing is done. */
static int sys_die_with_parent(lua_State *L) {
  pid_t parent = (pid_t)luaL_checkinteger(L, 1);
#ifdef __linux__
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_pushboolean(L, getppid() == parent);
#else
  (void)parent;
  lua_pushboolean(L, 1);
#endif
  return 1;
}

void tide_lsys_open(lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"chdir", sys_chdir},
    {"getcwd", sys_getcwd},
    {"isatty", sys_isatty},
    {"errno_text", sys_errno_text},
    {"exists", sys_exists},
    {"getpid", sys_getpid},
    {"exe_path", sys_exe_path},
    {"hostname", sys_hostname},
    {"spawn", sys_spawn},
    {"reap", sys_reap},
    {"stop", sys_stop},
    {"ask_stop", sys_ask_stop},
    {"die_with_parent", sys_die_with_parent},
    {NULL, NULL},
  };
  luaL_setfuncs(L, funcs, 0);
}
