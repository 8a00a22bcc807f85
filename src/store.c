/*
** The state store's calls (store.h), each handed to the backend the store
** was opened with: PostgreSQL for a location that starts with
** postgresql:// or postgres://, or is a libpq keyword=value string,
** SQLite for any other (a file path). Both
** keep the same content under the same contract; store_backend.h says
** how a store says which it is.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"

#include "buf.h"
#include "store.h"
#include "store_backend.h"
#include "store_pg.h"
#include "store_sqlite.h"

static SqStore *sq(tide_Store *s) { return (SqStore *)s; }
static const SqStore *csq(const tide_Store *s) { return (const SqStore *)s; }
static PgStore *pg(tide_Store *s) { return (PgStore *)s; }
static const PgStore *cpg(const tide_Store *s) { return (const PgStore *)s; }

/* A libpq keyword=value string starts with a keyword (lowercase letters
** and underscores) and '=': "host=/run/postgresql dbname=docs". A SQLite
** file whose name starts so is named ./NAME. */
static int keyword_form(const char *p) {
  const char *word;
  while (*p == ' ' || *p == '\t') p++;
  for (word = p; (*p >= 'a' && *p <= 'z') || *p == '_'; p++) {}
  if (p == word) return 0;
  while (*p == ' ' || *p == '\t') p++;
  return *p == '=';
}

int tide_store_is_postgres(const char *location) {
  return location && (strncmp(location, "postgresql://", 13) == 0 ||
                      strncmp(location, "postgres://", 11) == 0 ||
                      keyword_form(location));
}

int tide_store_public_location(const char *location, char *out,
                               size_t size) {
  size_t len = strlen(location);
  char schema[TIDE_PG_SCHEMA_SIZE], *conninfo, *shown;
  const char *error = NULL;
  int rc;
  if (size == 0) return TIDE_EINVAL;
  if (!tide_store_is_postgres(location)) {
    snprintf(out, size, "%s", location);
    return 0;
  }
  conninfo = malloc(2 * (len + 1));
  if (conninfo == NULL) {
    snprintf(out, size, "out of memory");
    return TIDE_ENOMEM;
  }
  shown = conninfo + len + 1;
  rc = tide_pgs_split_location(location, conninfo, shown, schema, &error);
  snprintf(out, size, "%s", rc ? error : shown);
  free(conninfo);
  return rc;
}

/* ---- What every backend keeps alike: messages, clocks, batches ---- */

static const char out_of_memory[] = "out of memory";

int tide_store_failv(tide_Store *s, int code, const char *fmt, va_list ap) {
  va_list again;
  char *p;
  int n;
  va_copy(again, ap);
  n = vsnprintf(s->msg, s->msg_cap, fmt, ap);
  /* A fixed buffer keeps the message cut short. */
  if (n >= 0 && (size_t)n >= s->msg_cap && !s->msg_fixed) {
    p = s->alloc(s->ud, s->msg, s->msg_cap, (size_t)n + 1);
    if (p == NULL) {
      va_end(again);
      s->errmsg = code == TIDE_ENOMEM ? out_of_memory : tide_strerror(code);
      return code;
    }
    s->msg = p;
    s->msg_cap = (size_t)n + 1;
    vsnprintf(s->msg, s->msg_cap, fmt, again);
  }
  va_end(again);
  s->errmsg = n < 0 ? tide_strerror(code) : s->msg;
  return code;
}

int tide_store_msg_reserve(tide_Store *s, size_t size) {
  char *p;
  if (s->msg_cap >= size) return 0;
  p = s->alloc(s->ud, s->msg, s->msg_cap, size);
  if (p == NULL) return TIDE_ENOMEM;
  if (s->errmsg == s->msg) s->errmsg = p;
  if (s->msg_cap == 0) p[0] = '\0';
  s->msg = p;
  s->msg_cap = size;
  return 0;
}

void tide_store_base_close(tide_Store *s) {
  if (s->msg) s->alloc(s->ud, s->msg, s->msg_cap, 0);
  s->msg = NULL;
  s->msg_cap = 0;
  tide_store_keep_lost(s, NULL);
}

void tide_store_keep_lost(tide_Store *s, char *msg) {
  if (s->lost_msg)
    s->alloc(s->ud, s->lost_msg, strlen(s->lost_msg) + 1, 0);
  s->lost_msg = msg;
}

const char *tide_store_errmsg(const tide_Store *s) {
  return s ? s->errmsg : out_of_memory;
}

static int64_t clock_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t tide_store_monotonic_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
int64_t tide_store_now_ns(void) { return clock_ns(CLOCK_REALTIME); }

