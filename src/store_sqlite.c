/*
** The SQLite state store's lifecycle: opening (format checks, the writer
** lock), error messages, the statement cache, group commit and giving
** free pages back. The schema lives in store_sqlite_schema.c, the
** operations in store_sqlite_ops.c.
**
** The writer lock is an flock on a side file, PATH-lock, which also holds
** the holder's pid for the message a second writer gets. It is not taken on
** the database file itself: closing any descriptor of the database file
** drops every POSIX lock SQLite holds on it in this process (SQLite's
** "How To Corrupt" 2.2), which would break other connections to the same
** store in the same process. The kernel releases the flock when its holder
** dies, even by kill -9; the stale pid left in the file is overwritten by
** the next writer. The lock file is never deleted, as deleting a lock file
** races with a process about to lock it.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "error.h"
#include "sqlite_conn.h"
#include "store_sqlite.h"

static const char out_of_memory[] = "out of memory";

/* ---- Messages ---- */

int tide_sqs_fail(SqStore *s, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  code = tide_store_failv(&s->base, code, fmt, ap);
  va_end(ap);
  return code;
}

static int code_of(int sqlite_rc) {
  switch (sqlite_rc & 0xff) {
  case SQLITE_NOMEM: return TIDE_ENOMEM;
  case SQLITE_IOERR:
  case SQLITE_FULL:
  case SQLITE_READONLY:
  case SQLITE_CANTOPEN: return TIDE_EIO;
  case SQLITE_NOTADB:
  case SQLITE_CORRUPT: return TIDE_ENOTSTORE;
  default: return TIDE_ESTORE;
  }
}

static int nomem(SqStore *s) {
  return tide_sqs_fail(s, TIDE_ENOMEM, "%s", out_of_memory);
}

/* The open mode of the store's connection (sqlite_conn.h). */
static int conn_mode(const SqStore *s) {
  return s->flags == TIDE_STORE_WRITE ? TIDE_SQLITE_CREATE
                                      : TIDE_SQLITE_READONLY;
}

/* "PATH: " and a message of sqlite_conn.c, which words every SQLite
** failure of the store and of the SQLite connector alike. */
static int fail_conn(SqStore *s, int code, const char *msg,
                     const char *note) {
  if (code == TIDE_ENOMEM) return nomem(s);
  return tide_sqs_fail(s, code, "%s: %s%s", s->path, msg, note);
}

int tide_sqs_fail_db(SqStore *s, const char *what) {
  char msg[TIDE_SQLITE_MSG_SIZE];
  int rc = sqlite3_extended_errcode(s->db);
  const char *note = "";
  if (s->base.in_batch && sqlite3_get_autocommit(s->db)) {
    /* The error ended the transaction: SQLite rolled the batch back. */
    s->base.in_batch = 0;
    s->base.batch_writes = 0;
    note = " (the uncommitted batch was rolled back)";
  }
  tide_sqlite_conn_explain(s->db, rc, s->path, conn_mode(s), "state store",
                           what, msg, sizeof msg);
  rc = fail_conn(s, code_of(rc), msg, note);
  /* Lost on the loop's thread by a write of its own; queued writes count
  ** theirs as the loop's thread learns of it. */
  if (*note && !tide_sqs_running_queue()) tide_sqs_batch_lost(s);
  return rc;
}

const char *tide_sqs_path(const SqStore *s) {
  return s && s->path ? s->path : "";
}

/* ---- Clocks ---- */



/* ---- Statement cache ---- */

static void release(SqStore *s) {
  if (s->held) sqlite3_reset(s->held);
  s->held = NULL;
}

int tide_sqs_stmt(SqStore *s, int slot, const char *sql,
                    sqlite3_stmt **st) {
  sqlite3_stmt **p = &s->stmts[slot];
  int rc = tide_sqs_sync(s);
  if (rc) return rc;
  release(s);
  if (*p == NULL) {
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, p,
                           NULL) != SQLITE_OK) {
      *p = NULL;
      return tide_sqs_fail_db(s, "cannot prepare a statement");
    }
  } else if (sqlite3_stmt_busy(*p)) {
    return tide_sqs_fail(s, TIDE_EINVAL,
                           "%s: nested use of a store iteration", s->path);
  }
  *st = *p;
  return 0;
}

