/*
** Shared updates on the PostgreSQL store (store.h): updates, work items
** and workers, in the tables store_pg_schema.c makes.
**
** A claim is one statement: it picks items no one holds, or held by a
** worker that left or whose last beat is older than the lease, locks
** them with FOR UPDATE SKIP LOCKED so that two workers claiming at once
** take different items without waiting for each other, and gives them to
** the claimer. Leases are measured by the server's clock, so workers on
** machines whose clocks differ agree. Marking an item done checks that
** the claimer still holds it: a worker whose lease ran out, and whose
** item another took, fails the batch that would record the component a
** second time, before any target is written: the check is the server's
** (rows_are, in the batch's set-based statement, store_pg_bulk.c), so
** the transaction is aborted there and never commits.
*/
#include <string.h>

#include "store_pg.h"

int tide_pgs_update_open(PgStore *s, int64_t app_id, int64_t *id) {
  PgParams p = {0}, old = {0};
  int rc;
  pg_param_int(&p, app_id);
  pg_param_int(&p, tide_store_now_ns());
  pg_param_int(&old, app_id);
  pg_param_int(&old, tide_store_now_ns());
  pg_param_int(&old, TIDE_STORE_LOG_KEPT - 1);
  /* An update left unfinished (its lead stopped) ends here, and its work
  ** items go as a finished one's do. The updates finished before it,
  ** beyond the latest TIDE_STORE_LOG_KEPT - 1 (the new one is the last),
  ** go with their workers and their counts: a row is changed by one part
  ** of the statement only (those it ends were not finished in its
  ** snapshot). */
  rc = tide_pgs_write(s, PG_UPDATE_CLOSE_OLD,
                      "WITH c AS (UPDATE updates SET state = 2,"
                      " finished_ns = $2 WHERE app_id = $1 AND state < 2"
                      " RETURNING id),"
                      " o AS (DELETE FROM updates WHERE app_id = $1"
                      " AND state = 2 AND id <= (SELECT id FROM updates"
                      " WHERE app_id = $1 ORDER BY id DESC OFFSET $3"
                      " LIMIT 1) RETURNING id),"
                      " w AS (DELETE FROM workers WHERE update_id IN"
                      " (SELECT id FROM o) RETURNING id),"
                      " k AS (DELETE FROM worker_counts WHERE worker_id IN"
                      " (SELECT id FROM w))"
                      " DELETE FROM work_items"
                      " WHERE update_id IN (SELECT id FROM c)",
                      &old, "cannot record an update");
  if (rc) return rc;
  return tide_pgs_write_returning(s, PG_UPDATE_OPEN,
                                  "INSERT INTO updates(app_id, started_ns)"
                                  " VALUES($1, $2) RETURNING id",
                                  &p, "cannot record an update", id);
}

int tide_pgs_update_set(PgStore *s, int64_t id, int state, const void *info,
                        size_t info_len) {
  PgParams p = {0};
  pg_param_int(&p, id);
  pg_param_int(&p, state);
  pg_param_int(&p, tide_store_now_ns());
  pg_param_bytes(&p, info, info_len);
  /* Opened to claims (listing, with info) or listed: the workers waiting
  ** for an update hear of it when it commits (NOTIFY on tide_SCHEMA, the
  ** update's id). Finished: its work items go (the workers' rows keep
  ** their counts), so the table holds the items of the updates under way
  ** only. */
  return tide_pgs_write(s, PG_UPDATE_SET,
                        "WITH u AS (UPDATE updates SET state = $2::int8,"
                        " finished_ns = CASE WHEN $2::int8 = 2"
                        " THEN $3::int8 END, info = coalesce($4, info)"
                        " WHERE id = $1 RETURNING id),"
                        " d AS (DELETE FROM work_items"
                        " WHERE update_id = $1 AND $2::int8 = 2)"
                        " SELECT pg_notify('tide_' || current_schema(),"
                        " id::text) FROM u WHERE $2::int8 = 1"
                        " OR ($2::int8 = 0 AND $4 IS NOT NULL)",
                        &p, "cannot record an update");
}

