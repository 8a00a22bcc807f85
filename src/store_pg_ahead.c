/*
** The states of owners read ahead on the PostgreSQL store (store.h,
** tide_store_targets_read_ahead): a component that runs again is diffed
** against the states it owned (lclaims.c, a committed read), one read
** each; the engine knows many such components before the first is diffed,
** and reads their states in one statement here.
**
** The algorithm: one statement returns the states of every owner asked
** for, ordered by owner, container and key (the order of a read by one
** owner); its result is kept, and a map takes each owner to the result
** and the row its states start at, or to AHEAD_NONE when it owns none.
** tide_pgs_ahead_take answers an owner from there once: its entry becomes
** AHEAD_USED, and the next read of that owner goes to the server. When no
** entry is left to take, the results are freed; tide_pgs_ahead_forget
** (the end of a run, a rollback, the store's close) frees them whatever is
** left.
**
** Edge cases: an owner asked for while its entry waits is not read again
** (what was read is as committed as a read now: the reads are committed
** reads, which may miss what was written since, store.h); one asked for
** again after it was taken is read again; an owner listed twice in one
** call is read once.
*/
#include <string.h>

#include "store_pg.h"

#define AHEAD_USED UINT64_MAX
#define AHEAD_NONE (UINT64_MAX - 1)

/* An entry: the result (its index + 1) in the high half, its first row in
** the low one. */
static uint64_t entry(size_t result, int row) {
  return ((uint64_t)(result + 1) << 32) | (uint32_t)row;
}

static int waiting(const uint64_t *v) {
  return v != NULL && *v != AHEAD_USED;
}

void tide_pgs_ahead_forget(PgStore *s) {
  size_t i;
  for (i = 0; i < s->ahead_count; i++) PQclear(s->ahead_results[i]);
  if (s->ahead_results)
    s->base.alloc(s->base.ud, s->ahead_results,
                  s->ahead_cap * sizeof *s->ahead_results, 0);
  s->ahead_results = NULL;
  s->ahead_count = s->ahead_cap = 0;
  s->ahead_left = 0;
  tide_hashmap_close(&s->ahead);
  tide_hashmap_init(&s->ahead, s->base.alloc, s->base.ud);
}

/* Room for one more result. */
static int grow_results(PgStore *s) {
  size_t cap = s->ahead_cap ? 2 * s->ahead_cap : 8;
  PGresult **r;
  if (s->ahead_count < s->ahead_cap) return 0;
  r = s->base.alloc(s->base.ud, s->ahead_results,
                    s->ahead_cap * sizeof *r, cap * sizeof *r);
  if (r == NULL) return TIDE_ENOMEM;
  s->ahead_results = r;
  s->ahead_cap = cap;
  return 0;
}

/* The owners not waiting already, as an int8[] literal in list; *n
** receives how many. */
static int owners_literal(PgStore *s, tide_Buf *list, const int64_t *ids,
                          size_t count, size_t *n) {
  char digits[24];
  size_t i;
  *n = 0;
  if (tide_buf_push(list, '{') != 0) return TIDE_ENOMEM;
  for (i = 0; i < count; i++) {
    int len;
    if (waiting(tide_hashmap_get_id(&s->ahead, (uint64_t)ids[i]))) continue;
    len = snprintf(digits, sizeof digits, "%s%lld", *n ? "," : "",
                   (long long)ids[i]);
    if (tide_buf_append(list, digits, (size_t)len) != 0) return TIDE_ENOMEM;
    (*n)++;
  }
  if (tide_buf_push(list, '}') != 0 || tide_buf_push(list, '\0') != 0)
    return TIDE_ENOMEM;
  return 0;
}

/* Puts value for the owner, counting a new waiting entry. */
static int put(PgStore *s, int64_t owner, uint64_t value) {
  if (!waiting(tide_hashmap_get_id(&s->ahead, (uint64_t)owner)))
    s->ahead_left++;
  return tide_hashmap_put_id(&s->ahead, (uint64_t)owner, value);
}

int tide_pgs_ahead_read(PgStore *s, const int64_t *ids, size_t count) {
  tide_Buf list;
  PgParams p;
  PGresult *r = NULL;
  size_t n, at, i;
  int rc, row, rows;
  if (count == 0) return 0;
  tide_buf_init(&list, s->base.alloc, s->base.ud);
  if (owners_literal(s, &list, ids, count, &n) != 0 || grow_results(s) != 0) {
    tide_buf_close(&list);
    return tide_pgs_fail(s, TIDE_ENOMEM, "out of memory");
  }
  if (n == 0) {
    tide_buf_close(&list);
    return 0;
  }
  memset(&p, 0, sizeof p);
  p.n = 1;
  p.values[0] = (const char *)list.data;
  rc = tide_pgs_read_apart(s, PG_TARGET_AHEAD,
                           "SELECT " TIDE_PG_TARGET_COLUMNS
                           " FROM target_states"
                           " WHERE owner_id = ANY($1::int8[])"
                           " ORDER BY owner_id, container_id, key",
                           &p, "cannot list the target states", &r);
  tide_buf_close(&list);
  if (rc) return rc;
  at = s->ahead_count++;
  s->ahead_results[at] = r;
  rows = PQntuples(r);
  for (row = 0; row < rows && rc == 0; row++) {
    int64_t owner = pg_int(r, row, 2);
    if (row == 0 || pg_int(r, row - 1, 2) != owner)
      rc = put(s, owner, entry(at, row));
  }
  /* The owners read that own nothing. */
  for (i = 0; i < count && rc == 0; i++) {
    const uint64_t *v = tide_hashmap_get_id(&s->ahead, (uint64_t)ids[i]);
    if (!waiting(v)) rc = put(s, ids[i], AHEAD_NONE);
  }
  if (rc) {
    tide_pgs_ahead_forget(s);
    return tide_pgs_fail(s, TIDE_ENOMEM, "out of memory");
  }
  return 0;
}

int tide_pgs_ahead_take(PgStore *s, int64_t owner, tide_StoreTargetFn fn,
                        void *arg, int *taken) {
  uint64_t *v = tide_hashmap_get_id(&s->ahead, (uint64_t)owner);
  uint64_t was;
  int rc = 0;
  *taken = 0;
  if (!waiting(v)) return 0;
  was = *v;
  *v = AHEAD_USED;
  *taken = 1;
  if (was != AHEAD_NONE) {
    const PGresult *r = s->ahead_results[(was >> 32) - 1];
    int row = (int)(uint32_t)was, rows = PQntuples(r);
    for (; row < rows && pg_int(r, row, 2) == owner && rc == 0; row++) {
      tide_StoreTarget t;
      tide_pgs_fill_target(r, row, &t);
      rc = fn(arg, &t);
    }
  }
  if (--s->ahead_left == 0) tide_pgs_ahead_forget(s);
  return rc;
}