/* Runs a statement without results, such as BEGIN or COMMIT. */
static int exec_slot(SqStore *s, int slot, const char *sql,
                     const char *what) {
  sqlite3_stmt *st;
  int rc = tide_sqs_stmt(s, slot, sql, &st);
  if (rc) return rc;
  if (sqlite3_step(st) != SQLITE_DONE) {
    rc = tide_sqs_fail_db(s, what);
    sqlite3_reset(st);
    return rc;
  }
  sqlite3_reset(st);
  return 0;
}

/* ---- Group commit ---- */

int tide_sqs_write_begin(SqStore *s) {
  int rc;
  if (s->flags != TIDE_STORE_WRITE)
    return tide_sqs_fail(s, TIDE_EINVAL, "%s: state store is open read-only",
                           s->path);
  if ((rc = tide_sqs_sync(s)) != 0) return rc;
  if (s->base.in_batch) return 0;
  rc = exec_slot(s, TIDE_STMT_BEGIN, "BEGIN IMMEDIATE",
                 "cannot start a write transaction");
  if (rc) return rc;
  s->base.in_batch = 1;
  s->base.batch_writes = 0;
  s->base.batch_started_ns = tide_store_monotonic_ns();
  return 0;
}

void tide_sqs_write_done(SqStore *s) { s->base.batch_writes++; }

int tide_sqs_flush(SqStore *s) {
  int rc = tide_sqs_sync(s);
  if (rc) return rc;
  release(s);
  if (!s->base.in_batch) return 0;
  rc = exec_slot(s, TIDE_STMT_COMMIT, "COMMIT", "cannot commit");
  if (rc) return rc;
  s->base.in_batch = 0;
  s->base.batch_writes = 0;
  tide_sqs_committed(s);
  return 0;
}

int tide_sqs_maybe_flush(SqStore *s) {
  int rc = tide_sqs_sync(s);
  if (rc) return rc;
  return tide_store_batch_due(&s->base) ? tide_sqs_flush(s) : 0;
}

int tide_sqs_rollback(SqStore *s) {
  int rc;
  tide_sqs_drop_queue(s);
  release(s);
  if (!s->base.in_batch) return 0;
  rc = exec_slot(s, TIDE_STMT_ROLLBACK, "ROLLBACK", "cannot roll back");
  if (rc) return rc;
  s->base.in_batch = 0;
  s->base.batch_writes = 0;
  return 0;
}

/* ---- Space ---- */

/* Reads the integer a pragma returns. */
static int pragma_int(SqStore *s, const char *sql, int64_t *v) {
  sqlite3_stmt *st;
  int rc;
  if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
    return tide_sqs_fail_db(s, "cannot read its size");
  rc = sqlite3_step(st);
  *v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW) return tide_sqs_fail_db(s, "cannot read its size");
  return 0;
}

int tide_sqs_space(SqStore *s, tide_StoreSpace *space) {
  int64_t mode = 0;
  int rc = tide_sqs_sync(s);
  if (rc) return rc;
  release(s);
  memset(space, 0, sizeof *space);
  if ((rc = pragma_int(s, "PRAGMA page_size", &space->page_size)) != 0 ||
      (rc = pragma_int(s, "PRAGMA page_count", &space->pages)) != 0 ||
      (rc = pragma_int(s, "PRAGMA freelist_count", &space->free_pages)) !=
          0 ||
      (rc = pragma_int(s, "PRAGMA auto_vacuum", &mode)) != 0)
    return rc;
  space->incremental = mode == 2;
  return 0;
}

/* Writes the WAL back into the database, which truncates the database to
** its size, and empties the WAL. Without waiting: a reader on an older
** snapshot stops it short (SQLITE_BUSY), and a later checkpoint finishes
** the work. */
static int checkpoint(SqStore *s) {
  int rc;
  sqlite3_busy_timeout(s->db, 0);
  rc = sqlite3_wal_checkpoint_v2(s->db, "main", SQLITE_CHECKPOINT_TRUNCATE,
                                 NULL, NULL);
  sqlite3_busy_timeout(s->db, TIDE_SQLITE_BUSY_MS);
  if (rc != SQLITE_OK && rc != SQLITE_BUSY)
    return tide_sqs_fail_db(s, "cannot checkpoint");
  return 0;
}

