/*
** Claims whose answer the worker's loop waits for (store.h,
** tide_store_claim_send and tide_store_claim_read). A claim read as it is
** sent blocks the worker's loop for its round trip: meanwhile no timer
** fires and no answer is read, so every item the worker runs waits too
** (on this machine's busy local server, about a tenth of an I/O-bound
** worker's time; more over a network).
**
** Here the claim's first step (tide_pgs_claim_next_sql: the ready items
** after the last this store claimed, with the worker's beat) goes as
** tide_pgs_work_claim sends it, on the store's connection and committed
** with what the open batch holds, but its answer is read later
** (tide_pgs_write_commit_send): the caller waits for the socket, its
** tasks running meanwhile, then reads. A call of the store in between
** reads the answer first and keeps the result for the claim's read, so
** the pipeline stays in order. The last item claimed (claim_mark) is
** shared with tide_pgs_work_claim, which the caller runs when this finds
** no item (the items of workers whose lease ran out, and the count of
** open items).
*/
#include "store_pg.h"

static const char claim_what[] = "cannot claim work items";

const char tide_pgs_claim_next_sql[] =
  "WITH b AS (UPDATE workers SET seen_at = now() WHERE id = $2),"
  " c AS (SELECT id FROM work_items WHERE update_id = $1 AND state = 0"
  " AND worker_id IS NULL AND id > $4 ORDER BY update_id, id LIMIT $3"
  " FOR UPDATE SKIP LOCKED)"
  " UPDATE work_items w SET worker_id = $2, tries = tries + 1 FROM c"
  " WHERE w.id = c.id RETURNING w.id, w.path, w.item, w.tries";

/* The mark of the claims of update_id by worker_id. */
static int64_t mark_of(PgStore *s, int64_t update_id, int64_t worker_id) {
  if (s->claim_update != update_id || s->claim_worker != worker_id) {
    s->claim_update = update_id;
    s->claim_worker = worker_id;
    s->claim_mark = 0;
  }
  return s->claim_mark;
}

void tide_pgs_claim_params(PgStore *s, int64_t update_id, int64_t worker_id,
                           int max, PgParams *p) {
  p->n = 0;
  pg_param_int(p, update_id);
  pg_param_int(p, worker_id);
  pg_param_int(p, max);
  pg_param_int(p, mark_of(s, update_id, worker_id));
}

void tide_pgs_claim_advance(PgStore *s, const PGresult *r) {
  int i, n = PQntuples(r);
  for (i = 0; i < n; i++)
    if (pg_int(r, i, 0) > s->claim_mark) s->claim_mark = pg_int(r, i, 0);
}

int tide_pgs_claim_send(PgStore *s, int64_t update_id, int64_t worker_id,
                        int max) {
  PgParams p = {0};
  tide_pgs_claim_params(s, update_id, worker_id, max, &p);
  return tide_pgs_write_commit_send(s, PG_WORK_CLAIM_NEXT,
                                    tide_pgs_claim_next_sql, &p,
                                    claim_what);
}

int tide_pgs_claim_socket(PgStore *s) {
  return s->later ? -1 : tide_pgs_sent_socket(s); /* in, read by another */
}

int tide_pgs_claim_read(PgStore *s, tide_StoreWorkItemFn fn, void *arg,
                        int *count) {
  PGresult *r;
  int rc;
  *count = 0;
  if ((rc = tide_pgs_write_commit_read(s, claim_what, &r)) != 0) return rc;
  tide_pgs_claim_advance(s, r);
  *count = PQntuples(r);
  rc = tide_pgs_emit_work_items(r, fn, arg);
  PQclear(r);
  return rc;
}
