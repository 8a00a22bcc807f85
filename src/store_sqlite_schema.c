/*
** The state store's schema, format version 3, and the checks that decide
** whether a file is a store this tide can use.
**
** meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)
**   format = 'tide-state', version = '3', created_by = 'tide X.Y.Z'.
**   The version is also in PRAGMA user_version, and PRAGMA application_id
**   is 0x54494445 ("TIDE"), for tools such as file(1); tide reads meta.
** apps(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
**   created_ns INTEGER NOT NULL)
** components(id INTEGER PRIMARY KEY, app_id INTEGER NOT NULL,
**   path TEXT NOT NULL, parent_id INTEGER, fn_name TEXT NOT NULL,
**   logic_fp BLOB, input_fp BLOB, source_key TEXT,
**   state BLOB (CBOR: its return value, the tide.fns and context values
**     it depended on, the memo entries it used),
**   deps_fp BLOB (fingerprint of those dependencies, so that a run checks
**     each distinct set once),
**   status INTEGER NOT NULL DEFAULT 0, error TEXT, updated_ns INTEGER,
**   UNIQUE(app_id, path))
** memo_refs(app_id, component_id, key, PRIMARY KEY(component_id, key))
**   WITHOUT ROWID, indexed by (app_id, key): which component used which memo
**   entry, so entries no component uses any more can be found and deleted
**   at the cost of what changed.
** memos(app_id INTEGER NOT NULL, key BLOB NOT NULL (16-byte fingerprint),
**   fn_name TEXT NOT NULL, value BLOB, deps BLOB, targets BLOB (all CBOR),
**   updated_ns INTEGER, UNIQUE(app_id, key))
**   A rowid table: entries are appended in the order they are made, and
**   the keys, which are random, go to the small index. (Up to version 2
**   it was WITHOUT ROWID, keyed by (app_id, key): a value of a few KB, an
**   embedding, then overflowed its page and each random insert moved big
**   rows around; 2,000 such values took 2.5 times as long to write.)
** containers(id INTEGER PRIMARY KEY, app_id INTEGER NOT NULL,
**   kind TEXT NOT NULL (the target type), identity TEXT NOT NULL,
**   spec BLOB (CBOR), schema_fp BLOB, owner_id INTEGER,
**   state INTEGER NOT NULL DEFAULT 0, UNIQUE(app_id, kind, identity))
** target_states(container_id INTEGER NOT NULL, key BLOB NOT NULL (CBOR),
**   owner_id INTEGER NOT NULL, value_fp BLOB,
**   pending INTEGER NOT NULL DEFAULT 0 (0 applied, 1 upsert pending,
**   2 delete pending), written_ns INTEGER,
**   PRIMARY KEY(container_id, key)) WITHOUT ROWID
**   + index target_states_owner(owner_id)
**   + partial index target_states_pending(container_id) WHERE pending <> 0,
**     so finding the pending rows after a crash reads only those rows
** intents(id INTEGER PRIMARY KEY, app_id INTEGER NOT NULL,
**   container_id INTEGER NOT NULL, keys BLOB NOT NULL (CBOR: an array of
**   the keys, as target_states holds them))
**   A batch of upserts to one container, recorded with its states (which
**   are written applied) before the target is touched and deleted once
**   the target holds them: the intent of a whole batch in one row, where
**   marking every state pending and then applied would write each twice.
**   A row left behind by a crash makes every state it names unknown.
**   (Added in version 2.)
** source_items(app_id INTEGER NOT NULL, source TEXT NOT NULL,
**   key TEXT NOT NULL, size INTEGER, mtime_ns INTEGER, inode INTEGER,
**   content_fp BLOB, PRIMARY KEY(app_id, source, key)) WITHOUT ROWID
** runs(id INTEGER PRIMARY KEY, app_id INTEGER NOT NULL,
**   started_ns INTEGER NOT NULL, finished_ns INTEGER, status INTEGER,
**   stats TEXT (JSON)) + index runs_app(app_id, id)
**
** A store of version 1 or 2 is read as it is and upgraded by a write open,
** in one transaction, keeping what it holds.
**
** Times are nanoseconds since the epoch. Ids of other tables (app_id,
** parent_id, owner_id, container_id) are plain integers without foreign
** keys: the store deletes what an app or a container owns itself.
*/
#include <stdlib.h>
#include <string.h>

#include "store_sqlite.h"

#define FORMAT_NAME "tide-state"
#define STR(x) #x
#define XSTR(x) STR(x)

/* What version 2 added. */
#define INTENTS_SQL \
  "CREATE TABLE intents(id INTEGER PRIMARY KEY, app_id INTEGER NOT NULL," \
  " container_id INTEGER NOT NULL, keys BLOB NOT NULL);"

