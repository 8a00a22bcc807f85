/*
** The lead's forked workers (lfork.c), through tide.core as cli.lua calls
** it: a process that runs a second thread is refused; otherwise the
** worker hears what the lead sends once the lead closes its end (nothing
** when the lead closes without sending), bears its name, and ends with
** exit_now's status; setenv reaches getenv.
*/
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "check.h"
#include "tide.h"

static lua_State *new_state(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "core", luaopen_tide_core, 1);
  lua_pop(L, 1);
  return L;
}

/* Runs chunk, which returns an integer (or fails: -1, message printed). */
static long long run(lua_State *L, const char *chunk) {
  long long n;
  if (luaL_dostring(L, chunk) != LUA_OK) {
    fprintf(stderr, "  %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    return -1;
  }
  n = (long long)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return n;
}

/* The status a child ended with, or -1. */
static int status_of(long long pid) {
  int status;
  if (pid <= 0 || waitpid((pid_t)pid, &status, 0) != (pid_t)pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;

static void *hold(void *arg) {
  (void)arg;
  pthread_mutex_lock(&gate);
  pthread_mutex_unlock(&gate);
  return NULL;
}

static void test_refused_with_threads(void) {
  lua_State *L = new_state();
  pthread_t t;
  pthread_mutex_lock(&gate);
  CHECK_EQ_INT(pthread_create(&t, NULL, hold, NULL), 0);
  CHECK_EQ_INT(run(L, "local pid, why = core.fork_worker('w', 'w') "
                      "assert(pid == nil, 'forked with a thread running') "
                      "assert(why == 'cannot fork: this process runs "
                      "threads', why) return 1"), 1);
  pthread_mutex_unlock(&gate);
  pthread_join(t, NULL);
  lua_close(L);
}

static void test_told_then_ends(void) {
  lua_State *L = new_state();
  long long pid;
  char path[64], comm[32] = "";
  FILE *f;
  int i;
  /* The worker waits to be told, then ends with the length it heard. */
  pid = run(L, "local pid, ch = core.fork_worker('tide worker', "
               "'tide worker x.lua') "
               "if pid == 0 then "
               "  local text = ch:receive() "
               "  core.exit_now(text == 'go\\0on' and 7 or 3) "
               "end "
               "lead_channel = ch return pid");
  CHECK(pid > 0);
  /* Its name is set once it runs: looked at for up to a second. */
  snprintf(path, sizeof path, "/proc/%lld/comm", pid);
  for (i = 0; i < 100 && strncmp(comm, "tide worker", 11) != 0; i++) {
    if ((f = fopen(path, "r")) != NULL) {
      if (fgets(comm, sizeof comm, f) == NULL) comm[0] = '\0';
      fclose(f);
    }
    usleep(10000);
  }
  CHECK_STR_CONTAINS(comm, "tide worker");
  CHECK_EQ_INT(run(L, "assert(lead_channel:send('go\\0on')) "
                      "lead_channel:close() return 1"), 1);
  CHECK_EQ_INT(status_of(pid), 7);
  lua_close(L);
}

static void test_lead_closes_without_telling(void) {
  lua_State *L = new_state();
  long long pid = run(L, "local pid, ch = core.fork_worker('w', 'w') "
                         "if pid == 0 then "
                         "  core.exit_now(ch:receive() == nil and 5 or 6) "
                         "end "
                         "ch:close() return pid");
  CHECK_EQ_INT(status_of(pid), 5);
  /* A closed channel is misuse. */
  pid = run(L, "local pid, ch = core.fork_worker('w', 'w') "
               "if pid == 0 then core.exit_now(0) end "
               "ch:close() "
               "local ok, err = pcall(ch.send, ch, 'x') "
               "assert(not ok and err:find('channel is closed'), err) "
               "return pid");
  CHECK(pid > 0);
  CHECK_EQ_INT(status_of(pid), 0);
  lua_close(L);
}

static void test_setenv(void) {
  lua_State *L = new_state();
  CHECK_EQ_INT(run(L, "assert(core.setenv('TIDE_TEST_FORK', 'v1')) "
                      "return os.getenv('TIDE_TEST_FORK') == 'v1' and 1 "
                      "or 0"), 1);
  CHECK_EQ_INT(run(L, "return pcall(core.setenv, 'A=B', 'x') and 0 or 1"),
               1);
  lua_close(L);
}

int main(void) {
  static const CheckTest tests[] = {
    {"refused with threads", test_refused_with_threads},
    {"told, then ends", test_told_then_ends},
    {"the lead closes without telling", test_lead_closes_without_telling},
    {"setenv", test_setenv},
    {NULL, NULL},
  };
  return check_run("test_fork", tests);
}