int tide_pgs_update_current(PgStore *s, int64_t app_id, int64_t *id,
                            int *state, const void **info,
                            size_t *info_len) {
  PGresult *r;
  PgParams p = {0};
  int rc;
  pg_param_int(&p, app_id);
  rc = tide_pgs_get(s, PG_UPDATE_CURRENT,
                    "SELECT id, state, info FROM updates WHERE app_id = $1"
                    " AND state < 2 ORDER BY id DESC LIMIT 1",
                    &p, "cannot read the updates", &r);
  if (rc) return rc;
  *id = pg_int(r, 0, 0);
  *state = (int)pg_int(r, 0, 1);
  *info = pg_bytes(r, 0, 2, info_len);
  return 0;
}

int tide_pgs_work_add(PgStore *s, int64_t update_id, const char *path,
                      size_t path_len, const void *item, size_t item_len) {
  PgCell row[3];
  memset(row, 0, sizeof row);
  row[0].i = update_id;
  row[1].null = path == NULL;
  row[1].p = path;
  row[1].len = path_len;
  row[2].null = item == NULL;
  row[2].p = item;
  row[2].len = item_len;
  return tide_pgs_bulk_row(s, PG_KIND_WORK, row);
}

int tide_pgs_worker_join(PgStore *s, int64_t update_id, const char *host,
                         size_t host_len, int64_t pid, int64_t *id) {
  PgParams p = {0};
  int rc;
  pg_param_int(&p, update_id);
  pg_param_bytes(&p, host, host_len);
  pg_param_int(&p, pid);
  pg_param_int(&p, tide_store_now_ns());
  rc = tide_pgs_write_returning(s, PG_WORKER_JOIN,
                                "INSERT INTO workers(update_id, host, pid,"
                                " started_ns) VALUES($1, $2, $3, $4)"
                                " RETURNING id",
                                &p, "cannot record a worker", id);
  return rc ? rc : tide_pgs_flush(s);
}

int tide_pgs_worker_beat(PgStore *s, int64_t worker_id) {
  PgParams p = {0};
  pg_param_int(&p, worker_id);
  return tide_pgs_write(s, PG_WORKER_BEAT,
                        "UPDATE workers SET seen_at = now() WHERE id = $1",
                        &p, "cannot renew a worker's lease");
}

int tide_pgs_emit_work_items(PGresult *r, tide_StoreWorkItemFn fn,
                             void *arg) {
  int i, n = PQntuples(r), rc = 0;
  for (i = 0; i < n && rc == 0; i++) {
    tide_StoreWorkItem w;
    w.id = pg_int(r, i, 0);
    w.path = pg_bytes(r, i, 1, &w.path_len);
    w.item = pg_bytes(r, i, 2, &w.item_len);
    w.tries = pg_int(r, i, 3);
    rc = fn(arg, &w);
  }
  return rc;
}

/* Claims in two steps, each committed with its claims: the ready items
** after the last this worker claimed (the items before are claimed or
** done, and a scan from the start would step over all of them, and over
** their dead versions, at every claim; store_pg_claim.c holds this step,
** which a worker's loop may also send and read later); then, only when
** there are none, any ready item and the items of workers whose lease ran
** out. A claim sets the worker and the tries, which no index holds, so
** the server updates the row in place (store_pg_schema.c). */
#define CLAIM_SET                                                          \
  " UPDATE work_items w SET worker_id = $2,"                               \
  " tries = tries + 1 FROM c WHERE w.id = c.id"                            \
  " RETURNING w.id, w.path, w.item, w.tries"