void tide_store_set_batch_limits(tide_Store *s, int64_t max_writes,
                                 int64_t max_ms) {
  s->max_batch_writes = max_writes > 0 ? max_writes : TIDE_STORE_BATCH_WRITES;
  s->max_batch_ms = max_ms > 0 ? max_ms : TIDE_STORE_BATCH_MS;
}

int64_t tide_store_batch_writes(const tide_Store *s) {
  if (s->backend == TIDE_STORE_SQLITE) return tide_sqs_batch_writes(csq(s));
  return s->in_batch ? s->batch_writes : 0;
}

int tide_store_holds_memo_lock(const tide_Store *s) {
  return s->backend == TIDE_STORE_POSTGRES && s->in_batch &&
         cpg(s)->memo_lock == PG_MEMOS_ALONE;
}

int tide_store_batch_due(const tide_Store *s) {
  return s->in_batch &&
         (s->batch_writes >= s->max_batch_writes ||
          tide_store_monotonic_ns() - s->batch_started_ns >=
            s->max_batch_ms * 1000000);
}

int tide_store_open(tide_Store **out, const char *path, int flags,
                    tide_Alloc alloc, void *ud) {
  SqStore *q = NULL;
  int rc;
  if (out == NULL) return TIDE_EINVAL;
  if (tide_store_is_postgres(path)) {
    PgStore *g = NULL;
    rc = tide_pgs_open(&g, path, flags, alloc, ud);
    *out = g ? &g->base : NULL;
    return rc;
  }
  rc = tide_sqs_open(&q, path, flags, alloc, ud);
  *out = q ? &q->base : NULL;
  return rc;
}

int tide_store_open_again(tide_Store **out, const tide_Store *s,
                          int flags) {
  const char *path;
  if (out == NULL) return TIDE_EINVAL;
  *out = NULL;
  if (s->backend == TIDE_STORE_POSTGRES) {
    PgStore *g = NULL;
    int rc = tide_pgs_open_again(&g, cpg(s), flags);
    *out = g ? &g->base : NULL;
    return rc;
  }
  path = tide_sqs_path(csq(s));
  if (path[0] != '/') return TIDE_EINVAL;
  return tide_store_open(out, path, flags, NULL, NULL);
}

int tide_store_close(tide_Store *s) {
  if (s == NULL) return 0;
  if (s->track) tide_buf_close(&s->written);
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_close(pg(s));
  return tide_sqs_close(sq(s));
}

const char *tide_store_path(const tide_Store *s) {
  if (s == NULL) return "";
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_path(cpg(s));
  return tide_sqs_path(csq(s));
}

int tide_store_unlock(tide_Store *s) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_unlock(pg(s));
  return tide_sqs_unlock(sq(s));
}

int tide_store_relock(tide_Store *s, int *changed) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_relock(pg(s), changed);
  return tide_sqs_relock(sq(s), changed);
}

int tide_store_checkpoint_on(tide_Store *s, uv_loop_t *loop) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_checkpoint_on(pg(s), loop);
  return tide_sqs_checkpoint_on(sq(s), loop);
}

/* ---- Notes of component writes (store.h), the same for every backend ---- */

void tide_store_track_components(tide_Store *s, int on) {
  if (on && !s->track) tide_buf_init(&s->written, s->alloc, s->ud);
  if (!on && s->track) tide_buf_close(&s->written);
  s->track = on;
  s->written_all = 0;
}

static void note_written(tide_Store *s, const char *path, size_t len,
                         int64_t id) {
  uint64_t n = path ? (uint64_t)len : UINT64_MAX;
  if (!s->track || s->written_all) return;
  /* Past this many, a whole load costs less than reading each again (and
  ** the notes of a cold run would hold every path). */
  if (s->written.len > TIDE_STORE_WRITTEN_MAX ||
      tide_buf_append(&s->written, &id, sizeof id) != 0 ||
      tide_buf_append(&s->written, &n, sizeof n) != 0 ||
      (path && tide_buf_append(&s->written, path, len) != 0)) {
    s->written_all = 1;
    tide_buf_close(&s->written);
    tide_buf_init(&s->written, s->alloc, s->ud);
  }
}