/* What version 3 changed: memos as a rowid table. */
#define MEMOS_SQL \
  "CREATE TABLE memos(app_id INTEGER NOT NULL, key BLOB NOT NULL," \
  " fn_name TEXT NOT NULL, value BLOB, deps BLOB, targets BLOB," \
  " updated_ns INTEGER, UNIQUE(app_id, key));"
#define MEMO_COLUMNS "app_id, key, fn_name, value, deps, targets, updated_ns"

static const char schema_sql[] =
  "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
  "CREATE TABLE apps(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
  " created_ns INTEGER NOT NULL);"
  "CREATE TABLE components(id INTEGER PRIMARY KEY,"
  " app_id INTEGER NOT NULL, path TEXT NOT NULL, parent_id INTEGER,"
  " fn_name TEXT NOT NULL, logic_fp BLOB, input_fp BLOB, source_key TEXT,"
  " state BLOB, deps_fp BLOB, status INTEGER NOT NULL DEFAULT 0,"
  " error TEXT,"
  " updated_ns INTEGER, UNIQUE(app_id, path));"
  MEMOS_SQL
  "CREATE TABLE containers(id INTEGER PRIMARY KEY,"
  " app_id INTEGER NOT NULL, kind TEXT NOT NULL, identity TEXT NOT NULL,"
  " spec BLOB, schema_fp BLOB, owner_id INTEGER,"
  " state INTEGER NOT NULL DEFAULT 0, UNIQUE(app_id, kind, identity));"
  "CREATE TABLE target_states(container_id INTEGER NOT NULL,"
  " key BLOB NOT NULL, owner_id INTEGER NOT NULL, value_fp BLOB,"
  " pending INTEGER NOT NULL DEFAULT 0, written_ns INTEGER,"
  " PRIMARY KEY(container_id, key)) WITHOUT ROWID;"
  "CREATE INDEX target_states_owner ON target_states(owner_id);"
  "CREATE INDEX target_states_pending ON target_states(container_id)"
  " WHERE pending <> 0;"
  "CREATE TABLE source_items(app_id INTEGER NOT NULL, source TEXT NOT NULL,"
  " key TEXT NOT NULL, size INTEGER, mtime_ns INTEGER, inode INTEGER,"
  " content_fp BLOB, PRIMARY KEY(app_id, source, key)) WITHOUT ROWID;"
  "CREATE TABLE runs(id INTEGER PRIMARY KEY, app_id INTEGER NOT NULL,"
  " started_ns INTEGER NOT NULL, finished_ns INTEGER, status INTEGER,"
  " stats TEXT);"
  "CREATE INDEX runs_app ON runs(app_id, id);"
  "CREATE TABLE memo_refs(app_id INTEGER NOT NULL,"
  " component_id INTEGER NOT NULL, key BLOB NOT NULL,"
  " PRIMARY KEY(component_id, key)) WITHOUT ROWID;"
  "CREATE INDEX memo_refs_key ON memo_refs(app_id, key);"
  INTENTS_SQL
  "INSERT INTO meta(key, value) VALUES"
  " ('format', '" FORMAT_NAME "'),"
  " ('version', '" XSTR(TIDE_STORE_FORMAT_VERSION) "'),"
  " ('created_by', 'tide " TIDE_VERSION "');"
  "PRAGMA application_id = 1414087749;"
  "PRAGMA user_version = " XSTR(TIDE_STORE_FORMAT_VERSION) ";";

/* The tables a store has: version 1's, and those of version 2. */
static const char tables_sql[] =
  "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN"
  " ('meta', 'apps', 'components', 'memos', 'containers', 'target_states',"
  " 'source_items', 'runs', 'memo_refs', 'intents')";
static const int64_t table_count[] = {0, 9, 10, 10};

/* Runs a one-row, one-column query; *st is left on its row. */
static int query_row(SqStore *s, const char *sql, sqlite3_stmt **st) {
  int rc;
  if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK) return -1;
  rc = sqlite3_step(*st);
  if (rc == SQLITE_ROW) return 0;
  sqlite3_finalize(*st);
  *st = NULL;
  return rc == SQLITE_DONE ? 1 : -1;
}

static int not_a_database(SqStore *s) {
  if ((sqlite3_errcode(s->db) & 0xff) == SQLITE_NOTADB)
    return tide_sqs_fail(s, TIDE_ENOTSTORE,
                           "%s: not a tide state store (file is not a "
                           "database)", s->path);
  return tide_sqs_fail_db(s, "cannot read the state store");
}

static int not_a_store(SqStore *s) {
  return tide_sqs_fail(s, TIDE_ENOTSTORE, "%s: not a tide state store",
                         s->path);
}

