/*
** SQLite connections as tide opens them: modes, shared settings and the
** words of a failure. See sqlite_conn.h for the contract.
*/
#include "mkdirs.h"
#include "sqlite_conn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

#if defined(__GNUC__)
#define PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF(f, a)
#endif

/* Writes the message and returns code. */
static int say(char *msg, size_t cap, int code, const char *fmt, ...)
  PRINTF(4, 5);

static int say(char *msg, size_t cap, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, cap, fmt, ap);
  va_end(ap);
  return code;
}

/* "WHAT: <the system's error e in words>". */
static int say_errno(char *msg, size_t cap, int code, const char *what,
                     int e) {
  char text[TIDE_ERRNO_TEXT_SIZE];
  return say(msg, cap, code, "%s: %s", what,
             tide_error_errno_text(e, text, sizeof text));
}

/* The folder holding path, into dir; 0 when it does not fit. */
static int folder_of(const char *path, char *dir, size_t cap) {
  const char *slash = strrchr(path, '/');
  size_t len = slash == NULL ? 1 : slash == path ? 1 : (size_t)(slash - path);
  if (len >= cap) return 0;
  memcpy(dir, slash == NULL ? "." : path, len);
  dir[len] = '\0';
  return 1;
}

/* Creates the folders leading to path (the one mkdir -p, mkdirs.h). */
static int make_folders(const char *path, char *msg, size_t cap) {
  char err[PATH_MAX + TIDE_ERRNO_TEXT_SIZE];
  if (tide_dir_make_parent(path, NULL, err, sizeof err) != 0)
    return say(msg, cap, TIDE_EIO, "cannot create folder %s", err);
  return 0;
}

/* SQLite creates PATH-wal and PATH-shm with the mode of PATH. A connection
** to a read-only PATH creates them read-only and, unable to write, cannot
** remove them when it closes; once PATH is writable again they would keep
** every writer out ("attempt to write a readonly database"). So before a
** writer opens the database, such a file gets PATH's mode back (harmless
** to a reader that has it open); one this user cannot change is an error
** naming it. */
static int repair_side_files(const char *path, char *msg, size_t cap) {
  static const char *const sides[] = {"-wal", "-shm"};
  char side[PATH_MAX], text[TIDE_ERRNO_TEXT_SIZE];
  struct stat db, st;
  size_t i;
  int e;
  if (stat(path, &db) != 0 || access(path, W_OK) != 0) return 0;
  for (i = 0; i < 2; i++) {
    if (snprintf(side, sizeof side, "%s%s", path, sides[i]) >=
        (int)sizeof side)
      return 0;
    if (lstat(side, &st) != 0 || !S_ISREG(st.st_mode) ||
        access(side, W_OK) == 0)
      continue;
    e = errno;
    if (e == EACCES && chmod(side, db.st_mode & 0777) == 0 &&
        access(side, W_OK) == 0)
      continue;
    return say(msg, cap, TIDE_EIO, "cannot write %s: %s", side,
               tide_error_errno_text(e, text, sizeof text));
  }
  return 0;
}

int tide_sqlite_conn_open(sqlite3 **db, const char *path, int mode,
                          const char *noun, char *msg, size_t cap) {
  struct stat st;
  int flags, rc;
  *db = NULL;
  if (mode == TIDE_SQLITE_CREATE)
    flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  else if (mode == TIDE_SQLITE_WRITE)
    flags = SQLITE_OPEN_READWRITE;
  else if (mode == TIDE_SQLITE_READONLY)
    flags = SQLITE_OPEN_READONLY;
  else
    return say(msg, cap, TIDE_EINVAL, "cannot open: invalid mode %d", mode);
  if (stat(path, &st) == 0) {
    if (S_ISDIR(st.st_mode))
      return say_errno(msg, cap, TIDE_EIO, "cannot open", EISDIR);
  } else if (mode != TIDE_SQLITE_CREATE) {
    return say_errno(msg, cap, errno == ENOENT ? TIDE_ENOTFOUND : TIDE_EIO,
                     "cannot open", errno);
  } else if ((rc = make_folders(path, msg, cap)) != 0) {
    return rc;
  }
  if (mode != TIDE_SQLITE_READONLY &&
      (rc = repair_side_files(path, msg, cap)) != 0)
    return rc;
  rc = sqlite3_open_v2(path, db, flags | SQLITE_OPEN_NOMUTEX, NULL);
  if (*db == NULL) return say(msg, cap, TIDE_ENOMEM, "out of memory");
  if (rc != SQLITE_OK)
    return tide_sqlite_conn_explain(*db, rc, path, mode, noun, "cannot open",
                                    msg, cap);
  sqlite3_busy_timeout(*db, TIDE_SQLITE_BUSY_MS);
  /* Checked before anything is read, which would create PATH-wal and
  ** PATH-shm. */
  if (mode != TIDE_SQLITE_READONLY && sqlite3_db_readonly(*db, "main") == 1) {
    char what[64];
    snprintf(what, sizeof what, "cannot open the %s for writing", noun);
    return say_errno(msg, cap, TIDE_EIO, what,
                     access(path, W_OK) != 0 ? errno : EACCES);
  }
  return 0;
}