int tide_store_written(tide_Store *s, int *all, tide_StoreWrittenFn fn,
                       void *arg) {
  size_t at = 0;
  int rc = 0;
  *all = s->written_all;
  while (fn && s->track && !*all && rc == 0 && at < s->written.len) {
    int64_t id;
    uint64_t n;
    memcpy(&id, s->written.data + at, sizeof id);
    memcpy(&n, s->written.data + at + sizeof id, sizeof n);
    at += sizeof id + sizeof n;
    if (n == UINT64_MAX) {
      rc = fn(arg, NULL, 0, id);
    } else {
      rc = fn(arg, (const char *)s->written.data + at, (size_t)n, 0);
      at += (size_t)n;
    }
  }
  if (s->track) s->written.len = 0;
  s->written_all = 0;
  return rc;
}

/* ---- The rest, as each backend does it ---- */

int tide_store_flush(tide_Store *s) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_flush(pg(s));
  return tide_sqs_flush(sq(s));
}

int tide_store_flush_send(tide_Store *s) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_flush_send(pg(s));
  return tide_sqs_flush_send(sq(s));
}

int tide_store_flush_wait(tide_Store *s) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_flush_wait(pg(s));
  return tide_sqs_flush_wait(sq(s));
}

int tide_store_maybe_flush(tide_Store *s) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_maybe_flush(pg(s));
  return tide_sqs_maybe_flush(sq(s));
}

int tide_store_rollback(tide_Store *s) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_rollback(pg(s));
  return tide_sqs_rollback(sq(s));
}

int64_t tide_store_batches_lost(const tide_Store *s) {
  return s->batches_lost;
}

const char *tide_store_lost_message(const tide_Store *s) {
  return s->lost_msg;
}

int tide_store_space(tide_Store *s, tide_StoreSpace *space) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_space(pg(s), space);
  return tide_sqs_space(sq(s), space);
}

int tide_store_reclaim(tide_Store *s, int64_t *freed) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_reclaim(pg(s), freed);
  return tide_sqs_reclaim(sq(s), freed);
}

int tide_store_app_get_or_create(tide_Store *s, const char *name,
                                 size_t name_len, int64_t *id, int *created) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_app_get_or_create(pg(s), name, name_len, id, created);
  return tide_sqs_app_get_or_create(sq(s), name, name_len, id, created);
}

int tide_store_app_lookup(tide_Store *s, const char *name, size_t name_len,
                          tide_StoreApp *app) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_app_lookup(pg(s), name, name_len, app);
  return tide_sqs_app_lookup(sq(s), name, name_len, app);
}

int tide_store_app_each(tide_Store *s, tide_StoreAppFn fn, void *arg) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_app_each(pg(s), fn, arg);
  return tide_sqs_app_each(sq(s), fn, arg);
}

int tide_store_app_delete(tide_Store *s, int64_t app_id) {
  if (s->track) s->written_all = 1;
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_app_delete(pg(s), app_id);
  return tide_sqs_app_delete(sq(s), app_id);
}

int tide_store_component_put(tide_Store *s, const tide_StoreComponent *c,
                             int64_t *id) {
  note_written(s, c->path, c->path_len, 0);
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_component_put(pg(s), c, id);
  /* With an id the caller knows, nothing is read: the write is queued. */
  if (c->id != 0) return tide_sqs_queue_component(sq(s), c, id);
  return tide_sqs_component_put(sq(s), c, id);
}

int tide_store_component_get(tide_Store *s, int64_t app_id, const char *path,
                             size_t path_len, tide_StoreComponent *c) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_component_get(pg(s), app_id, path, path_len, c);
  return tide_sqs_component_get(sq(s), app_id, path, path_len, c);
}

int tide_store_component_delete(tide_Store *s, int64_t id) {
  note_written(s, NULL, 0, id);
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_component_delete(pg(s), id);
  return tide_sqs_component_delete(sq(s), id);
}

int tide_store_component_hold(tide_Store *s, int64_t id, const char *path,
                              size_t path_len) {
  note_written(s, path, path_len, id);
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_component_hold(pg(s), id);
  return tide_sqs_queue_component_hold(sq(s), id);
}

int tide_store_components_delete(tide_Store *s, const int64_t *ids,
                                 size_t n) {
  size_t i;
  int rc = 0;
  for (i = 0; i < n; i++) note_written(s, NULL, 0, ids[i]);
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_components_delete(pg(s), ids, n);
  /* Each a prepared statement run in process: one for all saves nothing. */
  for (i = 0; i < n && rc == 0; i++)
    rc = tide_sqs_component_delete(sq(s), ids[i]);
  return rc;
}

int tide_store_component_state(tide_Store *s, int64_t id, const void **state,
                               size_t *state_len) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_component_state(pg(s), id, state, state_len);
  return tide_sqs_component_state(sq(s), id, state, state_len);
}

int tide_store_component_path(tide_Store *s, int64_t id, const char **path,
                              size_t *path_len) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_component_path(pg(s), id, path, path_len);
  return tide_sqs_component_path(sq(s), id, path, path_len);
}

