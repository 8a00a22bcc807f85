/*
** Tests of the state store: opening, its format and version history, the
** writer lock between processes, a store opened again, and what it
** allocates, on files or on PostgreSQL (see store_fixture.h). The
** writer-lock tests run second processes: this binary re-executes itself
** with "--child MODE PATH FD" (see child_main), so each child is a fresh
** process with its own connection.
*/

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

#include "index.h"
#include "store_fixture.h"

/* ---- Second processes ---- */

/*
** A child: opens the store at path in a mode and reports through fd.
** "write": opens for writing, writes the open's message, exits with -rc.
** "read": opens read-only, writes what it sees of apps "docs" and
**   "pending", exits with -rc.
** "hold": opens for writing, writes "ready\n", and sleeps until killed.
*/
static int child_main(const char *mode, const char *path, int fd) {
  tide_Store *s = NULL;
  tide_StoreApp app;
  char text[512];
  int rc, n;
  int flags = strcmp(mode, "read") == 0 ? TIDE_STORE_READ : TIDE_STORE_WRITE;
  rc = tide_store_open(&s, path, flags, NULL, NULL);
  if (rc == 0 && strcmp(mode, "read") == 0) {
    rc = tide_store_app_lookup(s, LIT("docs"), &app);
    n = snprintf(text, sizeof text, "docs=%lld",
                 rc == 0 ? (long long)app.id : (long long)rc);
    rc = tide_store_app_lookup(s, LIT("pending"), &app);
    snprintf(text + n, sizeof text - (size_t)n, " pending=%lld",
             rc == 0 ? (long long)app.id : (long long)rc);
    rc = 0;
  } else if (rc == 0 && strcmp(mode, "hold") == 0) {
    snprintf(text, sizeof text, "ready\n");
  } else {
    snprintf(text, sizeof text, "%s", tide_store_errmsg(s));
  }
  if (write(fd, text, strlen(text)) < 0) rc = TIDE_EIO;
  if (rc == 0 && strcmp(mode, "hold") == 0)
    for (;;) pause();
  tide_store_close(s);
  return -rc;
}

/* Starts this binary as a child in mode; *fd receives the pipe's read
** end. Returns the child's pid. */
static pid_t spawn(const char *mode, const char *path, int *fd) {
  char self[1024], fdtext[16];
  int p[2];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  pid_t pid;
  if (n < 0 || pipe(p) != 0) {
    perror("spawn");
    exit(2);
  }
  self[n] = '\0';
  pid = fork();
  if (pid < 0) {
    perror("fork");
    exit(2);
  }
  if (pid == 0) {
    close(p[0]);
    snprintf(fdtext, sizeof fdtext, "%d", p[1]);
    execl(self, self, "--child", mode, path, fdtext, (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  *fd = p[0];
  return pid;
}

/* Reads what the child wrote until it closes the pipe or a newline. */
static void read_child(int fd, char *buf, size_t cap, int until_newline) {
  size_t len = 0;
  ssize_t n;
  while (len < cap - 1) {
    n = read(fd, buf + len, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len++;
    if (until_newline && buf[len - 1] == '\n') break;
  }
  buf[len] = '\0';
}

static int wait_exit(pid_t pid) {
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Runs a child to its end; returns its exit code, its report in buf. */
static int run_child(const char *mode, const char *path, char *buf,
                     size_t cap) {
  int fd;
  pid_t pid = spawn(mode, path, &fd);
  read_child(fd, buf, cap, 0);
  close(fd);
  return wait_exit(pid);
}

/* ---- Opening, format and version ---- */

static void test_create_and_reopen(void) {
  Tmp t;
  tide_Store *s;
  tide_StoreApp app;
  tide_StoreComponent c;
  uint8_t fp[TIDE_FP_SIZE];
  char path[160];
  int64_t id = 0, cid = 0;
  int created = -1;
  tmp_init(&t, "unused");
  /* The parent directories are created too. */
  snprintf(path, sizeof path, "%s/a/b/state.db", t.dir);
  s = open_ok(path, TIDE_STORE_WRITE);
  CHECK_STR_EQ(tide_store_path(s), path);
  CHECK_STR_EQ(tide_store_errmsg(s), "");
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), &id, &created), 0);
  CHECK_EQ_INT(id, 1);
  CHECK_EQ_INT(created, 1);
  fp_fill(fp, 1);
  memset(&c, 0, sizeof c);
  c.app_id = id;
  SET_STR(c.path, "/process_file/a.md");
  SET_STR(c.fn_name, "process_file");
  c.logic_fp = fp;
  CHECK_EQ_INT(tide_store_component_put(s, &c, &cid), 0);
  CHECK_EQ_INT(cid, 1);
  CHECK_EQ_INT(tide_store_close(s), 0);
  /* Read back with a reader, then with a writer again. */
  s = open_ok(path, TIDE_STORE_READ);
  CHECK_EQ_INT(tide_store_app_lookup(s, LIT("docs"), &app), 0);
  CHECK_EQ_INT(app.id, 1);
  CHECK_STR_EQ(app.name, "docs");
  CHECK_EQ_INT(tide_store_component_get(s, 1, LIT("/process_file/a.md"), &c),
               0);
  CHECK_EQ_INT(c.id, 1);
  CHECK_STR_EQ(c.fn_name, "process_file");
  CHECK(fp_equal(c.logic_fp, fp));
  tide_store_close(s);
  s = open_ok(path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), &id, &created), 0);
  CHECK_EQ_INT(id, 1);
  CHECK_EQ_INT(created, 0);
  CHECK_EQ_INT(tide_store_close(s), 0);
  CHECK_EQ_INT(sql_int(path, "SELECT count(*) FROM apps"), 1);
  CHECK_EQ_INT(tide_store_close(NULL), 0);
  CHECK_STR_EQ(tide_store_errmsg(NULL), "out of memory");
  tmp_close(&t);
}