int tide_pgs_work_claim(PgStore *s, int64_t update_id, int64_t worker_id,
                        int max, int64_t lease_ms, tide_StoreWorkItemFn fn,
                        void *arg, int64_t *open) {
  const char *what = "cannot claim work items";
  PGresult *r;
  PgParams p = {0};
  int rc, n;
  tide_pgs_claim_params(s, update_id, worker_id, max, &p);
  /* Committed with the claim, in one round trip: until then other
  ** workers would wait on its locks, and a crash must not take claims
  ** with it unrecorded. */
  if ((rc = tide_pgs_write_commit(s, PG_WORK_CLAIM_NEXT,
                                  tide_pgs_claim_next_sql, &p, what,
                                  &r)) != 0)
    return rc;
  if (PQntuples(r) == 0) {
    PQclear(r);
    p.n = 3;
    pg_param_int(&p, lease_ms);
    if ((rc = tide_pgs_worker_beat(s, worker_id)) != 0 ||
        (rc = tide_pgs_write_commit(
           s, PG_WORK_CLAIM,
           "WITH c AS (SELECT w.id FROM work_items w"
           " WHERE w.update_id = $1 AND w.state = 0 AND (w.worker_id IS NULL"
           " OR (w.worker_id <> $2 AND NOT EXISTS (SELECT 1 FROM workers k"
           " WHERE k.id = w.worker_id AND k.left_at IS NULL"
           " AND k.seen_at > now() - $4::int8 * interval '1 millisecond')))"
           " ORDER BY w.update_id, w.id LIMIT $3 FOR UPDATE SKIP LOCKED)"
           CLAIM_SET,
           &p, what, &r)) != 0)
      return rc;
  }
  n = PQntuples(r);
  tide_pgs_claim_advance(s, r);
  rc = tide_pgs_emit_work_items(r, fn, arg);
  PQclear(r);
  if (open) *open = -1;
  if (rc || open == NULL || n > 0) return rc;
  return tide_pgs_work_open(s, update_id, open);
}

int tide_pgs_work_open(PgStore *s, int64_t update_id, int64_t *open) {
  PGresult *r;
  PgParams p = {0};
  int rc;
  pg_param_int(&p, update_id);
  if ((rc = tide_pgs_read(s, PG_WORK_OPEN,
                          "SELECT count(*) FROM work_items"
                          " WHERE update_id = $1 AND state = 0",
                          &p, "cannot count work items", &r)) != 0)
    return rc;
  *open = pg_int(r, 0, 0);
  PQclear(r);
  return 0;
}

int tide_pgs_workers_alive(PgStore *s, int64_t update_id, int64_t lease_ms,
                           int64_t *alive) {
  PGresult *r;
  PgParams p = {0};
  int rc;
  pg_param_int(&p, update_id);
  pg_param_int(&p, lease_ms);
  /* Only the workers' rows: the lead asks this often while it waits. */
  if ((rc = tide_pgs_read(s, PG_WORKERS_ALIVE,
                          "SELECT count(*) FROM workers WHERE update_id = $1"
                          " AND left_at IS NULL"
                          " AND seen_at > now() - $2::int8"
                          " * interval '1 millisecond'",
                          &p, "cannot count the workers", &r)) != 0)
    return rc;
  *alive = pg_int(r, 0, 0);
  PQclear(r);
  return 0;
}

int tide_pgs_work_redo(PgStore *s, int64_t update_id, const char *path,
                       size_t path_len) {
  PgParams p = {0};
  pg_param_int(&p, update_id);
  pg_param_bytes(&p, path, path_len);
  return tide_pgs_write(s, PG_WORK_REDO,
                        "UPDATE work_items SET state = 0, worker_id = NULL"
                        " WHERE update_id = $1 AND path = $2",
                        &p, "cannot record a work item");
}

int tide_pgs_work_done(PgStore *s, int64_t item_id, int64_t worker_id,
                      int state) {
  PgCell row[3];
  memset(row, 0, sizeof row);
  row[0].i = item_id;
  row[1].i = worker_id;
  row[2].i = state;
  return tide_pgs_bulk_row(s, PG_KIND_DONE, row);
}

int tide_pgs_work_reopen(PgStore *s, int64_t update_id, int64_t *n) {
  PgParams p = {0};
  pg_param_int(&p, update_id);
  return tide_pgs_write_returning(s, PG_WORK_REOPEN,
                                  "WITH r AS (UPDATE work_items"
                                  " SET state = 0, worker_id = NULL"
                                  " WHERE update_id = $1 AND state = 1"
                                  " RETURNING 1) SELECT count(*) FROM r",
                                  &p, "cannot record a work item", n);
}