int tide_store_component_each(tide_Store *s, int64_t app_id,
                              tide_StoreComponentFn fn, void *arg) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_component_each(pg(s), app_id, fn, arg);
  return tide_sqs_component_each(sq(s), app_id, fn, arg);
}

int tide_store_component_each_brief(tide_Store *s, int64_t app_id,
                                    tide_StoreComponentFn fn, void *arg) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_component_each_brief(pg(s), app_id, fn, arg);
  return tide_sqs_component_each_brief(sq(s), app_id, fn, arg);
}

int tide_store_component_each_under(tide_Store *s, int64_t app_id,
                                    const char *const *paths,
                                    const size_t *lens, size_t n,
                                    tide_StoreComponentFn fn, void *arg) {
  if (n == 0) return 0;
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_component_each_under(pg(s), app_id, paths, lens, n, fn,
                                         arg);
  return tide_sqs_component_each_under(sq(s), app_id, paths, lens, n, fn,
                                       arg);
}

int tide_store_component_count(tide_Store *s, int64_t app_id, int64_t max,
                               int64_t *count) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_component_count(pg(s), app_id, max, count);
  return tide_sqs_component_count(sq(s), app_id, max, count);
}

int tide_store_memo_get(tide_Store *s, int64_t app_id, const uint8_t *key,
                        tide_StoreMemo *m) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_memo_get(pg(s), app_id, key, m);
  return tide_sqs_memo_get(sq(s), app_id, key, m);
}

int tide_store_memo_each_of(tide_Store *s, int64_t app_id,
                            const uint8_t *const *keys, size_t n,
                            tide_StoreMemoFn fn, void *arg) {
  size_t i;
  int rc = 0;
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_memo_each_of(pg(s), app_id, keys, n, fn, arg);
  for (i = 0; i < n && rc == 0; i++) {
    tide_StoreMemo m;
    /* A key given twice is answered once. */
    size_t j;
    for (j = 0; j < i; j++)
      if (memcmp(keys[j], keys[i], TIDE_FP_SIZE) == 0) break;
    if (j < i) continue;
    rc = tide_sqs_memo_get(sq(s), app_id, keys[i], &m);
    if (rc == TIDE_ENOTFOUND) rc = 0;
    else if (rc == 0) rc = fn(arg, &m);
  }
  return rc;
}

int tide_store_memo_put(tide_Store *s, const tide_StoreMemo *m) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_memo_put(pg(s), m);
  return tide_sqs_queue_memo(sq(s), m);
}

int tide_store_memo_delete(tide_Store *s, int64_t app_id, const uint8_t *key) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_memo_delete(pg(s), app_id, key);
  return tide_sqs_memo_delete(sq(s), app_id, key);
}

int tide_store_memo_each_key(tide_Store *s, int64_t app_id,
                             tide_StoreMemoKeyFn fn, void *arg) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_memo_each_key(pg(s), app_id, fn, arg);
  return tide_sqs_memo_each_key(sq(s), app_id, fn, arg);
}

int tide_store_memo_ref_add(tide_Store *s, int64_t app_id,
                            int64_t component_id, const uint8_t *key) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_memo_ref_add(pg(s), app_id, component_id, key);
  return tide_sqs_queue_memo_ref(sq(s), app_id, component_id, key);
}

int tide_store_memo_refs_each(tide_Store *s, int64_t component_id,
                              tide_StoreMemoRefFn fn, void *arg) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_memo_refs_each(pg(s), component_id, fn, arg);
  return tide_sqs_memo_refs_each(sq(s), component_id, fn, arg);
}

int tide_store_memo_refs_clear(tide_Store *s, int64_t component_id) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_memo_refs_clear(pg(s), component_id);
  return tide_sqs_queue_memo_refs_clear(sq(s), component_id);
}

int tide_store_memo_ref_exists(tide_Store *s, int64_t app_id,
                               const uint8_t *key, int *used) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_memo_ref_exists(pg(s), app_id, key, used);
  return tide_sqs_memo_ref_exists(sq(s), app_id, key, used);
}

typedef struct {
  tide_StoreComponentRefFn fn;
  void *arg;
  int64_t id;
} RefOf;

static int ref_of(void *arg, const uint8_t *key) {
  RefOf *r = arg;
  return r->fn(r->arg, r->id, key);
}

