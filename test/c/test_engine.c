/*
** The public C API (tide.h's tide_engine_*) as an embedding host uses it:
** two engines in one process, each on its own Lua state, allocator and
** loop, loading its own pipeline over real files and updating a real
** SQLite table, cycles interleaved; every byte given back once freed.
** And live mode stepped from a host's own loop, two engines on it.
** Run from the repository root (the Lua files are in ./lua).
*/
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>
#include <uv.h>

#include "check.h"
#include "tide.h"

/* An allocator that counts the bytes it holds. */
static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  long long *held = ud;
  if (ptr) *held -= (long long)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  ptr = realloc(ptr, nsize);
  if (ptr) *held += (long long)nsize;
  else if (osize) *held += (long long)osize; /* the old block stays */
  return ptr;
}

typedef struct {
  char dir[64];
  char pipeline[128];
  char docs[128];
  long long held;
  tide_Engine *e;
} Project;

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (f == NULL) {
    perror(path);
    exit(2);
  }
  fputs(text, f);
  fclose(f);
}

/* A project in a temporary folder: docs/ with n files and a pipeline that
** writes one row per file into out.db (absolute paths: the engine never
** changes the working directory). */
static void project_init(Project *p, const char *app, int n) {
  char path[256], text[2048];
  int i;
  memset(p, 0, sizeof *p);
  snprintf(p->dir, sizeof p->dir, "/tmp/tide-engine-XXXXXX");
  if (mkdtemp(p->dir) == NULL) {
    perror("mkdtemp");
    exit(2);
  }
  snprintf(p->docs, sizeof p->docs, "%s/docs", p->dir);
  CHECK(mkdir(p->docs, 0777) == 0);
  for (i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%s/%d.md", p->docs, i);
    snprintf(text, sizeof text, "# doc %d of %s\n", i, app);
    write_file(path, text);
  }
  snprintf(p->pipeline, sizeof p->pipeline, "%s/pipeline.lua", p->dir);
  snprintf(text, sizeof text,
    "local tide = require 'tide'\n"
    "local fs = require 'tide.fs'\n"
    "local sqlite = require 'tide.sqlite'\n"
    "local Doc = tide.record('Doc', { { 'path', 'string', key = true },\n"
    "                                 { 'title', 'string' } })\n"
    "local per_file = tide.fn('per_file', { memo = true }, function(f, t)\n"
    "  t:row(Doc { path = f.path, title = f:text():match('^# ([^\\n]*)') })\n"
    "end)\n"
    "return tide.app('%s', function()\n"
    "  local t = sqlite.table { db = '%s/out.db', name = 'docs',\n"
    "                           schema = Doc }\n"
    "  tide.mount_each(per_file, fs.walk('%s'), t)\n"
    "end)\n", app, p->dir, p->docs);
  write_file(p->pipeline, text);
}

static int rows(const Project *p, const char *where) {
  char path[256], sql[256];
  sqlite3 *db;
  sqlite3_stmt *st;
  int n = -1;
  snprintf(path, sizeof path, "%s/out.db", p->dir);
  snprintf(sql, sizeof sql, "SELECT count(*) FROM docs %s", where);
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return n;
}

static void project_free(Project *p) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", p->dir);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", p->dir);
}

static char lua_dir[PATH_MAX];

static void engine_open(Project *p) {
  tide_EngineOptions o;
  memset(&o, 0, sizeof o);
  o.lua_dir = lua_dir;
  o.alloc = counting_alloc;
  o.alloc_ud = &p->held;
  CHECK_EQ_INT(tide_engine_new(&p->e, &o), 0);
  CHECK_EQ_INT(tide_engine_load(p->e, p->pipeline), 0);
}