static void test_version_recorded(void) {
  Tmp t;
  char text[64];
  tmp_init(&t, "state.db");
  tide_store_close(open_ok(t.path, TIDE_STORE_WRITE));
  CHECK_STR_EQ(sql_text(t.path, "SELECT value FROM meta WHERE key = 'format'",
                        text, sizeof text),
               "tide-state");
  CHECK_STR_EQ(meta_version(t.path, text, sizeof text), "3");
  CHECK_STR_EQ(sql_text(t.path,
                        "SELECT value FROM meta WHERE key = 'created_by'",
                        text, sizeof text),
               "tide " TIDE_VERSION);
  CHECK_EQ_INT(sql_int(t.path, "PRAGMA user_version"), 3);
  CHECK_EQ_INT(sql_int(t.path, "PRAGMA application_id"), 0x54494445);
  CHECK_STR_EQ(sql_text(t.path, "PRAGMA journal_mode", text, sizeof text),
               "wal");
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM sqlite_master"
                               " WHERE type = 'table'"),
               10);
  tmp_close(&t);
}

/* A version 1 store (no intents table) is read as it is and upgraded by
** the first write open, with what it holds. */
static void test_version_upgraded(void) {
  Tmp t;
  tide_Store *s;
  tide_StoreApp found;
  char text[64];
  int64_t app;
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("kept"), &app, NULL), 0);
  tide_store_close(s);
  CHECK_EQ_INT(sql_exec(t.path, "DROP TABLE intents;"
                                "UPDATE meta SET value = '1'"
                                " WHERE key = 'version';"
                                "PRAGMA user_version = 1"),
               SQLITE_OK);
  s = open_ok(t.path, TIDE_STORE_READ);
  CHECK_EQ_INT(tide_store_app_lookup(s, LIT("kept"), &found), 0);
  CHECK_EQ_INT(found.id, app);
  tide_store_close(s);
  CHECK_STR_EQ(meta_version(t.path, text, sizeof text), "1");
  tide_store_close(open_ok(t.path, TIDE_STORE_WRITE));
  CHECK_STR_EQ(meta_version(t.path, text, sizeof text), "3");
  CHECK_EQ_INT(sql_int(t.path, "PRAGMA user_version"), 3);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM intents"), 0);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM apps"
                               " WHERE name = 'kept'"), 1);
  tmp_close(&t);
}