int tide_store_components_before(tide_Store *s, const int64_t *ids, size_t n,
                                 tide_StoreStateFn states,
                                 tide_StoreComponentRefFn refs, void *arg) {
  size_t i;
  int rc = 0;
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_components_before(pg(s), ids, n, states, refs, arg);
  /* A local file answers each at once. */
  for (i = 0; i < n && rc == 0 && states; i++) {
    const void *state;
    size_t len;
    rc = tide_sqs_component_state(sq(s), ids[i], &state, &len);
    if (rc == TIDE_ENOTFOUND) rc = 0;
    else if (rc == 0) rc = states(arg, ids[i], state, len);
  }
  for (i = 0; i < n && rc == 0 && refs; i++) {
    RefOf r;
    r.fn = refs;
    r.arg = arg;
    r.id = ids[i];
    rc = tide_sqs_memo_refs_each(sq(s), ids[i], ref_of, &r);
  }
  return rc;
}

int tide_store_memo_delete_unused(tide_Store *s, int64_t app_id,
                                  const uint8_t *keys, size_t n) {
  size_t i;
  int rc = 0, used;
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_memo_delete_unused(pg(s), app_id, keys, n);
  /* A local file answers each key at once. */
  for (i = 0; i < n && rc == 0; i++) {
    const uint8_t *key = keys + i * TIDE_FP_SIZE;
    rc = tide_sqs_memo_ref_exists(sq(s), app_id, key, &used);
    if (rc == 0 && !used) rc = tide_sqs_memo_delete(sq(s), app_id, key);
  }
  return rc;
}

int tide_store_memo_delete_unreferenced(tide_Store *s, int64_t app_id) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_memo_delete_unreferenced(pg(s), app_id);
  return tide_sqs_memo_delete_unreferenced(sq(s), app_id);
}

int tide_store_container_get_or_create(tide_Store *s, int64_t app_id,
                                       const char *kind, size_t kind_len,
                                       const char *identity,
                                       size_t identity_len, int64_t *id,
                                       int *created) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_container_get_or_create(pg(s), app_id, kind, kind_len,
                                            identity, identity_len, id,
                                            created);
  return tide_sqs_container_get_or_create(sq(s), app_id, kind, kind_len,
                                          identity, identity_len, id, created);
}

int tide_store_container_get(tide_Store *s, int64_t id,
                             tide_StoreContainer *c) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_container_get(pg(s), id, c);
  return tide_sqs_container_get(sq(s), id, c);
}

int tide_store_container_update(tide_Store *s, const tide_StoreContainer *c) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_container_update(pg(s), c);
  return tide_sqs_container_update(sq(s), c);
}

int tide_store_container_delete(tide_Store *s, int64_t id) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_container_delete(pg(s), id);
  return tide_sqs_container_delete(sq(s), id);
}

int tide_store_container_each(tide_Store *s, int64_t app_id,
                              tide_StoreContainerFn fn, void *arg) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_container_each(pg(s), app_id, fn, arg);
  return tide_sqs_container_each(sq(s), app_id, fn, arg);
}

int tide_store_target_put(tide_Store *s, const tide_StoreTarget *t) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_target_put(pg(s), t);
  return tide_sqs_queue_target(sq(s), t);
}

int tide_store_target_mark_applied(tide_Store *s, int64_t container_id,
                                   const void *key, size_t key_len) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_target_mark_applied(pg(s), container_id, key, key_len);
  return tide_sqs_target_mark_applied(sq(s), container_id, key, key_len);
}

int tide_store_targets_mark_applied(tide_Store *s, int64_t container_id) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_targets_mark_applied(pg(s), container_id);
  return tide_sqs_targets_mark_applied(sq(s), container_id);
}

int tide_store_target_delete(tide_Store *s, int64_t container_id,
                             const void *key, size_t key_len) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_target_delete(pg(s), container_id, key, key_len);
  return tide_sqs_target_delete(sq(s), container_id, key, key_len);
}

int tide_store_target_get(tide_Store *s, int64_t container_id, const void *key,
                          size_t key_len, tide_StoreTarget *t) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_target_get(pg(s), container_id, key, key_len, t);
  return tide_sqs_target_get(sq(s), container_id, key, key_len, t);
}

int tide_store_target_each_by_owner(tide_Store *s, int64_t owner_id,
                                    tide_StoreTargetFn fn, void *arg) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_target_each_by_owner(pg(s), owner_id, fn, arg);
  return tide_sqs_target_each_by_owner(sq(s), owner_id, fn, arg);
}

int tide_store_target_get_committed(tide_Store *s, int64_t container_id,
                                    const void *key, size_t key_len,
                                    tide_StoreTarget *t) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_target_get_committed(pg(s), container_id, key, key_len,
                                         t);
  return tide_sqs_target_get_committed(sq(s), container_id, key, key_len, t);
}