int tide_sqs_reclaim(SqStore *s, int64_t *freed) {
  tide_StoreSpace before, after;
  int rc;
  if (freed) *freed = 0;
  if (s->flags != TIDE_STORE_WRITE)
    return tide_sqs_fail(s, TIDE_EINVAL, "%s: state store is open read-only",
                           s->path);
  if ((rc = tide_sqs_sync(s)) != 0) return rc;
  if ((rc = tide_sqs_flush(s)) != 0 ||
      (rc = tide_sqs_space(s, &before)) != 0)
    return rc;
  if (before.free_pages * 100 <= before.pages * TIDE_STORE_RECLAIM_SHARE ||
      before.free_pages * before.page_size <= TIDE_STORE_RECLAIM_MIN_BYTES)
    return 0;
  /* Each runs as its own transaction; VACUUM rewrites a store made before
  ** auto_vacuum was set, and switches it. */
  if (sqlite3_exec(s->db, before.incremental
                   ? "PRAGMA incremental_vacuum"
                   : "PRAGMA auto_vacuum = INCREMENTAL; VACUUM",
                   NULL, NULL, NULL) != SQLITE_OK)
    return tide_sqs_fail_db(s, "cannot give free space back");
  if ((rc = tide_sqs_space(s, &after)) != 0) return rc;
  if (freed) *freed = before.pages - after.pages;
  return checkpoint(s);
}

/* ---- Opening ---- */

/* Reads the pid a writer left in the lock file; 0 when there is none. */
static long read_pid(int fd) {
  char text[32];
  ssize_t n = pread(fd, text, sizeof text - 1, 0);
  long pid = 0;
  ssize_t i;
  for (i = 0; i < n && text[i] >= '0' && text[i] <= '9'; i++) {
    if (pid > 100000000) return 0;
    pid = pid * 10 + (text[i] - '0');
  }
  return i > 0 && i < n && text[i] == '\n' ? pid : 0;
}

/* Takes the writer lock, flock on PATH-lock, and records our pid in it. */
static int lock_writer(SqStore *s) {
  size_t size = s->path_size + 5;
  char *lock_path = s->alloc(s->ud, NULL, 0, size);
  char text[TIDE_ERRNO_TEXT_SIZE];
  int fd, n, rc = 0;
  long pid;
  if (lock_path == NULL) return nomem(s);
  snprintf(lock_path, size, "%s-lock", s->path);
  fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) {
    rc = tide_sqs_fail(s, TIDE_EIO, "%s: cannot open lock file %s: %s",
                         s->path, lock_path,
                         tide_error_errno_text(errno, text, sizeof text));
  } else if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      pid = read_pid(fd);
      if (pid == (long)getpid())
        /* Two sessions of one process on one store: two apps. */
        rc = tide_sqs_fail(s, TIDE_ELOCKED,
                             "%s: locked by another running update in this"
                             " process (another app's, on the same store)",
                             s->path);
      else if (pid > 0)
        rc = tide_sqs_fail(s, TIDE_ELOCKED,
                             "%s: locked by another running update (pid %ld)",
                             s->path, pid);
      else
        rc = tide_sqs_fail(s, TIDE_ELOCKED,
                             "%s: locked by another running update", s->path);
    } else {
      rc = tide_sqs_fail(s, TIDE_EIO, "%s: cannot lock %s: %s", s->path,
                           lock_path,
                           tide_error_errno_text(errno, text, sizeof text));
    }
    close(fd);
  } else {
    s->lock_fd = fd;
    n = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    /* A session takes the lock again at every cycle: the file rewritten
    ** only when another process held it last (a truncate and a write can
    ** wait milliseconds on the file system's journal). */
    if (read_pid(fd) != (long)getpid() &&
        (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n))
      rc = tide_sqs_fail(s, TIDE_EIO, "%s: cannot write lock file %s: %s",
                           s->path, lock_path,
                           tide_error_errno_text(errno, text, sizeof text));
  }
  s->alloc(s->ud, lock_path, size, 0);
  return rc;
}

/* Opens the connection as every tide connection is opened
** (sqlite_conn.h): nothing of the file is read yet. */
static int connect_db(SqStore *s) {
  char msg[TIDE_SQLITE_MSG_SIZE];
  int rc = tide_sqlite_conn_open(&s->db, s->path, conn_mode(s),
                                 "state store", msg, sizeof msg);
  return rc ? fail_conn(s, rc, msg, "") : 0;
}