/* A version 2 store, whose memos table was WITHOUT ROWID, is read as it
** is; a write open makes memos a rowid table with the same entries. */
static void test_version_2_upgraded(void) {
  Tmp t;
  tide_Store *s;
  tide_StoreMemo m, got;
  uint8_t key[TIDE_FP_SIZE], other[TIDE_FP_SIZE];
  static const uint8_t value[] = { 0x82, 0xfa, 0x3f, 0x00, 0x00, 0x01, 0x07 };
  char text[64];
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  fp_fill(key, 9);
  fp_fill(other, 10);
  memset(&m, 0, sizeof m);
  m.app_id = 1;
  m.key = key;
  SET_STR(m.fn_name, "embed");
  m.value = value;
  m.value_len = sizeof value;
  CHECK_EQ_INT(tide_store_memo_put(s, &m), 0);
  m.key = other;
  CHECK_EQ_INT(tide_store_memo_put(s, &m), 0);
  tide_store_close(s);
  /* Version 2's memos, holding the same rows. */
  CHECK_EQ_INT(sql_exec(t.path,
                        "ALTER TABLE memos RENAME TO m3;"
                        "CREATE TABLE memos(app_id INTEGER NOT NULL,"
                        " key BLOB NOT NULL, fn_name TEXT NOT NULL,"
                        " value BLOB, deps BLOB, targets BLOB,"
                        " updated_ns INTEGER, PRIMARY KEY(app_id, key))"
                        " WITHOUT ROWID;"
                        "INSERT INTO memos SELECT app_id, key, fn_name, value,"
                        " deps, targets, updated_ns FROM m3;"
                        "DROP TABLE m3;"
                        "UPDATE meta SET value = '2' WHERE key = 'version';"
                        "PRAGMA user_version = 2"),
               SQLITE_OK);
  s = open_ok(t.path, TIDE_STORE_READ);
  CHECK_EQ_INT(tide_store_memo_get(s, 1, key, &got), 0);
  CHECK(blob_equal(got.value, got.value_len, value, sizeof value));
  tide_store_close(s);
  CHECK_STR_EQ(meta_version(t.path, text, sizeof text), "2");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_memo_get(s, 1, key, &got), 0);
  CHECK_STR_EQ(got.fn_name, "embed");
  CHECK(blob_equal(got.value, got.value_len, value, sizeof value));
  CHECK_EQ_INT(tide_store_memo_get(s, 1, other, &got), 0);
  /* The upgraded table takes new entries and replaces old ones. */
  m.value_len = 2;
  CHECK_EQ_INT(tide_store_memo_put(s, &m), 0);
  CHECK_EQ_INT(tide_store_memo_get(s, 1, other, &got), 0);
  CHECK_EQ_INT((int)got.value_len, 2);
  tide_store_close(s);
  CHECK_STR_EQ(meta_version(t.path, text, sizeof text), "3");
  CHECK_EQ_INT(sql_int(t.path, "PRAGMA user_version"), 3);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM memos"), 2);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM sqlite_master"
                               " WHERE name = 'memos'"
                               " AND sql LIKE '%WITHOUT ROWID%'"), 0);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM sqlite_master"
                               " WHERE name = 'memos_v2'"), 0);
  tmp_close(&t);
}