int tide_pgs_worker_leave(PgStore *s, int64_t worker_id, const char *stats,
                          size_t stats_len) {
  PgParams p = {0};
  int rc;
  pg_param_int(&p, worker_id);
  pg_param_bytes(&p, stats, stats_len);
  if ((rc = tide_pgs_write(s, PG_WORKER_LEAVE,
                           "WITH f AS (UPDATE work_items w SET"
                           " worker_id = NULL FROM workers k"
                           " WHERE k.id = $1 AND w.update_id = k.update_id"
                           " AND w.state = 0 AND w.worker_id = $1)"
                           " UPDATE workers SET left_at = now(),"
                           " stats = $2 WHERE id = $1",
                           &p, "cannot record a worker leaving")) != 0)
    return rc;
  return tide_pgs_flush(s);
}

static int emit_worker(const PGresult *r, int row, tide_StoreWorkerFn fn,
                       void *arg) {
  tide_StoreWorker w;
  w.id = pg_int(r, row, 0);
  w.update_id = pg_int(r, row, 1);
  w.host = pg_bytes(r, row, 2, &w.host_len);
  w.pid = pg_int(r, row, 3);
  w.claimed = pg_int(r, row, 4);
  w.done = pg_int(r, row, 5);
  w.seen_ms_ago = pg_int(r, row, 6);
  w.left = PQgetvalue(r, row, 7)[0] != 0;
  w.stats = pg_bytes(r, row, 8, &w.stats_len);
  return fn(arg, &w);
}

int tide_pgs_worker_each(PgStore *s, int64_t update_id,
                         tide_StoreWorkerFn fn, void *arg) {
  PGresult *r;
  PgParams p = {0};
  int rc, i, n;
  pg_param_int(&p, update_id);
  rc = tide_pgs_read(s, PG_WORKER_EACH,
                     "SELECT k.id, k.update_id, k.host, k.pid,"
                     " (SELECT count(*) FROM work_items w"
                     " WHERE w.update_id = k.update_id AND w.state = 0"
                     " AND w.worker_id = k.id), k.done,"
                     " (extract(epoch FROM now() - k.seen_at) * 1000)::int8,"
                     " k.left_at IS NOT NULL, k.stats"
                     " FROM workers k WHERE k.update_id = $1 ORDER BY k.id",
                     &p, "cannot list the workers", &r);
  if (rc) return rc;
  n = PQntuples(r);
  for (i = 0; i < n && rc == 0; i++) rc = emit_worker(r, i, fn, arg);
  PQclear(r);
  return rc;
}

int tide_pgs_worker_count(PgStore *s, int64_t worker_id, const char *name,
                          size_t name_len, int64_t n) {
  PgCell row[3];
  memset(row, 0, sizeof row);
  row[0].i = worker_id;
  row[1].p = name;
  row[1].len = name_len;
  row[2].i = n;
  return tide_pgs_bulk_row(s, PG_KIND_COUNTS, row);
}

int tide_pgs_worker_counts(PgStore *s, int64_t update_id,
                           tide_StoreCountFn fn, void *arg) {
  PGresult *r;
  PgParams p = {0};
  int rc, i, n;
  const char *name;
  size_t len;
  pg_param_int(&p, update_id);
  rc = tide_pgs_read(s, PG_WORKER_COUNTS,
                     "SELECT c.worker_id, c.name, c.n FROM worker_counts c"
                     " JOIN workers k ON k.id = c.worker_id"
                     " WHERE k.update_id = $1 ORDER BY c.worker_id, c.name",
                     &p, "cannot read the workers' counts", &r);
  if (rc) return rc;
  n = PQntuples(r);
  for (i = 0; i < n && rc == 0; i++) {
    name = pg_bytes(r, i, 1, &len);
    rc = fn(arg, pg_int(r, i, 0), name, len, pg_int(r, i, 2));
  }
  PQclear(r);
  return rc;
}
