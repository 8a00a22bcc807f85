/*
** The PostgreSQL store's schema, format version 4: the tables of the
** SQLite store (store_sqlite_schema.c says what each holds), in a schema
** of their own, and the checks that decide whether a schema is a store
** this tide can use. The differences:
** - Text is bytea (PostgreSQL's text cannot hold NUL bytes); integers
**   are bigint.
** - components.id comes from the sequence component_ids: a writer that
**   records new components takes PG_RESERVED_IDS of them at once
**   (store_pg_ops.c), and a put that waits for its id takes one.
** - The sequence generation moves with every committed batch (store_pg.h).
** - memos has a primary key: a heap table appends its rows whatever the
**   key, which is what SQLite's version 3 made its memos a rowid table for.
** - rows_are(n, expected, message) raises message unless n is expected:
**   a write that must touch so many rows fails its transaction on the
**   server when it does not, so the batch it is in is never committed.
** - updates, workers and work_items hold the updates several processes
**   share (store_pg_work.c):
**   updates(id, app_id, state: 0 listing, 1 listed, 2 finished,
**     started_ns, finished_ns, info: what the lead tells its workers)
**   workers(id, update_id, host, pid, started_ns, seen_at: its last beat,
**     left_at, by the server's clock; stats: JSON, what it leaves the
**     lead as it leaves (memo entries no longer used, containers
**     declared); done: how many items it marked done)
**   work_items(id, update_id, path, item (CBOR), state: 0 open, 1 run
**     but not done (its worker's end finishes it), 2 done, worker_id:
**     NULL while ready, its claimant's once claimed; tries)
**     + a partial index of the open items
**   worker_counts(worker_id, name, n): what a worker's committed batches
**     did (components added, target states inserted, ...), added to in
**     each batch that records what it counts
** Nothing else refers to another table by a foreign key, as in SQLite.
**
** Version 3 (from 2): a claim sets only work_items.worker_id, which no
** index holds, and leaves the state as it is (2 had a claimed state, 1):
** so PostgreSQL updates the row in place (a heap-only tuple, in the room
** the table's fill factor leaves on each page) without a new entry in
** any index; the index of items by worker is gone, and workers.done
** counts what each worker marked done (tide show --workers read it off
** that index). A claim and a done mark each cost the server about 25 µs
** in 2, both writing every index of the table. The upgrade runs in one
** transaction when a writer opens a version 2 store.
**
** Version 4 (from 3): worker_counts. A worker used to leave its counts
** in workers.stats as it left: a worker killed left none, and one whose
** batch the server rolled back counted the components the others then
** ran again. Its counts now commit with its batches, and the lead adds
** up the table.
*/
#include <stdlib.h>
#include <string.h>

#include "store_pg.h"

#define FORMAT_NAME "tide-state"
/* The share of each work_items page filled by inserts: the rest is room
** for a claim's new row version on the same page. At 70 about half the
** claims found room (the old versions cannot be pruned while a worker's
** batch is open); at 50 all do. The items of an update are dropped when
** it finishes. */
#define WORK_FILL "50"
#define STR(x) #x
#define XSTR(x) STR(x)

/* Version 4's table. */
#define WORKER_COUNTS_SQL \
  "CREATE TABLE worker_counts(worker_id bigint NOT NULL," \
  " name bytea NOT NULL, n bigint NOT NULL, PRIMARY KEY(worker_id, name));"