static void test_unknown_version_refused(void) {
  Tmp t;
  char msg[768], text[64];
  tmp_init(&t, "state.db");
  tide_store_close(open_ok(t.path, TIDE_STORE_WRITE));
  CHECK_EQ_INT(sql_exec(t.path, "UPDATE meta SET value = '7'"
                                " WHERE key = 'version'"),
               SQLITE_OK);
  snprintf(msg, sizeof msg,
           "%s: state store format version 7 is not supported by this tide"
           " (supports 1 to 3)", t.path);
  check_open_fails(t.path, TIDE_STORE_WRITE, TIDE_EVERSION, msg);
  check_open_fails(t.path, TIDE_STORE_READ, TIDE_EVERSION, msg);
  /* Refused, not rebuilt: the version is still 7. */
  CHECK_STR_EQ(meta_version(t.path, text, sizeof text), "7");
  CHECK_EQ_INT(sql_exec(t.path, "UPDATE meta SET value = 'x'"
                                " WHERE key = 'version'"),
               SQLITE_OK);
  snprintf(msg, sizeof msg,
           "%s: not a tide state store (no valid format version)", t.path);
  check_open_fails(t.path, TIDE_STORE_READ, TIDE_ENOTSTORE, msg);
  tmp_close(&t);
}

static void test_foreign_sqlite_refused(void) {
  Tmp t;
  char msg[768], lock[600], text[64];
  tmp_init(&t, "other.db");
  snprintf(lock, sizeof lock, "%s-lock", t.path);
  CHECK_EQ_INT(sql_exec(t.path, "CREATE TABLE t(x); INSERT INTO t VALUES(1)"),
               SQLITE_OK);
  snprintf(msg, sizeof msg, "%s: not a tide state store", t.path);
  check_open_fails(t.path, TIDE_STORE_WRITE, TIDE_ENOTSTORE, msg);
  check_open_fails(t.path, TIDE_STORE_READ, TIDE_ENOTSTORE, msg);
  /* The file was left alone: no schema, no WAL mode, no lock file. */
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM sqlite_master"), 1);
  CHECK_STR_EQ(sql_text(t.path, "PRAGMA journal_mode", text, sizeof text),
               "delete");
  CHECK(!file_exists(lock));
  /* A meta table of someone else's format is not ours either. */
  CHECK_EQ_INT(sql_exec(t.path, "CREATE TABLE meta(key, value);"
                                "INSERT INTO meta VALUES('format', 'x');"
                                "INSERT INTO meta VALUES('version', '1')"),
               SQLITE_OK);
  check_open_fails(t.path, TIDE_STORE_WRITE, TIDE_ENOTSTORE, msg);
  /* A store with its tables missing is reported as damaged. */
  tmp_close(&t);
  tmp_init(&t, "state.db");
  tide_store_close(open_ok(t.path, TIDE_STORE_WRITE));
  CHECK_EQ_INT(sql_exec(t.path, "DROP TABLE runs"), SQLITE_OK);
  snprintf(msg, sizeof msg,
           "%s: state store is damaged (tables are missing)", t.path);
  check_open_fails(t.path, TIDE_STORE_READ, TIDE_ENOTSTORE, msg);
  tmp_close(&t);
}

static void test_garbage_refused(void) {
  Tmp t;
  char msg[768], data[5000], back[6000];
  size_t i;
  tmp_init(&t, "garbage.db");
  for (i = 0; i < sizeof data; i++) data[i] = (char)('a' + i % 26);
  write_file(t.path, data, sizeof data);
  snprintf(msg, sizeof msg,
           "%s: not a tide state store (file is not a database)", t.path);
  check_open_fails(t.path, TIDE_STORE_WRITE, TIDE_ENOTSTORE, msg);
  check_open_fails(t.path, TIDE_STORE_READ, TIDE_ENOTSTORE, msg);
  /* Never rebuilt: the bytes are the same. */
  CHECK_EQ_INT(read_file(t.path, back, sizeof back), (long)sizeof data);
  CHECK(memcmp(back, data, sizeof data) == 0);
  /* A file shorter than an SQLite header too. */
  write_file(t.path, "hello world\n", 12);
  check_open_fails(t.path, TIDE_STORE_WRITE, TIDE_ENOTSTORE, msg);
  CHECK_EQ_INT(read_file(t.path, back, sizeof back), 12);
  tmp_close(&t);
}