static void test_two_engines(void) {
  Project a, b;
  tide_Stats st;
  char path[256];
  project_init(&a, "alpha", 3);
  project_init(&b, "beta", 5);
  engine_open(&a);
  engine_open(&b);
  CHECK(tide_engine_lua(a.e) != tide_engine_lua(b.e));

  CHECK_EQ_INT(tide_engine_update(a.e, 0), 0);
  CHECK_EQ_INT(tide_engine_update(b.e, 0), 0);
  tide_engine_stats(a.e, &st);
  CHECK_EQ_INT(st.components.added, 3);
  CHECK_EQ_INT(st.targets.inserted, 3);
  CHECK_EQ_INT(st.cycles, 1);
  tide_engine_stats(b.e, &st);
  CHECK_EQ_INT(st.components.added, 5);
  CHECK_EQ_INT(rows(&a, ""), 3);
  CHECK_EQ_INT(rows(&b, ""), 5);

  /* A second cycle of the same session: nothing changed. */
  CHECK_EQ_INT(tide_engine_update(a.e, 0), 0);
  tide_engine_stats(a.e, &st);
  CHECK_EQ_INT(st.components.unchanged, 3);
  CHECK_EQ_INT(st.components.added, 0);
  CHECK_EQ_INT(st.targets.inserted + st.targets.updated, 0);
  CHECK_EQ_INT(st.cycles, 2);

  /* One file edited in b, one deleted in a: each engine sees its own. */
  snprintf(path, sizeof path, "%s/1.md", b.docs);
  write_file(path, "# edited\n");
  snprintf(path, sizeof path, "%s/0.md", a.docs);
  CHECK(unlink(path) == 0);
  CHECK_EQ_INT(tide_engine_update(b.e, 0), 0);
  CHECK_EQ_INT(tide_engine_update(a.e, 0), 0);
  tide_engine_stats(b.e, &st);
  CHECK_EQ_INT(st.components.reprocessed, 1);
  CHECK_EQ_INT(st.components.unchanged, 4);
  CHECK_EQ_INT(st.targets.updated, 1);
  tide_engine_stats(a.e, &st);
  CHECK_EQ_INT(st.components.deleted, 1);
  CHECK_EQ_INT(st.targets.deleted, 1);
  CHECK_EQ_INT(rows(&a, ""), 2);
  CHECK_EQ_INT(rows(&b, "WHERE title = 'edited'"), 1);

  tide_engine_free(a.e);
  tide_engine_free(b.e);
  CHECK_EQ_INT(a.held, 0);
  CHECK_EQ_INT(b.held, 0);
  project_free(&a);
  project_free(&b);
}