/* Reads meta's format and version; 0 when they match this tide. */
static int check_meta(SqStore *s) {
  sqlite3_stmt *st;
  const char *key, *value;
  char *end;
  int has_format = 0, has_version = 0, rc;
  long version = 0;
  if (sqlite3_prepare_v2(s->db,
                         "SELECT key, value FROM meta"
                         " WHERE key IN ('format', 'version')",
                         -1, &st, NULL) != SQLITE_OK)
    return not_a_store(s);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    key = (const char *)sqlite3_column_text(st, 0);
    value = (const char *)sqlite3_column_text(st, 1);
    if (key == NULL || value == NULL) continue;
    if (strcmp(key, "format") == 0) {
      has_format = strcmp(value, FORMAT_NAME) == 0;
    } else {
      version = strtol(value, &end, 10);
      has_version = end != value && *end == '\0';
    }
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return not_a_database(s);
  if (!has_format) return not_a_store(s);
  if (!has_version)
    return tide_sqs_fail(s, TIDE_ENOTSTORE,
                           "%s: not a tide state store (no valid format "
                           "version)", s->path);
  if (version < TIDE_STORE_FORMAT_OLDEST ||
      version > TIDE_STORE_FORMAT_VERSION)
    return tide_sqs_fail(s, TIDE_EVERSION,
                           "%s: state store format version %ld is not "
                           "supported by this tide (supports %d to %d)",
                           s->path, version, TIDE_STORE_FORMAT_OLDEST,
                           TIDE_STORE_FORMAT_VERSION);
  s->version = (int)version;
  return 0;
}

int tide_sqs_schema_check(SqStore *s) {
  sqlite3_stmt *st;
  int64_t count;
  int rc = query_row(s, "SELECT count(*) FROM sqlite_master", &st);
  if (rc) return not_a_database(s);
  count = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  if (count == 0) return 1;
  rc = query_row(s,
                 "SELECT count(*) FROM sqlite_master"
                 " WHERE type = 'table' AND name = 'meta'",
                 &st);
  if (rc) return not_a_database(s);
  count = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  if (count == 0) return not_a_store(s);
  rc = check_meta(s);
  if (rc) return rc;
  rc = query_row(s, tables_sql, &st);
  if (rc) return not_a_database(s);
  count = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  if (count != table_count[s->version])
    return tide_sqs_fail(s, TIDE_ENOTSTORE,
                           "%s: state store is damaged (tables are missing)",
                           s->path);
  return 0;
}

/* Each step upgrades a store from the version before its own. */
static const char *const upgrade_steps[] = {
  NULL, NULL,
  /* 2 */ INTENTS_SQL,
  /* 3 */ "ALTER TABLE memos RENAME TO memos_v2;" MEMOS_SQL
  "INSERT INTO memos(" MEMO_COLUMNS ") SELECT " MEMO_COLUMNS
  " FROM memos_v2 ORDER BY updated_ns;"
  "DROP TABLE memos_v2;",
};
typedef char upgrade_steps_cover_each_version
  [sizeof upgrade_steps / sizeof upgrade_steps[0] ==
   TIDE_STORE_FORMAT_VERSION + 1 ? 1 : -1];

int tide_sqs_schema_upgrade(SqStore *s) {
  static const char version_sql[] =
    "UPDATE meta SET value = '" XSTR(TIDE_STORE_FORMAT_VERSION) "'"
    " WHERE key = 'version';"
    "PRAGMA user_version = " XSTR(TIDE_STORE_FORMAT_VERSION) ";";
  int v, failed = 0;
  if (s->version == TIDE_STORE_FORMAT_VERSION) return 0;
  if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
    return tide_sqs_fail_db(s, "cannot upgrade the state store");
  for (v = s->version + 1; !failed && v <= TIDE_STORE_FORMAT_VERSION; v++)
    failed = sqlite3_exec(s->db, upgrade_steps[v], NULL, NULL, NULL) !=
             SQLITE_OK;
  if (failed ||
      sqlite3_exec(s->db, version_sql, NULL, NULL, NULL) != SQLITE_OK ||
      sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    int rc = tide_sqs_fail_db(s, "cannot upgrade the state store");
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
  }
  s->version = TIDE_STORE_FORMAT_VERSION;
  return 0;
}

int tide_sqs_schema_create(SqStore *s) {
  int rc;
  if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
    return tide_sqs_fail_db(s, "cannot create the schema");
  /* Check again inside the transaction, so nothing slips in between. */
  rc = tide_sqs_schema_check(s);
  if (rc == 1 &&
      sqlite3_exec(s->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK)
    rc = tide_sqs_fail_db(s, "cannot create the schema");
  if (rc < 0) {
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
  }
  if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    rc = tide_sqs_fail_db(s, "cannot create the schema");
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
  }
  if (rc == 1) s->version = TIDE_STORE_FORMAT_VERSION;
  return tide_sqs_schema_upgrade(s);
}