int tide_sqlite_conn_settle(sqlite3 *db, const char *path, int mode,
                            const char *noun, char *msg, size_t cap) {
  sqlite3_stmt *st;
  const char *journal;
  int rc;
  if (mode == TIDE_SQLITE_READONLY) return 0;
  if (mode == TIDE_SQLITE_CREATE) {
    int waited_ms = 0;
    rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    /* SQLite answers SQLITE_BUSY at once, without the busy handler, when
    ** another connection switches the same new file at the same time
    ** (two processes setting up tables in one database): tried again for
    ** as long as the busy timeout. */
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_BUSY &&
           waited_ms < TIDE_SQLITE_BUSY_MS) {
      int slept = (sqlite3_reset(st), sqlite3_sleep(5));
      waited_ms += slept > 0 ? slept : 5;
      rc = SQLITE_OK;
    }
    if (rc == SQLITE_ROW) {
      journal = (const char *)sqlite3_column_text(st, 0);
      rc = journal && strcmp(journal, "wal") == 0 ? 0
           : say(msg, cap, TIDE_EIO, "cannot switch to WAL mode: the "
                 "journal mode stays %s", journal ? journal : "unknown");
      sqlite3_finalize(st);
      if (rc) return rc;
    } else {
      sqlite3_finalize(st);
      return tide_sqlite_conn_explain(db, rc, path, mode, noun,
                                      "cannot switch to WAL mode", msg, cap);
    }
  }
  rc = sqlite3_exec(db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
  if (rc != SQLITE_OK)
    return tide_sqlite_conn_explain(db, rc, path, mode, noun, "cannot open",
                                    msg, cap);
  return 0;
}

/* Which of the files SQLite needs is not writable, when one is: writes
** the message and returns 1, else 0. */
static int explain_readonly(sqlite3 *db, int rc, const char *path, int mode,
                            const char *noun, char *msg, size_t cap) {
  static const char *const sides[] = {"-wal", "-shm"};
  char text[TIDE_ERRNO_TEXT_SIZE], side[PATH_MAX];
  size_t i;
  int e;
  if (rc == SQLITE_READONLY_DIRECTORY ||
      (db && sqlite3_extended_errcode(db) == SQLITE_READONLY_DIRECTORY)) {
    if (!folder_of(path, side, sizeof side)) return 0;
    e = access(side, W_OK | X_OK) == 0 ? EACCES : errno;
    say(msg, cap, 0, "cannot create files in %s, the %s's folder: %s", side,
        noun, tide_error_errno_text(e, text, sizeof text));
    return 1;
  }
  if (mode != TIDE_SQLITE_READONLY && access(path, W_OK) != 0) {
    say(msg, cap, 0, "cannot write the %s: %s", noun,
        tide_error_errno_text(errno, text, sizeof text));
    return 1;
  }
  for (i = 0; i < 2; i++) {
    if (snprintf(side, sizeof side, "%s%s", path, sides[i]) >=
        (int)sizeof side)
      return 0;
    if (access(side, F_OK) == 0 && access(side, W_OK) != 0) {
      say(msg, cap, 0, "cannot write %s: %s", side,
          tide_error_errno_text(errno, text, sizeof text));
      return 1;
    }
  }
  return 0;
}

/* Why SQLite could not open the file ("unable to open database file"),
** when the file system says: a folder in its place, a folder where it
** cannot be created, a file this user may not read. Writes the message
** and returns 1, else 0. */
static int explain_cantopen(const char *path, int mode, const char *noun,
                            const char *what, char *msg, size_t cap) {
  char text[TIDE_ERRNO_TEXT_SIZE], dir[PATH_MAX];
  struct stat st;
  if (stat(path, &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      say_errno(msg, cap, 0, what, EISDIR);
      return 1;
    }
    if (access(path, mode == TIDE_SQLITE_READONLY ? R_OK : R_OK | W_OK) !=
        0) {
      say_errno(msg, cap, 0, what, errno);
      return 1;
    }
    return 0;
  }
  if (errno != ENOENT || mode != TIDE_SQLITE_CREATE ||
      !folder_of(path, dir, sizeof dir) || access(dir, W_OK | X_OK) == 0)
    return 0;
  say(msg, cap, 0, "cannot create files in %s, the %s's folder: %s", dir,
      noun, tide_error_errno_text(errno, text, sizeof text));
  return 1;
}

int tide_sqlite_conn_explain(sqlite3 *db, int rc, const char *path, int mode,
                             const char *noun, const char *what, char *msg,
                             size_t cap) {
  const char *reason = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  int code = (rc & 0xff) == SQLITE_NOMEM ? TIDE_ENOMEM : TIDE_EIO;
  if (code == TIDE_ENOMEM) return say(msg, cap, code, "out of memory");
  if ((rc & 0xff) == SQLITE_READONLY && path &&
      explain_readonly(db, rc, path, mode, noun, msg, cap))
    return code;
  if ((rc & 0xff) == SQLITE_CANTOPEN && path &&
      explain_cantopen(path, mode, noun, what && *what ? what : "cannot open",
                       msg, cap))
    return code;
  if (what && *what) return say(msg, cap, code, "%s: %s", what, reason);
  return say(msg, cap, code, "%s", reason);
}