static const char schema_sql[] =
  "CREATE TABLE meta(key text PRIMARY KEY, value text NOT NULL);"
  "CREATE TABLE apps(id bigserial PRIMARY KEY, name bytea NOT NULL UNIQUE,"
  " created_ns bigint NOT NULL);"
  "CREATE SEQUENCE component_ids;"
  "CREATE TABLE components(id bigint PRIMARY KEY"
  " DEFAULT nextval('component_ids'), app_id bigint NOT NULL,"
  " path bytea NOT NULL, parent_id bigint, fn_name bytea NOT NULL,"
  " logic_fp bytea, input_fp bytea, source_key bytea, state bytea,"
  " deps_fp bytea, status bigint NOT NULL DEFAULT 0, error bytea,"
  " updated_ns bigint, UNIQUE(app_id, path));"
  "CREATE TABLE memos(app_id bigint NOT NULL, key bytea NOT NULL,"
  " fn_name bytea NOT NULL, value bytea, deps bytea, targets bytea,"
  " updated_ns bigint, PRIMARY KEY(app_id, key));"
  "CREATE TABLE containers(id bigserial PRIMARY KEY,"
  " app_id bigint NOT NULL, kind bytea NOT NULL, identity bytea NOT NULL,"
  " spec bytea, schema_fp bytea, owner_id bigint,"
  " state bigint NOT NULL DEFAULT 0, UNIQUE(app_id, kind, identity));"
  "CREATE TABLE target_states(container_id bigint NOT NULL,"
  " key bytea NOT NULL, owner_id bigint NOT NULL, value_fp bytea,"
  " pending bigint NOT NULL DEFAULT 0, written_ns bigint,"
  " PRIMARY KEY(container_id, key));"
  "CREATE INDEX target_states_owner ON target_states(owner_id);"
  "CREATE INDEX target_states_pending ON target_states(container_id)"
  " WHERE pending <> 0;"
  "CREATE TABLE source_items(app_id bigint NOT NULL, source bytea NOT NULL,"
  " key bytea NOT NULL, size bigint, mtime_ns bigint, inode bigint,"
  " content_fp bytea, PRIMARY KEY(app_id, source, key));"
  "CREATE TABLE runs(id bigserial PRIMARY KEY, app_id bigint NOT NULL,"
  " started_ns bigint NOT NULL, finished_ns bigint, status bigint,"
  " stats bytea);"
  "CREATE INDEX runs_app ON runs(app_id, id);"
  "CREATE TABLE memo_refs(app_id bigint NOT NULL,"
  " component_id bigint NOT NULL, key bytea NOT NULL,"
  " PRIMARY KEY(component_id, key));"
  "CREATE INDEX memo_refs_key ON memo_refs(app_id, key);"
  "CREATE TABLE intents(id bigserial PRIMARY KEY, app_id bigint NOT NULL,"
  " container_id bigint NOT NULL, keys bytea NOT NULL);"
  "CREATE SEQUENCE generation;"
  "CREATE FUNCTION rows_are(n bigint, expected bigint, message text)"
  " RETURNS bigint LANGUAGE plpgsql AS $$ BEGIN IF n <> expected THEN"
  " RAISE EXCEPTION USING MESSAGE = message; END IF; RETURN n; END $$;"
  "CREATE TABLE updates(id bigserial PRIMARY KEY, app_id bigint NOT NULL,"
  " state bigint NOT NULL DEFAULT 0, started_ns bigint NOT NULL,"
  " finished_ns bigint, info bytea);"
  "CREATE TABLE workers(id bigserial PRIMARY KEY,"
  " update_id bigint NOT NULL, host bytea, pid bigint,"
  " started_ns bigint NOT NULL, seen_at timestamptz NOT NULL DEFAULT now(),"
  " left_at timestamptz, stats bytea, done bigint NOT NULL DEFAULT 0);"
  "CREATE INDEX workers_update ON workers(update_id);"
  "CREATE TABLE work_items(id bigserial PRIMARY KEY,"
  " update_id bigint NOT NULL, path bytea NOT NULL, item bytea,"
  " state bigint NOT NULL DEFAULT 0, worker_id bigint,"
  " tries bigint NOT NULL DEFAULT 0) WITH (fillfactor = " WORK_FILL ");"
  "CREATE INDEX work_items_open ON work_items(update_id, id)"
  " WHERE state < 2;"
  WORKER_COUNTS_SQL
  "INSERT INTO meta(key, value) VALUES"
  " ('format', '" FORMAT_NAME "'),"
  " ('version', '" XSTR(TIDE_STORE_PG_FORMAT_VERSION) "'),"
  " ('created_by', 'tide " TIDE_VERSION "');";