/* Workers share an update through a PostgreSQL store only. */
static void test_sqlite_not_shared(void) {
  Tmp t;
  tide_Store *s;
  char msg[768];
  int64_t id;
  tmp_init(&t, "state.db");
  snprintf(msg, sizeof msg, "%s: an update shared by workers needs a "
           "PostgreSQL state store (--db postgresql://...)", t.path);
  check_open_fails(t.path, TIDE_STORE_SHARED, TIDE_EINVAL, msg);
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_update_open(s, 1, &id), TIDE_EINVAL);
  CHECK_STR_EQ(tide_store_errmsg(s), msg);
  CHECK_EQ_INT(tide_store_workers_alive(s, 1, 1000, &id), TIDE_EINVAL);
  CHECK_STR_EQ(tide_store_errmsg(s), msg);
  CHECK_EQ_INT(tide_store_claim_send(s, 1, 1, 1), TIDE_EINVAL);
  CHECK_STR_EQ(tide_store_errmsg(s), msg);
  CHECK_EQ_INT(tide_store_worker_count(s, 1, LIT("components.added"), 1),
               TIDE_EINVAL);
  CHECK_STR_EQ(tide_store_errmsg(s), msg);
  CHECK_EQ_INT(tide_store_claim_socket(s), -1);
  tide_store_close(s);
  tmp_close(&t);
}

static void test_missing_and_empty(void) {
  Tmp t;
  tide_Store *s;
  char msg[768];
  int64_t id = 0;
  tmp_init(&t, "state.db");
  snprintf(msg, sizeof msg, "%s: no such state store", t.path);
  check_open_fails(t.path, TIDE_STORE_READ, TIDE_ENOTFOUND, msg);
  CHECK(!file_exists(t.path));
  write_file(t.path, "", 0);
  snprintf(msg, sizeof msg, "%s: state store is empty", t.path);
  check_open_fails(t.path, TIDE_STORE_READ, TIDE_ENOTFOUND, msg);
  /* A writer creates the schema in an empty file. */
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), &id, NULL), 0);
  CHECK_EQ_INT(id, 1);
  tide_store_close(s);
  CHECK_EQ_INT(sql_int(t.path, "SELECT count(*) FROM apps"), 1);
  tmp_close(&t);
}

static void test_bad_arguments(void) {
  Tmp t;
  char msg[768];
  tmp_init(&t, "state.db");
  snprintf(msg, sizeof msg, "%s: invalid open flags 7", t.path);
  check_open_fails(t.path, 7, TIDE_EINVAL, msg);
  check_open_fails("", TIDE_STORE_READ, TIDE_EINVAL,
                   "state store path is empty");
  CHECK_EQ_INT(tide_store_open(NULL, t.path, TIDE_STORE_READ, NULL, NULL),
               TIDE_EINVAL);
  tmp_close(&t);
}

/* ---- The writer lock ---- */

static void test_second_writer_locked(void) {
  Tmp t;
  tide_Store *s;
  char msg[768], report[512];
  int64_t id;
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), &id, NULL), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("pending"), &id, NULL), 0);
  /* Another process cannot write... */
  snprintf(msg, sizeof msg, "%s: locked by another running update (pid %ld)",
           t.path, (long)getpid());
  CHECK_EQ_INT(run_child("write", t.path, report, sizeof report),
               -TIDE_ELOCKED);
  CHECK_STR_EQ(report, msg);
  /* ...but can read what was committed, and only that. */
  CHECK_EQ_INT(run_child("read", t.path, report, sizeof report), 0);
  snprintf(msg, sizeof msg, "docs=1 pending=%d", TIDE_ENOTFOUND);
  CHECK_STR_EQ(report, msg);
  /* In this process too, a second writer is refused; a SQLite store
  ** says it is this process (a PostgreSQL one cannot tell a pid of
  ** another machine from its own). */
  if (tide_store_is_postgres(t.path))
    snprintf(msg, sizeof msg, "%s: locked by another running update"
             " (pid %ld)", t.path, (long)getpid());
  else
    snprintf(msg, sizeof msg, "%s: locked by another running update in"
             " this process (another app's, on the same store)", t.path);
  check_open_fails(t.path, TIDE_STORE_WRITE, TIDE_ELOCKED, msg);
  CHECK_EQ_INT(tide_store_close(s), 0);
  /* Once the holder has closed, the lock is free. */
  CHECK_EQ_INT(run_child("write", t.path, report, sizeof report), 0);
  CHECK_STR_EQ(report, "");
  CHECK_EQ_INT(run_child("read", t.path, report, sizeof report), 0);
  CHECK_STR_EQ(report, "docs=1 pending=2");
  tmp_close(&t);
}