/* The settings that read the file, once it is known to be a store: WAL and
** synchronous = NORMAL for a writer (sqlite_conn.h), and for any
** connection a page cache of 16 MiB: a cycle reads the components once,
** in order, into the C index, and writes in batches, so a larger cache
** only raises a big cold run's peak memory (by up to 48 MiB at 100k
** files) without making a no-change run faster. */
static int settle(SqStore *s) {
  char msg[TIDE_SQLITE_MSG_SIZE];
  int rc = tide_sqlite_conn_settle(s->db, s->path, conn_mode(s),
                                   "state store", msg, sizeof msg);
  if (rc) return fail_conn(s, rc, msg, "");
  if (sqlite3_exec(s->db, "PRAGMA cache_size = -16384", NULL, NULL, NULL) !=
      SQLITE_OK)
    return tide_sqs_fail_db(s, "cannot open");
  return 0;
}

static int open_read(SqStore *s) {
  struct stat st;
  char text[TIDE_ERRNO_TEXT_SIZE];
  int rc;
  if (stat(s->path, &st) != 0) {
    if (errno == ENOENT)
      return tide_sqs_fail(s, TIDE_ENOTFOUND, "%s: no such state store",
                             s->path);
    return tide_sqs_fail(s, TIDE_EIO, "%s: %s", s->path,
                           tide_error_errno_text(errno, text, sizeof text));
  }
  if (S_ISDIR(st.st_mode))
    return tide_sqs_fail(s, TIDE_ENOTSTORE,
                           "%s: not a tide state store (is a directory)",
                           s->path);
  rc = connect_db(s);
  if (rc) return rc;
  rc = tide_sqs_schema_check(s);
  if (rc == 1)
    return tide_sqs_fail(s, TIDE_ENOTFOUND, "%s: state store is empty",
                           s->path);
  return rc ? rc : settle(s);
}

/* A new store gives free pages back by incremental vacuum
** (tide_sqs_reclaim). auto_vacuum takes effect only when set before the
** database's first page is written, which the switch to WAL does; a file
** left empty but in WAL mode by an open cut short takes a VACUUM, which
** costs nothing on an empty database. */
static int start_incremental(SqStore *s) {
  int64_t mode;
  int rc;
  if (sqlite3_exec(s->db, "PRAGMA auto_vacuum = INCREMENTAL", NULL, NULL,
                   NULL) != SQLITE_OK)
    return tide_sqs_fail_db(s, "cannot create the schema");
  if ((rc = pragma_int(s, "PRAGMA auto_vacuum", &mode)) != 0) return rc;
  if (mode != 2 &&
      sqlite3_exec(s->db, "VACUUM", NULL, NULL, NULL) != SQLITE_OK)
    return tide_sqs_fail_db(s, "cannot create the schema");
  return 0;
}

/* The connection creates the file and its folders when missing, and is
** refused when the file or what SQLite needs beside it is not writable
** (sqlite_conn.h). Nothing is written before the file is known to be a
** store, or empty. */
static int open_write(SqStore *s) {
  int rc = connect_db(s), empty;
  if (rc) return rc;
  /* Check before locking, so a file that is not a store is left as it is,
  ** without a lock file beside it; check again once locked, as another
  ** writer may have created the schema meanwhile. */
  rc = tide_sqs_schema_check(s);
  if (rc < 0) return rc;
  rc = lock_writer(s);
  if (rc) return rc;
  empty = tide_sqs_schema_check(s);
  if (empty < 0) return empty;
  if (empty == 1 && (rc = start_incremental(s)) != 0) return rc;
  if ((rc = settle(s)) != 0) return rc;
  return empty == 1 ? tide_sqs_schema_create(s)
                    : tide_sqs_schema_upgrade(s);
}