int tide_store_target_each_by_owner_committed(tide_Store *s,
                                              int64_t owner_id,
                                              tide_StoreTargetFn fn,
                                              void *arg) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_target_each_by_owner_committed(pg(s), owner_id, fn, arg);
  return tide_sqs_target_each_by_owner_committed(sq(s), owner_id, fn, arg);
}

int tide_store_target_each_by_container(tide_Store *s, int64_t container_id,
                                        tide_StoreTargetFn fn, void *arg) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_target_each_by_container(pg(s), container_id, fn, arg);
  return tide_sqs_target_each_by_container(sq(s), container_id, fn, arg);
}

int tide_store_target_each_by_owners(tide_Store *s, const int64_t *ids,
                                     size_t n, tide_StoreTargetFn fn,
                                     void *arg) {
  size_t i;
  int rc = 0;
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_target_each_by_owners(pg(s), ids, n, fn, arg);
  for (i = 0; i < n && rc == 0; i++)
    rc = tide_sqs_target_each_by_owner(sq(s), ids[i], fn, arg);
  return rc;
}

/* A key to read, sorted by its bytes for the answers' order. */
typedef struct {
  const char *key;
  size_t len;
} KeyRef;

static int compare_keys(const void *a, const void *b) {
  const KeyRef *x = a, *y = b;
  int c = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);
  return c ? c : (x->len > y->len) - (x->len < y->len);
}

int tide_store_target_each_of_keys(tide_Store *s, int64_t container_id,
                                   const char *const *keys,
                                   const size_t *lens, size_t n,
                                   int committed, tide_StoreTargetFn fn,
                                   void *arg) {
  KeyRef *order;
  size_t i;
  int rc = 0;
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_target_each_of_keys(pg(s), container_id, keys, lens, n,
                                        committed, fn, arg);
  if (n == 0) return 0;
  order = n <= SIZE_MAX / sizeof *order
    ? s->alloc(s->ud, NULL, 0, n * sizeof *order) : NULL;
  if (order == NULL) {
    s->errmsg = out_of_memory;
    return TIDE_ENOMEM;
  }
  for (i = 0; i < n; i++) {
    order[i].key = keys[i];
    order[i].len = lens[i];
  }
  qsort(order, n, sizeof *order, compare_keys);
  for (i = 0; i < n && rc == 0; i++) {
    tide_StoreTarget t;
    if (i > 0 && compare_keys(&order[i - 1], &order[i]) == 0) continue;
    rc = (committed ? tide_sqs_target_get_committed : tide_sqs_target_get)(
      sq(s), container_id, order[i].key, order[i].len, &t);
    if (rc == TIDE_ENOTFOUND) rc = 0;
    else if (rc == 0) rc = fn(arg, &t);
  }
  s->alloc(s->ud, order, n * sizeof *order, 0);
  return rc;
}

int tide_store_targets_read_ahead(tide_Store *s, const int64_t *ids,
                                  size_t n) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_ahead_read(pg(s), ids, n);
  return 0;
}

int tide_store_is_remote(const tide_Store *s) {
  return s->backend == TIDE_STORE_POSTGRES;
}

void tide_store_targets_forget_ahead(tide_Store *s) {
  if (s->backend == TIDE_STORE_POSTGRES) tide_pgs_ahead_forget(pg(s));
}

int tide_store_target_owner_each(tide_Store *s, int64_t container_id,
                                 int held_only, tide_StorePathFn fn,
                                 void *arg) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_target_owner_each(pg(s), container_id, held_only, fn,
                                      arg);
  return tide_sqs_target_owner_each(sq(s), container_id, held_only, fn, arg);
}

int tide_store_targets_mark_unknown(tide_Store *s, int64_t container_id) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_targets_mark_unknown(pg(s), container_id);
  return tide_sqs_targets_mark_unknown(sq(s), container_id);
}

int tide_store_target_each_pending(tide_Store *s, int64_t app_id,
                                   tide_StoreTargetFn fn, void *arg) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_target_each_pending(pg(s), app_id, fn, arg);
  return tide_sqs_target_each_pending(sq(s), app_id, fn, arg);
}

int tide_store_intent_add(tide_Store *s, int64_t app_id, int64_t container_id,
                          const void *keys, size_t keys_len, int64_t *id) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_intent_add(pg(s), app_id, container_id, keys, keys_len,
                               id);
  return tide_sqs_queue_intent(sq(s), app_id, container_id, keys, keys_len,
                               id);
}