static void test_lock_freed_by_kill(void) {
  Tmp t;
  tide_Store *s;
  char msg[768], report[64];
  int fd;
  pid_t pid;
  tmp_init(&t, "state.db");
  pid = spawn("hold", t.path, &fd);
  read_child(fd, report, sizeof report, 1);
  CHECK_STR_EQ(report, "ready\n");
  snprintf(msg, sizeof msg, "%s: locked by another running update (pid %ld)",
           t.path, (long)pid);
  check_open_fails(t.path, TIDE_STORE_WRITE, TIDE_ELOCKED, msg);
  CHECK_EQ_INT(kill(pid, SIGKILL), 0);
  CHECK_EQ_INT(wait_exit(pid), -1);
  close(fd);
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK(s != NULL);
  tide_store_close(s);
  tmp_close(&t);
}

static void test_reader_refuses_writes(void) {
  Tmp t;
  tide_Store *s;
  char msg[768];
  int64_t id = 0;
  tmp_init(&t, "state.db");
  tide_store_close(open_ok(t.path, TIDE_STORE_WRITE));
  s = open_ok(t.path, TIDE_STORE_READ);
  snprintf(msg, sizeof msg, "%s: state store is open read-only", t.path);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), &id, NULL),
               TIDE_EINVAL);
  CHECK_STR_EQ(tide_store_errmsg(s), msg);
  CHECK_EQ_INT(tide_store_run_begin(s, 1, &id), TIDE_EINVAL);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK_EQ_INT(tide_store_close(s), 0);
  tmp_close(&t);
}

/* A store opened again (a thread's own connection, the index's load)
** reads what its first open reaches, read-only, and shows the same
** location; a SQLite store opened by a relative path cannot be. */
static void test_open_again(void) {
  Tmp t;
  tide_Store *s, *again = NULL;
  int64_t app = 0, got = 0, count = -1;
  char cwd[512];
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), &app, NULL), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  CHECK_EQ_INT(tide_store_open_again(&again, s, TIDE_STORE_READ), 0);
  CHECK_STR_EQ(tide_store_path(again), tide_store_path(s));
  CHECK_EQ_INT(tide_store_app_get_or_create(again, LIT("docs"), &got, NULL),
               0);
  CHECK_EQ_INT(got, app);
  CHECK_EQ_INT(tide_store_app_get_or_create(again, LIT("other"), &got, NULL),
               TIDE_EINVAL); /* read-only */
  CHECK_EQ_INT(tide_store_component_count(again, app, 0, &count), 0);
  CHECK_EQ_INT(count, 0);
  CHECK_EQ_INT(tide_store_close(again), 0);
  CHECK_EQ_INT(tide_store_close(s), 0);
  if (!pg_base() && getcwd(cwd, sizeof cwd) != NULL) {
    /* Relative to a folder the caller may leave. */
    CHECK_EQ_INT(chdir(t.dir), 0);
    s = open_ok("relative.db", TIDE_STORE_WRITE);
    again = s; /* set to NULL by the call */
    CHECK_EQ_INT(tide_store_open_again(&again, s, TIDE_STORE_READ),
                 TIDE_EINVAL);
    CHECK(again == NULL);
    tide_store_close(s);
    CHECK_EQ_INT(chdir(cwd), 0);
  }
  tmp_close(&t);
}