int tide_sqs_open(SqStore **out, const char *path, int flags,
                    tide_Alloc alloc, void *ud) {
  SqStore *s;
  size_t size;
  if (out == NULL) return TIDE_EINVAL;
  *out = NULL;
  if (alloc == NULL) alloc = tide_alloc_default;
  s = alloc(ud, NULL, 0, sizeof *s);
  if (s == NULL) return TIDE_ENOMEM;
  memset(s, 0, sizeof *s);
  s->alloc = alloc;
  s->ud = ud;
  s->base.backend = TIDE_STORE_SQLITE;
  s->base.alloc = alloc;
  s->base.ud = ud;
  s->lock_fd = -1;
  s->base.errmsg = "";
  tide_buf_init(&s->queue, alloc, ud);
  tide_buf_init(&s->sending, alloc, ud);
  tide_buf_init(&s->sent_msg, alloc, ud);
  tide_store_set_batch_limits(&s->base, 0, 0);
  *out = s;
  if (path == NULL || path[0] == '\0')
    return tide_sqs_fail(s, TIDE_EINVAL, "state store path is empty");
  size = strlen(path) + 1;
  s->path = alloc(ud, NULL, 0, size);
  if (s->path == NULL) return nomem(s);
  memcpy(s->path, path, size);
  s->path_size = size;
  if (flags == TIDE_STORE_SHARED)
    return tide_sqs_fail(s, TIDE_EINVAL, "%s: an update shared by workers "
                         "needs a PostgreSQL state store (--db "
                         "postgresql://...)", path);
  if (flags != TIDE_STORE_READ && flags != TIDE_STORE_WRITE)
    return tide_sqs_fail(s, TIDE_EINVAL, "%s: invalid open flags %d", path,
                           flags);
  s->flags = flags;
  return flags == TIDE_STORE_WRITE ? open_write(s) : open_read(s);
}

/* PRAGMA data_version: changes when another connection commits. */
static int data_version(SqStore *s, int64_t *out) {
  sqlite3_stmt *st;
  int rc = 0;
  if (sqlite3_prepare_v2(s->db, "PRAGMA data_version", -1, &st, NULL) !=
      SQLITE_OK)
    return tide_sqs_fail_db(s, "cannot read the data version");
  if (sqlite3_step(st) == SQLITE_ROW)
    *out = sqlite3_column_int64(st, 0);
  else
    rc = tide_sqs_fail_db(s, "cannot read the data version");
  sqlite3_finalize(st);
  return rc;
}

int tide_sqs_unlock(SqStore *s) {
  int rc;
  if (s->flags != TIDE_STORE_WRITE || s->lock_fd < 0) return 0;
  rc = tide_sqs_flush(s);
  if (rc) return rc;
  release(s);
  /* Another writer may add rows before the lock is taken again. */
  tide_sqs_forget_ids(s);
  rc = data_version(s, &s->unlocked_version);
  if (rc) return rc;
  close(s->lock_fd);
  s->lock_fd = -1;
  tide_sqs_reader_end(s);
  return 0;
}

int tide_sqs_relock(SqStore *s, int *changed) {
  int64_t now;
  int rc;
  *changed = 0;
  if (s->flags != TIDE_STORE_WRITE)
    return tide_sqs_fail(s, TIDE_EINVAL, "%s: opened read-only", s->path);
  if (s->lock_fd >= 0) return 0;
  rc = lock_writer(s);
  if (rc) return rc;
  rc = data_version(s, &now);
  if (rc) return rc;
  *changed = now != s->unlocked_version;
  return 0;
}

int tide_sqs_checkpoint_on(SqStore *s, uv_loop_t *loop) {
  int rc;
  if (s->flags != TIDE_STORE_WRITE)
    return tide_sqs_fail(s, TIDE_EINVAL, "%s: opened read-only", s->path);
  if (s->ckpt) return 0;
  if ((rc = tide_sqs_sync(s)) != 0) return rc;
  if (tide_ckpt_attach(&s->ckpt, s->db, s->path, loop, s->alloc, s->ud))
    return nomem(s);
  return 0;
}

int tide_sqs_close(SqStore *s) {
  int rc = 0, i;
  if (s == NULL) return 0;
  if (s->db) {
    rc = tide_sqs_flush(s);
    if (rc) tide_sqs_rollback(s);
    tide_sqs_writer_stop(s);
    release(s);
    tide_ckpt_detach(s->ckpt);
    tide_sqs_reader_close(s);
    for (i = 0; i < TIDE_STMT_COUNT; i++) sqlite3_finalize(s->stmts[i]);
    sqlite3_close_v2(s->db);
  }
  /* Only now, with the connection closed, may the writer lock go. */
  if (s->lock_fd >= 0) close(s->lock_fd);
  if (s->path) s->alloc(s->ud, s->path, s->path_size, 0);
  tide_buf_close(&s->queue);
  tide_buf_close(&s->sending);
  tide_buf_close(&s->sent_msg);
  tide_store_base_close(&s->base);
  s->alloc(s->ud, s, sizeof *s, 0);
  return rc;
}