static void test_errors(void) {
  Project p;
  char path[256];
  project_init(&p, "gamma", 1);
  engine_open(&p);
  /* A second engine on the same store while the first is between cycles:
  ** the writer lock is held only during a cycle, so both may update. */
  {
    Project q = p;
    q.held = 0;
    engine_open(&q);
    CHECK_EQ_INT(tide_engine_update(q.e, 0), 0);
    CHECK_EQ_INT(tide_engine_update(p.e, 0), 0);
    tide_engine_free(q.e);
    CHECK_EQ_INT(q.held, 0);
  }
  /* The store's writer lock held by someone else (the flock another
  ** process's update takes): TIDE_ELOCKED, said as tide update says it;
  ** the next update, once it is let go, runs. */
  {
    int fd;
    snprintf(path, sizeof path, "%s/.tide/state.db-lock", p.dir);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    CHECK(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0);
    CHECK_EQ_INT(tide_engine_update(p.e, 0), TIDE_ELOCKED);
    CHECK_STR_CONTAINS(tide_engine_errmsg(p.e), "locked by another running "
                       "update");
    close(fd);
    CHECK_EQ_INT(tide_engine_update(p.e, 0), 0);
  }
  /* A component that fails: TIDE_EFAILED, its path in the message. */
  snprintf(path, sizeof path, "%s/bad.md", p.docs);
  write_file(path, "no heading\n");
  CHECK_EQ_INT(tide_engine_update(p.e, 0), TIDE_EFAILED);
  CHECK_STR_CONTAINS(tide_engine_errmsg(p.e), "bad.md");
  CHECK_STR_CONTAINS(tide_engine_errmsg(p.e), "title");
  tide_engine_free(p.e);
  CHECK_EQ_INT(p.held, 0);

  /* A lua_dir without tide's Lua files, said at once and by name. */
  {
    tide_EngineOptions o;
    tide_Engine *e;
    memset(&o, 0, sizeof o);
    o.lua_dir = p.docs;
    CHECK_EQ_INT(tide_engine_new(&e, &o), TIDE_EINVAL);
    CHECK_STR_CONTAINS(tide_engine_errmsg(e), "holds no tide/init.lua");
    CHECK_STR_CONTAINS(tide_engine_errmsg(e), p.docs);
    tide_engine_free(e);
  }

  /* A pipeline that does not return an app. */
  write_file(p.pipeline, "return 42\n");
  {
    tide_EngineOptions o;
    tide_Engine *e;
    memset(&o, 0, sizeof o);
    o.lua_dir = lua_dir;
    CHECK_EQ_INT(tide_engine_new(&e, &o), 0);
    CHECK_EQ_INT(tide_engine_load(e, p.pipeline), TIDE_EINVAL);
    /* Named as the tide command names it, without tide's own frames. */
    CHECK_STR_CONTAINS(tide_engine_errmsg(e), p.pipeline);
    CHECK_STR_CONTAINS(tide_engine_errmsg(e), " must return an app (return "
                       "tide.app(...)), got number");
    CHECK(strstr(tide_engine_errmsg(e), "traceback") == NULL);
    CHECK(tide_engine_update(e, 0) < 0);
    CHECK_STR_CONTAINS(tide_engine_errmsg(e), "no pipeline is loaded");
    /* Misuse is said, not left with the message of the call before. */
    CHECK_EQ_INT(tide_engine_load(e, NULL), TIDE_EINVAL);
    CHECK_STR_CONTAINS(tide_engine_errmsg(e), "tide_engine_load: pipeline "
                       "must be the path of a Lua file, got NULL");
    /* Fixed and loaded: the message of the failure is gone. */
    write_file(p.pipeline, "return require('tide').app('fixed', "
               "function() end)\n");
    CHECK_EQ_INT(tide_engine_load(e, p.pipeline), 0);
    CHECK(strcmp(tide_engine_errmsg(e), "") == 0);
    /* A flag this tide does not know is refused before anything runs. */
    CHECK_EQ_INT(tide_engine_update(e, 64 | TIDE_UPDATE_PREVIEW),
                 TIDE_EINVAL);
    CHECK_STR_CONTAINS(tide_engine_errmsg(e), "tide_engine_update: unknown "
                       "flags 0x40 (expected TIDE_UPDATE_* values)");
    {
      tide_Stats st;
      tide_engine_stats(e, &st);
      CHECK_EQ_INT(st.cycles, 0);
    }
    CHECK_EQ_INT(tide_engine_update(e, TIDE_UPDATE_PREVIEW), 0);
    CHECK(strcmp(tide_engine_errmsg(e), "") == 0);
    tide_engine_free(e);
  }
  project_free(&p);
}

/* Steps both engines until pred holds (at most 5 s); returns whether it
** did, and the longest step in microseconds in *worst. */
static int step_until(Project *a, Project *b, int (*pred)(Project *),
                      Project *on, long *worst) {
  int i;
  for (i = 0; i < 2500; i++) {
    struct timespec t0, t1;
    long us;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int ra = tide_engine_step(a->e, 2000), rb = tide_engine_step(b->e, 2000);
    CHECK_EQ_INT(ra, 0);
    CHECK_EQ_INT(rb, 0);
    if (ra != 0 || rb != 0) return 0;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    us = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000;
    if (us > *worst) *worst = us;
    if (pred(on)) return 1;
    usleep(2000);
  }
  return 0;
}

/* The row is there and the cycle that wrote it has ended. */
static int has_edit(Project *p) {
  tide_Stats st;
  tide_engine_stats(p->e, &st);
  return rows(p, "WHERE title = 'edited'") == 1 &&
         st.components.reprocessed == 1;
}

static int lost_one(Project *p) {
  tide_Stats st;
  tide_engine_stats(p->e, &st);
  return rows(p, "") == 2 && st.components.deleted == 1;
}