/* The tables and sequences a store has. */
static const char *const relations[] = {
  "meta", "apps", "components", "memos", "containers", "target_states",
  "source_items", "runs", "memo_refs", "intents", "component_ids",
  "generation", "updates", "workers", "work_items",
  "worker_counts", /* from version 4 */
};

static int not_a_store(PgStore *s) {
  return tide_pgs_fail(s, TIDE_ENOTSTORE, "%s: not a tide state store "
                       "(schema %s holds other tables)", s->location,
                       s->schema);
}

/* A query on the connection before its pipeline starts, with the
** schema's name as $1 when with_schema; NULL after setting the message. */
static PGresult *query(PgStore *s, const char *sql, int with_schema) {
  const char *values[1] = { s->schema };
  PGresult *r = PQexecParams(s->conn, sql, with_schema, NULL, values, NULL,
                             NULL, 0);
  if (PQresultStatus(r) == PGRES_TUPLES_OK) return r;
  tide_pgs_fail_pg(s, r, "cannot read the state store", "");
  PQclear(r);
  return NULL;
}

/* Runs sql (any number of statements) before the pipeline starts. */
static int run(PgStore *s, const char *sql, const char *what) {
  PGresult *r = PQexec(s->conn, sql);
  int rc = 0;
  if (PQresultStatus(r) != PGRES_COMMAND_OK)
    rc = tide_pgs_fail_pg(s, r, what, "");
  PQclear(r);
  return rc;
}

/* Reads meta's format and version; 0 when they match this tide. */
static int check_meta(PgStore *s) {
  PGresult *r = query(s, "SELECT key, value FROM meta"
                      " WHERE key IN ('format', 'version')", 0);
  int has_format = 0, has_version = 0, i;
  long version = 0;
  char *end;
  if (r == NULL) return TIDE_ESTORE;
  for (i = 0; i < PQntuples(r); i++) {
    const char *key = PQgetvalue(r, i, 0), *value = PQgetvalue(r, i, 1);
    if (strcmp(key, "format") == 0) {
      has_format = strcmp(value, FORMAT_NAME) == 0;
    } else {
      version = strtol(value, &end, 10);
      has_version = end != value && *end == '\0';
    }
  }
  PQclear(r);
  if (!has_format) return not_a_store(s);
  if (!has_version)
    return tide_pgs_fail(s, TIDE_ENOTSTORE, "%s: not a tide state store "
                         "(no valid format version)", s->location);
  if (version < TIDE_STORE_PG_FORMAT_OLDEST ||
      version > TIDE_STORE_PG_FORMAT_VERSION)
    return tide_pgs_fail(s, TIDE_EVERSION,
                         "%s: state store format version %ld is not "
                         "supported by this tide (supports %d to %d)",
                         s->location, version, TIDE_STORE_PG_FORMAT_OLDEST,
                         TIDE_STORE_PG_FORMAT_VERSION);
  if (version < TIDE_STORE_PG_FORMAT_VERSION && s->flags != TIDE_STORE_WRITE)
    return tide_pgs_fail(s, TIDE_EVERSION,
                         "%s: state store format version %ld is older than "
                         "this tide's (%d): an update with this tide "
                         "upgrades it", s->location, version,
                         TIDE_STORE_PG_FORMAT_VERSION);
  s->version = (int)version;
  return 0;
}