int tide_store_intent_delete(tide_Store *s, int64_t id) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_intent_delete(pg(s), id);
  return tide_sqs_queue_intent_delete(sq(s), id);
}

int tide_store_intent_each(tide_Store *s, int64_t app_id,
                           tide_StoreIntentFn fn, void *arg) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_intent_each(pg(s), app_id, fn, arg);
  return tide_sqs_intent_each(sq(s), app_id, fn, arg);
}

int tide_store_source_get(tide_Store *s, int64_t app_id, const char *source,
                          size_t source_len, const char *key, size_t key_len,
                          tide_StoreSourceItem *item) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_source_get(pg(s), app_id, source, source_len, key, key_len,
                               item);
  return tide_sqs_source_get(sq(s), app_id, source, source_len, key, key_len,
                             item);
}

int tide_store_source_put(tide_Store *s, const tide_StoreSourceItem *item) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_source_put(pg(s), item);
  return tide_sqs_queue_source(sq(s), item);
}

int tide_store_source_delete(tide_Store *s, int64_t app_id, const char *source,
                             size_t source_len, const char *key,
                             size_t key_len) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_source_delete(pg(s), app_id, source, source_len, key,
                                  key_len);
  return tide_sqs_source_delete(sq(s), app_id, source, source_len, key,
                                key_len);
}

int tide_store_source_each(tide_Store *s, int64_t app_id, const char *source,
                           size_t source_len, tide_StoreSourceItemFn fn,
                           void *arg) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_source_each(pg(s), app_id, source, source_len, fn, arg);
  return tide_sqs_source_each(sq(s), app_id, source, source_len, fn, arg);
}

int tide_store_source_each_app(tide_Store *s, int64_t app_id,
                               tide_StoreSourceItemFn fn, void *arg) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_source_each_app(pg(s), app_id, fn, arg);
  return tide_sqs_source_each_app(sq(s), app_id, fn, arg);
}

int tide_store_run_begin(tide_Store *s, int64_t app_id, int64_t *run_id) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_run_begin(pg(s), app_id, run_id);
  return tide_sqs_run_begin(sq(s), app_id, run_id);
}

int tide_store_run_finish(tide_Store *s, int64_t run_id, int status,
                          const char *stats, size_t stats_len) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_run_finish(pg(s), run_id, status, stats, stats_len);
  return tide_sqs_run_finish(sq(s), run_id, status, stats, stats_len);
}

int tide_store_run_each_latest(tide_Store *s, int64_t app_id, int limit,
                               tide_StoreRunFn fn, void *arg) {
  if (s->backend == TIDE_STORE_POSTGRES)
    return tide_pgs_run_each_latest(pg(s), app_id, limit, fn, arg);
  return tide_sqs_run_each_latest(sq(s), app_id, limit, fn, arg);
}

/* ---- Shared updates: a PostgreSQL store's only ---- */

static int needs_postgres(tide_Store *s) {
  return tide_sqs_fail(sq(s), TIDE_EINVAL,
                       "%s: an update shared by workers needs a PostgreSQL "
                       "state store (--db postgresql://...)",
                       tide_sqs_path(csq(s)));
}

int tide_store_update_open(tide_Store *s, int64_t app_id, int64_t *id) {
  if (s->backend != TIDE_STORE_POSTGRES) return needs_postgres(s);
  return tide_pgs_update_open(pg(s), app_id, id);
}

int tide_store_update_set(tide_Store *s, int64_t id, int state,
                          const void *info, size_t info_len) {
  if (s->backend != TIDE_STORE_POSTGRES) return needs_postgres(s);
  return tide_pgs_update_set(pg(s), id, state, info, info_len);
}

int tide_store_update_current(tide_Store *s, int64_t app_id, int64_t *id,
                              int *state, const void **info,
                              size_t *info_len) {
  if (s->backend != TIDE_STORE_POSTGRES) return needs_postgres(s);
  return tide_pgs_update_current(pg(s), app_id, id, state, info, info_len);
}

int tide_store_work_add(tide_Store *s, int64_t update_id, const char *path,
                        size_t path_len, const void *item, size_t item_len) {
  if (s->backend != TIDE_STORE_POSTGRES) return needs_postgres(s);
  return tide_pgs_work_add(pg(s), update_id, path, path_len, item, item_len);
}

int tide_store_worker_join(tide_Store *s, int64_t update_id,
                           const char *host, size_t host_len, int64_t pid,
                           int64_t *id) {
  if (s->backend != TIDE_STORE_POSTGRES) return needs_postgres(s);
  return tide_pgs_worker_join(pg(s), update_id, host, host_len, pid, id);
}