/* Live mode on the host's own loop: two engines on one loop, each started
** live, stepped from the host's frame loop; a file written in one folder
** and one deleted in the other show up; both stop, are freed, and leave
** nothing on the host's loop. */
static void test_live_steps(void) {
  Project a, b;
  uv_loop_t loop;
  tide_EngineOptions o;
  tide_Stats st;
  char path[256];
  long worst = 0;
  CHECK_EQ_INT(uv_loop_init(&loop), 0);
  project_init(&a, "alpha", 3);
  project_init(&b, "beta", 3);
  memset(&o, 0, sizeof o);
  o.lua_dir = lua_dir;
  o.loop = &loop;
  o.alloc = counting_alloc;
  o.alloc_ud = &a.held;
  CHECK_EQ_INT(tide_engine_new(&a.e, &o), 0);
  o.alloc_ud = &b.held;
  CHECK_EQ_INT(tide_engine_new(&b.e, &o), 0);
  CHECK_EQ_INT(tide_engine_step(a.e, 1000), TIDE_EINVAL);
  CHECK_EQ_INT(tide_engine_load(a.e, a.pipeline), 0);
  CHECK_EQ_INT(tide_engine_load(b.e, b.pipeline), 0);
  CHECK_EQ_INT(tide_engine_step(a.e, 1000), TIDE_EINVAL);
  CHECK_STR_CONTAINS(tide_engine_errmsg(a.e), "live mode is not running");
  CHECK_EQ_INT(tide_engine_live_start(a.e), 0);
  CHECK_EQ_INT(tide_engine_live_start(b.e), 0);
  tide_engine_stats(a.e, &st);
  CHECK_EQ_INT(st.components.added, 3);

  snprintf(path, sizeof path, "%s/1.md", a.docs);
  write_file(path, "# edited\n");
  CHECK(step_until(&a, &b, has_edit, &a, &worst));
  tide_engine_stats(a.e, &st);
  CHECK_EQ_INT(st.components.reprocessed, 1);
  snprintf(path, sizeof path, "%s/2.md", b.docs);
  CHECK_EQ_INT(remove(path), 0);
  CHECK(step_until(&a, &b, lost_one, &b, &worst));
  tide_engine_stats(b.e, &st);
  CHECK_EQ_INT(st.components.deleted, 1);
  CHECK_EQ_INT(rows(&a, ""), 3);

  CHECK_EQ_INT(tide_engine_live_stop(a.e), 0);
  CHECK_EQ_INT(tide_engine_live_stop(b.e), 0);
  CHECK_EQ_INT(tide_engine_live_stop(a.e), TIDE_EINVAL);
  tide_engine_free(a.e);
  tide_engine_free(b.e);
  /* The host's loop: the handles tide closed finish closing, none is
  ** left, and every byte went back. */
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK_EQ_INT(uv_loop_alive(&loop), 0);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
  CHECK_EQ_INT(a.held, 0);
  CHECK_EQ_INT(b.held, 0);
  if (worst > 50000) fprintf(stderr, "note: a step took %ld us\n", worst);
  project_free(&a);
  project_free(&b);
}

/* Live mode's failures, as a host sees them: a step that ends a cycle in
** which a component failed leaves the failure's path and message on the
** engine (the stats count it), as tide_engine_update does; a step given
** a negative budget says so, not what failed before. */
static void test_live_failures(void) {
  Project p;
  tide_Stats st;
  char path[256], said[1024] = "";
  int i;
  project_init(&p, "delta", 2);
  engine_open(&p);
  CHECK_EQ_INT(tide_engine_live_start(p.e), 0);
  CHECK_EQ_INT(tide_engine_live_start(p.e), TIDE_EINVAL);
  CHECK_STR_CONTAINS(tide_engine_errmsg(p.e), "app delta is live already");
  snprintf(path, sizeof path, "%s/1.md", p.docs);
  write_file(path, "no heading\n");
  for (i = 0; i < 2500; i++) {
    CHECK_EQ_INT(tide_engine_step(p.e, 2000), 0);
    if (tide_engine_errmsg(p.e)[0])
      snprintf(said, sizeof said, "%s", tide_engine_errmsg(p.e));
    tide_engine_stats(p.e, &st);
    if (st.cycles == 2) break;
    usleep(2000);
  }
  CHECK_EQ_INT(st.components.errors, 1);
  CHECK_STR_CONTAINS(said, "/per_file/1.md: ");
  CHECK_STR_CONTAINS(said, "Doc.title");
  CHECK_EQ_INT(tide_engine_step(p.e, -1), TIDE_EINVAL);
  CHECK_STR_CONTAINS(tide_engine_errmsg(p.e), "budget_us");
  CHECK_EQ_INT(tide_engine_live_stop(p.e), 0);
  tide_engine_free(p.e);
  CHECK_EQ_INT(p.held, 0);
  project_free(&p);
}