int tide_pgs_schema_check(PgStore *s) {
  PGresult *r = query(s, "SELECT c.relname FROM pg_class c"
                      " JOIN pg_namespace n ON n.oid = c.relnamespace"
                      " WHERE n.nspname = $1 AND c.relkind IN ('r', 'S')",
                      1);
  size_t i, found = 0;
  int n, j, has_meta = 0, rc;
  if (r == NULL) return TIDE_ESTORE;
  n = PQntuples(r);
  for (j = 0; j < n; j++) {
    const char *name = PQgetvalue(r, j, 0);
    if (strcmp(name, "meta") == 0) has_meta = 1;
    for (i = 0; i < sizeof relations / sizeof relations[0]; i++)
      if (strcmp(name, relations[i]) == 0) found++;
  }
  PQclear(r);
  if (n == 0) return 1;
  if (!has_meta) return not_a_store(s);
  if ((rc = check_meta(s)) != 0) return rc;
  /* A version 3 store lacks worker_counts until it is upgraded. */
  if (found != sizeof relations / sizeof relations[0] - (s->version < 4))
    return tide_pgs_fail(s, TIDE_ENOTSTORE, "%s: state store is damaged "
                         "(tables are missing)", s->location);
  return 0;
}

/* From version 2 to 3, in one transaction (the header says why): the
** claimed items (state 1) become open items that name their worker,
** each worker's done count is taken from its items, the items of
** finished updates go (version 2 kept them), and the index of items by
** worker goes. The fill factor applies to the pages written from now
** on. */
static const char upgrade_2_sql[] =
  "ALTER TABLE workers ADD COLUMN done bigint NOT NULL DEFAULT 0;"
  "UPDATE workers k SET done = (SELECT count(*) FROM work_items w"
  " WHERE w.worker_id = k.id AND w.state = 2);"
  "DELETE FROM work_items w USING updates u"
  " WHERE u.id = w.update_id AND u.state = 2;"
  "UPDATE work_items SET state = 0 WHERE state = 1;"
  "DROP INDEX work_items_worker;"
  "ALTER TABLE work_items SET (fillfactor = " WORK_FILL ");"
  "UPDATE meta SET value = '3' WHERE key = 'version';";

/* From version 3 to 4: the table of the workers' counts. */
static const char upgrade_3_sql[] =
  WORKER_COUNTS_SQL
  "UPDATE meta SET value = '4' WHERE key = 'version';";

int tide_pgs_schema_upgrade(PgStore *s) {
  const char *what = "cannot upgrade the state store";
  int rc;
  if (s->version == TIDE_STORE_PG_FORMAT_VERSION) return 0;
  if ((rc = run(s, "BEGIN", what)) != 0) return rc;
  /* Checked again inside the transaction: another tide may have
  ** upgraded it meanwhile. */
  if ((rc = tide_pgs_schema_check(s)) == 0 && s->version < 3)
    rc = run(s, upgrade_2_sql, what);
  if (rc == 0 && s->version < 4) rc = run(s, upgrade_3_sql, what);
  if (rc != 0 || (rc = run(s, "COMMIT", what)) != 0) {
    PQclear(PQexec(s->conn, "ROLLBACK"));
    return rc < 0 ? rc : tide_pgs_fail(s, TIDE_ESTORE, "%s: %s",
                                       s->location, what);
  }
  s->version = TIDE_STORE_PG_FORMAT_VERSION;
  return 0;
}

/* In one transaction, with the schema itself when missing; checked again
** inside it, so that nothing slips in between. */
int tide_pgs_schema_create(PgStore *s) {
  char sql[128];
  int rc;
  snprintf(sql, sizeof sql, "BEGIN; CREATE SCHEMA IF NOT EXISTS %s",
           s->schema);
  if ((rc = run(s, sql, "cannot create the schema")) != 0) {
    PQclear(PQexec(s->conn, "ROLLBACK"));
    return rc;
  }
  rc = tide_pgs_schema_check(s);
  if (rc == 1) rc = run(s, schema_sql, "cannot create the schema");
  if (rc < 0 || (rc = run(s, "COMMIT", "cannot create the schema")) != 0) {
    PQclear(PQexec(s->conn, "ROLLBACK"));
    return rc;
  }
  s->version = TIDE_STORE_PG_FORMAT_VERSION;
  return 0;
}
