/*
** SQLite connections as tide opens them, for the state store (store_sqlite.c) and
** the SQLite connector (sqlite_db.c): one set of open modes, the settings
** every connection shares, and one way of wording a failure.
**
** A message reads SUBJECT: OPERATION: REASON. The subject names the
** database and is put in front by its owner: the store puts its path, the
** connector's Lua layer "sqlite.table NAME in PATH" or "sqlite.rows PATH".
** The functions here write OPERATION: REASON: what tide was doing, in words
** ("cannot open", "cannot start a write transaction"), then why: SQLite's
** message, the system's error in words, or, when SQLite could not write,
** which file or folder is not writable. A message holds no source
** position.
**
** Contract, for every function below unless it says otherwise:
** - It returns 0 or a negative TIDE_E* code, and on failure writes the
**   message into msg, a buffer of cap bytes (TIDE_SQLITE_MSG_SIZE holds
**   any message).
** - path is the database file's path; noun names the database in messages
**   ("state store", "database"). Strings are borrowed for the call.
*/
#ifndef TIDE_SQLITE_CONN_H
#define TIDE_SQLITE_CONN_H

#include <limits.h>
#include <stddef.h>

#include <sqlite3.h>

#include "tide.h"

/* Open modes: exactly one of them. */
#define TIDE_SQLITE_CREATE 1   /* read-write; creates file and folders */
#define TIDE_SQLITE_WRITE 2    /* read-write; the file must exist */
#define TIDE_SQLITE_READONLY 3 /* read-only; the file must exist */

/* How long a statement waits for another connection's lock by default. */
#define TIDE_SQLITE_BUSY_MS 5000

/* A buffer that holds any message of these functions. */
#define TIDE_SQLITE_MSG_SIZE (PATH_MAX + 256)

/*
** Opens the database file at path in mode, as every tide connection is
** opened: used by one thread at a time (SQLITE_OPEN_NOMUTEX) and waiting
** up to TIDE_SQLITE_BUSY_MS for another connection's lock. Reads nothing
** of the database, so that its owner can check what the file is before
** anything changes it. A folder at path is refused; a missing file gives
** TIDE_ENOTFOUND with WRITE and READONLY, and with CREATE the folders
** leading to it are created first. A writer
** (CREATE or WRITE) first gives the PATH-wal and PATH-shm files that a
** read-only connection left read-only the database's mode back, and then
** refuses a file that SQLite could open only for reading (it does so
** silently, and the first write would fail), naming what is not writable.
** On failure *db is NULL or a connection to close with sqlite3_close_v2.
*/
int tide_sqlite_conn_open(sqlite3 **db, const char *path, int mode,
                          const char *noun, char *msg, size_t cap);

/*
** The settings that read the database, applied once its owner knows what
** the file is: a writer gets synchronous = NORMAL (with WAL, a sync only
** at checkpoints, and a crash still leaves the database consistent), and
** CREATE also puts the database in WAL mode, so that other programs can
** read it while tide writes.
*/
int tide_sqlite_conn_settle(sqlite3 *db, const char *path, int mode,
                            const char *noun, char *msg, size_t cap);

/*
** Words a failure of the connection db, opened on path in mode, with
** SQLite result code rc: "WHAT: REASON", REASON being SQLite's message (or
** "REASON" alone when what is NULL). When SQLite could not write
** (SQLITE_READONLY: "attempt to write a readonly database" names neither
** the file nor the cause), the message says instead which is not
** writable: the database's folder (SQLite creates PATH-wal and PATH-shm
** there, even to read), the file itself, or PATH-wal or PATH-shm. When
** SQLite could not open the file ("unable to open database file"), it says
** why when the file system tells: a folder in the file's place, a folder
** where the file cannot be created, a file this user may not read or
** write. Returns TIDE_ENOMEM when SQLite ran out of memory, else
** TIDE_EIO.
*/
int tide_sqlite_conn_explain(sqlite3 *db, int rc, const char *path, int mode,
                             const char *noun, const char *what, char *msg,
                             size_t cap);

#endif