/* Set by the pipeline's components through a function the host
** registered in the engine's Lua state. */
static int components_ran;

static int note_component(lua_State *L) {
  (void)L;
  components_ran++;
  return 0;
}

/* An update asked for while a live cycle is under way (a step gave back
** between its components) is the host's misuse: TIDE_EINVAL, saying so;
** the cycle then ends as if nothing had been asked. */
static void test_update_during_live_cycle(void) {
  Project p;
  tide_Stats st;
  char path[256], text[1024];
  int i, rc = 0;
  int64_t cycles;
  project_init(&p, "epsilon", 50);
  snprintf(text, sizeof text,
    "local tide = require 'tide'\n"
    "local fs = require 'tide.fs'\n"
    "local each = tide.fn('each', { memo = true }, function(f)\n"
    "  note_component()\n"
    "end)\n"
    "return tide.app('epsilon', function()\n"
    "  tide.mount_each(each, fs.walk('%s'))\n"
    "end)\n", p.docs);
  write_file(p.pipeline, text);
  engine_open(&p);
  lua_register(tide_engine_lua(p.e), "note_component", note_component);
  CHECK_EQ_INT(tide_engine_live_start(p.e), 0);
  tide_engine_stats(p.e, &st);
  cycles = st.cycles;
  for (i = 0; i < 50; i++) {
    snprintf(path, sizeof path, "%s/%d.md", p.docs, i);
    write_file(path, "# changed\n");
  }
  components_ran = 0;
  for (i = 0; i < 100000 && rc == 0; i++) {
    CHECK_EQ_INT(tide_engine_step(p.e, 1), 0);
    tide_engine_stats(p.e, &st);
    if (st.cycles != cycles) break; /* the cycle ended in one step */
    if (components_ran > 0) rc = tide_engine_update(p.e, 0);
  }
  CHECK_EQ_INT(rc, TIDE_EINVAL);
  CHECK_STR_CONTAINS(tide_engine_errmsg(p.e), "a live cycle is under way");
  CHECK_EQ_INT(tide_engine_live_stop(p.e), 0);
  tide_engine_stats(p.e, &st);
  CHECK_EQ_INT(st.components.reprocessed, 50);
  tide_engine_free(p.e);
  CHECK_EQ_INT(p.held, 0);
  project_free(&p);
}

/* A host with no time to give a frame steps with a budget of 0: each
** step still moves live mode on (a part of the cycle, or one component),
** so a change shows up after enough frames instead of never. */
static void test_zero_budget_steps(void) {
  Project p;
  tide_Stats st;
  char path[256];
  int i;
  project_init(&p, "zeta", 3);
  engine_open(&p);
  CHECK_EQ_INT(tide_engine_live_start(p.e), 0);
  snprintf(path, sizeof path, "%s/1.md", p.docs);
  write_file(path, "# edited\n");
  for (i = 0; i < 200000 && !has_edit(&p); i++) {
    CHECK_EQ_INT(tide_engine_step(p.e, 0), 0);
    if (i % 100 == 99) usleep(1000); /* the events' quiet time passes */
  }
  CHECK(has_edit(&p));
  tide_engine_stats(p.e, &st);
  CHECK_EQ_INT(st.components.reprocessed, 1);
  CHECK_EQ_INT(tide_engine_live_stop(p.e), 0);
  tide_engine_free(p.e);
  CHECK_EQ_INT(p.held, 0);
  project_free(&p);
}

int main(void) {
  static const CheckTest tests[] = {
    {"two engines in one process", test_two_engines},
    {"failures and messages", test_errors},
    {"live mode stepped from the host's loop", test_live_steps},
    {"live mode's failures on the engine", test_live_failures},
    {"an update during a live cycle", test_update_during_live_cycle},
    {"live mode stepped with a budget of 0", test_zero_budget_steps},
    {NULL, NULL},
  };
  if (realpath("lua", lua_dir) == NULL) {
    perror("lua");
    return 2;
  }
  return check_run("engine", tests);
}