/* The index loads on a thread of its own through the store opened again,
** reading the file states of every source besides (a load at once reads
** none): always from a SQLite file, from PostgreSQL only for an app of
** 20000 components or more (below, the thread's connection would cost
** more than the load). Either way it equals a load at once. */
static int64_t put_many(tide_Store *s, const char *app_name, int n) {
  tide_StoreComponent c;
  tide_StoreSourceItem item;
  uint8_t fp[TIDE_FP_SIZE];
  char path[32];
  int64_t app = 0;
  int i;
  CHECK_EQ_INT(tide_store_app_get_or_create(s, app_name, strlen(app_name),
                                            &app, NULL), 0);
  memset(&c, 0, sizeof c);
  SET_STR(c.fn_name, "f");
  c.input_fp = fp;
  c.app_id = app;
  for (i = 0; i < n; i++) {
    snprintf(path, sizeof path, "/f/%05d", (int)(((int64_t)i * 7919) % n));
    fp_fill(fp, i % 200);
    SET_STR(c.path, path);
    CHECK_EQ_INT(tide_store_component_put(s, &c, NULL), 0);
  }
  memset(&item, 0, sizeof item);
  item.app_id = app;
  SET_STR(item.source, "fs:docs");
  SET_STR(item.key, "a.md");
  item.size = 1;
  item.mtime_ns = 2;
  item.inode = 3;
  item.content_fp = fp;
  CHECK_EQ_INT(tide_store_source_put(s, &item), 0);
  CHECK_EQ_INT(tide_store_flush(s), 0);
  return app;
}

static void check_index_load(tide_Store *s, int64_t app, int on_thread) {
  tide_Index *now, *ix;
  size_t i;
  CHECK_EQ_INT(tide_index_new(&now, NULL, NULL), 0);
  CHECK_EQ_INT(tide_index_load(now, s, app), 0);
  CHECK_EQ_INT(tide_index_new(&ix, NULL, NULL), 0);
  CHECK_EQ_INT(tide_index_load_async(ix, s, app), 0);
  CHECK_EQ_INT(tide_index_wait(ix), 0);
  CHECK_EQ_INT(tide_index_count(ix), tide_index_count(now));
  for (i = 0; i < tide_index_count(ix) && i < tide_index_count(now); i++) {
    tide_IndexEntry *x = tide_index_at(ix, i), *y = tide_index_at(now, i);
    CHECK(x->id == y->id && x->path_len == y->path_len &&
          memcmp(x->input, y->input, TIDE_FP_SIZE) == 0 &&
          memcmp(tide_index_path(ix, x), tide_index_path(now, y),
                 x->path_len) == 0);
  }
  CHECK_EQ_INT(tide_index_file_fp(ix, LIT("fs:docs"), LIT("a.md"), 1, 2, 3)
                 != NULL, on_thread);
  tide_index_free(ix);
  tide_index_free(now);
}

static void test_index_on_a_thread(void) {
  Tmp t;
  tide_Store *s;
  int64_t small, big, count = -1;
  tmp_init(&t, "state.db");
  s = open_ok(t.path, TIDE_STORE_WRITE);
  small = put_many(s, "small", 19999);
  big = put_many(s, "big", 20000);
  /* A count that stops at its bound. */
  CHECK_EQ_INT(tide_store_component_count(s, big, 0, &count), 0);
  CHECK_EQ_INT(count, 20000);
  CHECK_EQ_INT(tide_store_component_count(s, big, 100, &count), 0);
  CHECK_EQ_INT(count, 100);
  CHECK_EQ_INT(tide_store_component_count(s, small, 30000, &count), 0);
  CHECK_EQ_INT(count, 19999);
  check_index_load(s, small, !pg_base());
  check_index_load(s, big, 1);
  tide_store_close(s);
  tmp_close(&t);
}

/* ---- Allocation ---- */

typedef struct {
  long live;      /* blocks allocated and not freed */
  long calls;     /* allocations so far */
  long fail_at;   /* the allocation that fails, or -1 */
} Counting;

