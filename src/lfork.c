/*
** Lua binding of the lead's forked workers (cli.lua). A shared update's
** lead forks its workers at its start, before it has a thread, a
** connection or a loop running, and each waits there until the lead's
** update is open. A worker so made starts from the lead's process as it
** stands, tide's Lua files compiled and libpq with its libraries loaded,
** instead of paying again for an exec, the dynamic linking of some thirty
** libraries and the compilation of tide's modules (about 20 of the 32 ms
** of CPU a worker's start takes on a 2-core machine, where 8 workers start
** at once).
**
** core.fork_worker(name, title) -> pid, channel in the lead; 0, channel
**   in the worker; nil, message when the process cannot fork: it runs
**   more than one thread (a fork copies the calling thread alone, and a
**   lock another holds would stay locked in the copy), or fork(2) failed.
**   The standard streams are flushed first, so that what they buffered is
**   not written twice. In the worker, the process's name (at most 15
**   bytes: top, ps -o comm) becomes name and its command line title (as
**   much as fits in the lead's): ps shows that, not the lead's arguments,
**   which may hold a password.
** channel:send(text) (the lead) -> true, or nil, message: writes text
**   whole (a worker that died is no signal to the lead: EPIPE).
** channel:receive() (the worker) -> what the lead sent, once it closed
**   its end; nil when it sent nothing (it ended first).
** channel:close(): closes this process's end; a worker closes its copies
**   of the channels forked before its own, so that each sees the end of
**   the lead's alone. Also its __gc.
** core.exit_now(code): flushes the standard streams and ends the process
**   at once. A forked worker never returns into the lead's code, nor
**   closes the lead's engine and loop, of which it holds copies.
** core.setenv(name, value): as setenv(3) (os.getenv reads it), for the
**   variables a worker the lead spawns gets in its environment.
**
** tide_lfork_set_args(argc, argv) (main.c) gives the area of the command
** line that a title overwrites.
**
** Misuse raises; runtime failures return nil, message.
*/
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <lauxlib.h>
#include <lua.h>

#include "error.h"
#include "lcore.h"

#define CHANNEL_TYPE "tide.ForkChannel"

typedef struct {
  int fd; /* -1 once closed */
} Channel;

/* The command line's strings, contiguous from args to args + args_size. */
static char *args;
static size_t args_size;

void tide_lfork_set_args(int argc, char **argv) {
  int i;
  if (argc < 1) return;
  for (i = 1; i < argc; i++)
    if (argv[i] != argv[i - 1] + strlen(argv[i - 1]) + 1) return;
  args = argv[0];
  args_size = (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) - argv[0]) + 1;
}

static void set_title(const char *name, const char *title) {
#ifdef __linux__
  char comm[16];
  snprintf(comm, sizeof comm, "%s", name);
  prctl(PR_SET_NAME, comm);
#else
  (void)name;
#endif
  if (args == NULL) return;
  memset(args, 0, args_size);
  memcpy(args, title, strnlen(title, args_size - 1));
}

/* Whether this process runs one thread: 1, 0, or -1 when it cannot tell
** (not Linux: taken as one). */
static int single_threaded(void) {
#ifdef __linux__
  DIR *d = opendir("/proc/self/task");
  struct dirent *e;
  int n = 0;
  if (d == NULL) return -1;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n == 1;
#else
  return -1;
#endif
}

static int push_failure(lua_State *L, const char *what, int code) {
  char text[TIDE_ERRNO_TEXT_SIZE];
  luaL_pushfail(L);
  lua_pushfstring(L, "%s: %s", what,
                  tide_error_errno_text(code, text, sizeof text));
  return 2;
}

static Channel *push_channel(lua_State *L, int fd) {
  Channel *c = lua_newuserdatauv(L, sizeof *c, 0);
  c->fd = fd;
  luaL_setmetatable(L, CHANNEL_TYPE);
  return c;
}

static int fork_worker(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  const char *title = luaL_checkstring(L, 2);
  int fds[2], one;
  pid_t pid;
  if ((one = single_threaded()) == 0) {
    luaL_pushfail(L);
    lua_pushliteral(L, "cannot fork: this process runs threads");
    return 2;
  }
  /* A socket pair, not a pipe: the lead's send to a worker that died
  ** fails with EPIPE instead of raising SIGPIPE (MSG_NOSIGNAL). */
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    return push_failure(L, "cannot fork", errno);
  fflush(NULL);
  pid = fork();
  if (pid < 0) {
    int code = errno;
    close(fds[0]);
    close(fds[1]);
    return push_failure(L, "cannot fork", code);
  }
  if (pid == 0) {
    close(fds[0]);
    set_title(name, title);
    lua_pushinteger(L, 0);
    push_channel(L, fds[1]);
  } else {
    close(fds[1]);
    lua_pushinteger(L, (lua_Integer)pid);
    push_channel(L, fds[0]);
  }
  return 2;
}

static Channel *check_channel(lua_State *L) {
  Channel *c = luaL_checkudata(L, 1, CHANNEL_TYPE);
  if (c->fd < 0) luaL_error(L, "channel is closed");
  return c;
}

static int channel_send(lua_State *L) {
  Channel *c = check_channel(L);
  size_t len, done = 0;
  const char *text = luaL_checklstring(L, 2, &len);
  while (done < len) {
    ssize_t n = send(c->fd, text + done, len - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return push_failure(L, "cannot tell the worker", errno);
    done += (size_t)n;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int channel_receive(lua_State *L) {
  Channel *c = check_channel(L);
  luaL_Buffer b;
  size_t total = 0;
  luaL_buffinit(L, &b);
  for (;;) {
    char *p = luaL_prepbuffer(&b);
    ssize_t n = recv(c->fd, p, LUAL_BUFFERSIZE, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return push_failure(L, "cannot hear from the lead", errno);
    if (n == 0) break;
    luaL_addsize(&b, (size_t)n);
    total += (size_t)n;
  }
  luaL_pushresult(&b);
  if (total == 0) lua_pushnil(L);
  return 1;
}

static int channel_close(lua_State *L) {
  Channel *c = luaL_checkudata(L, 1, CHANNEL_TYPE);
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  return 0;
}

static int exit_now(lua_State *L) {
  int code = (int)luaL_optinteger(L, 1, 0);
  fflush(NULL);
  _exit(code);
  return 0;
}

static int set_env(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  const char *value = luaL_checkstring(L, 2);
  luaL_argcheck(L, name[0] != '\0' && strchr(name, '=') == NULL, 1,
                "a variable's name expected");
  if (setenv(name, value, 1) != 0) return push_failure(L, name, errno);
  lua_pushboolean(L, 1);
  return 1;
}

void tide_lfork_open(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"send", channel_send},
    {"receive", channel_receive},
    {"close", channel_close},
    {NULL, NULL},
  };
  static const luaL_Reg funcs[] = {
    {"fork_worker", fork_worker},
    {"exit_now", exit_now},
    {"setenv", set_env},
    {NULL, NULL},
  };
  if (luaL_newmetatable(L, CHANNEL_TYPE)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, channel_close);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, funcs, 0);
}