int tide_store_worker_beat(tide_Store *s, int64_t worker_id) {
  if (s->backend != TIDE_STORE_POSTGRES) return needs_postgres(s);
  return tide_pgs_worker_beat(pg(s), worker_id);
}

int tide_store_work_claim(tide_Store *s, int64_t update_id,
                          int64_t worker_id, int max, int64_t lease_ms,
                          tide_StoreWorkItemFn fn, void *arg,
                          int64_t *open) {
  if (s->backend != TIDE_STORE_POSTGRES) return needs_postgres(s);
  return tide_pgs_work_claim(pg(s), update_id, worker_id, max, lease_ms, fn,
                             arg, open);
}

int tide_store_claim_send(tide_Store *s, int64_t update_id,
                          int64_t worker_id, int max) {
  if (s->backend != TIDE_STORE_POSTGRES) return needs_postgres(s);
  return tide_pgs_claim_send(pg(s), update_id, worker_id, max);
}

int tide_store_claim_socket(tide_Store *s) {
  return s->backend == TIDE_STORE_POSTGRES ? tide_pgs_claim_socket(pg(s))
                                           : -1;
}

int tide_store_claim_read(tide_Store *s, tide_StoreWorkItemFn fn, void *arg,
                          int *count) {
  *count = 0;
  if (s->backend != TIDE_STORE_POSTGRES) return needs_postgres(s);
  return tide_pgs_claim_read(pg(s), fn, arg, count);
}

int tide_store_beat_start(tide_Store *s, int64_t worker_id, int interval_ms,
                          tide_StoreBeat **out) {
  *out = NULL;
  if (s->backend != TIDE_STORE_POSTGRES) return needs_postgres(s);
  return tide_pgs_beat_start(pg(s), worker_id, interval_ms, out);
}

int tide_store_work_done(tide_Store *s, int64_t item_id, int64_t worker_id) {
  if (s->backend != TIDE_STORE_POSTGRES) return needs_postgres(s);
  return tide_pgs_work_done(pg(s), item_id, worker_id, 2);
}

int tide_store_work_ran(tide_Store *s, int64_t item_id, int64_t worker_id) {
  if (s->backend != TIDE_STORE_POSTGRES) return needs_postgres(s);
  return tide_pgs_work_done(pg(s), item_id, worker_id, 1);
}

int tide_store_work_reopen(tide_Store *s, int64_t update_id, int64_t *n) {
  if (s->backend != TIDE_STORE_POSTGRES) return needs_postgres(s);
  return tide_pgs_work_reopen(pg(s), update_id, n);
}

int tide_store_worker_leave(tide_Store *s, int64_t worker_id,
                            const char *stats, size_t stats_len) {
  if (s->backend != TIDE_STORE_POSTGRES) return needs_postgres(s);
  return tide_pgs_worker_leave(pg(s), worker_id, stats, stats_len);
}

int tide_store_work_open(tide_Store *s, int64_t update_id, int64_t *open) {
  if (s->backend != TIDE_STORE_POSTGRES) return needs_postgres(s);
  return tide_pgs_work_open(pg(s), update_id, open);
}

int tide_store_work_redo(tide_Store *s, int64_t update_id, const char *path,
                         size_t path_len) {
  if (s->backend != TIDE_STORE_POSTGRES) return needs_postgres(s);
  return tide_pgs_work_redo(pg(s), update_id, path, path_len);
}

int tide_store_workers_alive(tide_Store *s, int64_t update_id,
                             int64_t lease_ms, int64_t *alive) {
  if (s->backend != TIDE_STORE_POSTGRES) return needs_postgres(s);
  return tide_pgs_workers_alive(pg(s), update_id, lease_ms, alive);
}

int tide_store_worker_each(tide_Store *s, int64_t update_id,
                           tide_StoreWorkerFn fn, void *arg) {
  if (s->backend != TIDE_STORE_POSTGRES) return needs_postgres(s);
  return tide_pgs_worker_each(pg(s), update_id, fn, arg);
}

int tide_store_worker_count(tide_Store *s, int64_t worker_id,
                            const char *name, size_t name_len, int64_t n) {
  if (s->backend != TIDE_STORE_POSTGRES) return needs_postgres(s);
  return tide_pgs_worker_count(pg(s), worker_id, name, name_len, n);
}

int tide_store_worker_counts(tide_Store *s, int64_t update_id,
                             tide_StoreCountFn fn, void *arg) {
  if (s->backend != TIDE_STORE_POSTGRES) return needs_postgres(s);
  return tide_pgs_worker_counts(pg(s), update_id, fn, arg);
}