static void *counting_alloc(void *ud, void *ptr, size_t osize,
                            size_t nsize) {
  Counting *c = ud;
  if (nsize == 0) {
    if (ptr) c->live--;
    free(ptr);
    return NULL;
  }
  if (c->calls++ == c->fail_at) return NULL;
  ptr = realloc(ptr, nsize);
  if (ptr && osize == 0) c->live++;
  return ptr;
}

static void test_allocator(void) {
  Tmp t;
  tide_Store *s;
  Counting c;
  tide_StoreComponent comp;
  int64_t id;
  long i;
  int rc, saw_nomem = 0, saw_ok = 0;
  tmp_init(&t, "state.db");
  /* Every allocation failing in turn: ENOMEM or success, never a leak. */
  for (i = 0; i < 12; i++) {
    c.live = c.calls = 0;
    c.fail_at = i;
    s = NULL;
    rc = tide_store_open(&s, t.path, TIDE_STORE_WRITE, counting_alloc, &c);
    if (rc == TIDE_ENOMEM) {
      saw_nomem++;
      CHECK_STR_EQ(tide_store_errmsg(s), "out of memory");
    } else {
      CHECK_EQ_INT(rc, 0);
      saw_ok++;
    }
    if (rc == TIDE_ENOMEM && s == NULL) CHECK_EQ_INT(c.live, 0);
    tide_store_close(s);
    CHECK_EQ_INT(c.live, 0);
  }
  CHECK(saw_nomem >= 3);
  CHECK(saw_ok >= 1);
  /* Operations and their error messages allocate through it too. */
  c.live = c.calls = 0;
  c.fail_at = -1;
  s = NULL;
  CHECK_EQ_INT(tide_store_open(&s, t.path, TIDE_STORE_WRITE, counting_alloc,
                               &c),
               0);
  CHECK_EQ_INT(tide_store_app_get_or_create(s, LIT("docs"), &id, NULL), 0);
  memset(&comp, 0, sizeof comp);
  comp.app_id = id;
  SET_STR(comp.path, "/x");
  CHECK_EQ_INT(tide_store_component_put(s, &comp, NULL), TIDE_ESTORE);
  if (pg_base()) {
    CHECK_STR_CONTAINS(tide_store_errmsg(s), "violates not-null");
    /* store, conninfo, location, the pipeline's queue, msg (grown once
    ** for the longer message), and the failure kept as the lost batch's
    ** (tide_store_lost_message), freed by the close */
    CHECK_EQ_INT(c.calls, 7);
    CHECK_EQ_INT(c.live, 6);
  } else {
    CHECK_STR_CONTAINS(tide_store_errmsg(s), "NOT NULL constraint failed");
    CHECK_EQ_INT(c.calls, 4); /* store, path, lock path, msg */
    CHECK_EQ_INT(c.live, 3);
  }
  tide_store_close(s);
  CHECK_EQ_INT(c.live, 0);
  tmp_close(&t);
}

static const CheckTest tests[] = {
  { "bad arguments", test_bad_arguments },
  { "second writer locked", test_second_writer_locked },
  { "lock freed by kill -9", test_lock_freed_by_kill },
  { "reader refuses writes", test_reader_refuses_writes },
  { "a store opened again", test_open_again },
  { "the index loaded on a thread", test_index_on_a_thread },
  { "allocator", test_allocator },
  { NULL, NULL },
};

/* On files only. */
static const CheckTest file_tests[] = {
  { "version upgraded", test_version_upgraded },
  { "version 2 upgraded", test_version_2_upgraded },
  { "create and reopen", test_create_and_reopen },
  { "version recorded", test_version_recorded },
  { "unknown version refused", test_unknown_version_refused },
  { "foreign sqlite file refused", test_foreign_sqlite_refused },
  { "garbage file refused", test_garbage_refused },
  { "missing and empty files", test_missing_and_empty },
  { "no shared updates", test_sqlite_not_shared },
  { NULL, NULL },
};

int main(int argc, char **argv) {
  if (argc == 5 && strcmp(argv[1], "--child") == 0)
    return child_main(argv[2], argv[3], atoi(argv[4]));
  return store_suite("store", tests, file_tests, NULL);
}
