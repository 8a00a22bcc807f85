/*
** A worker's heartbeat on the PostgreSQL store (store.h,
** tide_store_beat_start): a thread with a connection of its own renews
** the worker's lease every interval, whatever the worker's own thread is
** doing (a component that computes, or waits on a model, for longer than
** the lease). The process dying ends the thread with it, so the lease of
** a dead worker still runs out.
*/
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "pq_api.h"
#include "store_pg.h"

struct tide_StoreBeat {
  tide_Alloc alloc;     /* the store's, used on its thread only */
  void *ud;
  size_t conninfo_size;
  uv_thread_t thread;
  uv_mutex_t lock;
  uv_cond_t wake;
  int stop;
  int interval_ms;
  char *conninfo;       /* owned: what libpq reads */
  char schema[TIDE_PG_SCHEMA_SIZE];
  char worker[24];      /* the worker's id, as text */
};

static void ignore_notice(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

/* Beats every interval until told to stop; a connection lost is made
** again at the next beat. The first is an interval after the start: the
** worker's row was seen when it joined, and each claim beats too, so an
** update shorter than the interval never opens this connection. */
static void beat_thread(void *arg) {
  tide_StoreBeat *b = arg;
  PGconn *conn = NULL;
  char sql[160];
  const char *values[1];
  snprintf(sql, sizeof sql, "UPDATE %s.workers SET seen_at = now()"
           " WHERE id = $1::int8", b->schema);
  values[0] = b->worker;
  uv_mutex_lock(&b->lock);
  for (;;) {
    if (!b->stop)
      (void)uv_cond_timedwait(&b->wake, &b->lock,
                              (uint64_t)b->interval_ms * 1000000);
    if (b->stop) break;
    uv_mutex_unlock(&b->lock);
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
      if (conn) PQfinish(conn);
      conn = PQconnectdb(b->conninfo);
      if (conn) PQsetNoticeProcessor(conn, ignore_notice, NULL);
    }
    if (conn && PQstatus(conn) == CONNECTION_OK)
      PQclear(PQexecParams(conn, sql, 1, NULL, values, NULL, NULL, 0));
    uv_mutex_lock(&b->lock);
  }
  uv_mutex_unlock(&b->lock);
  if (conn) PQfinish(conn);
}

static void beat_free(tide_StoreBeat *b) {
  if (b->conninfo) b->alloc(b->ud, b->conninfo, b->conninfo_size, 0);
  b->alloc(b->ud, b, sizeof *b, 0);
}

int tide_pgs_beat_start(PgStore *s, int64_t worker_id, int interval_ms,
                        tide_StoreBeat **out) {
  tide_StoreBeat *b = s->base.alloc(s->base.ud, NULL, 0, sizeof *b);
  size_t size = strlen(s->conninfo) + 1;
  *out = NULL;
  if (b == NULL) return tide_pgs_fail(s, TIDE_ENOMEM, "out of memory");
  memset(b, 0, sizeof *b);
  b->alloc = s->base.alloc;
  b->ud = s->base.ud;
  if ((b->conninfo = b->alloc(b->ud, NULL, 0, size)) == NULL) {
    beat_free(b);
    return tide_pgs_fail(s, TIDE_ENOMEM, "out of memory");
  }
  b->conninfo_size = size;
  memcpy(b->conninfo, s->conninfo, size);
  memcpy(b->schema, s->schema, sizeof b->schema);
  snprintf(b->worker, sizeof b->worker, "%lld", (long long)worker_id);
  b->interval_ms = interval_ms > 0 ? interval_ms : 1000;
  if (uv_mutex_init(&b->lock) != 0) goto failed;
  if (uv_cond_init(&b->wake) != 0) {
    uv_mutex_destroy(&b->lock);
    goto failed;
  }
  if (uv_thread_create(&b->thread, beat_thread, b) != 0) {
    uv_cond_destroy(&b->wake);
    uv_mutex_destroy(&b->lock);
    goto failed;
  }
  *out = b;
  return 0;
failed:
  beat_free(b);
  return tide_pgs_fail(s, TIDE_EIO, "%s: cannot start the worker's "
                       "heartbeat", s->location);
}

void tide_store_beat_stop(tide_StoreBeat *b) {
  if (b == NULL) return;
  uv_mutex_lock(&b->lock);
  b->stop = 1;
  uv_cond_signal(&b->wake);
  uv_mutex_unlock(&b->lock);
  uv_thread_join(&b->thread);
  uv_cond_destroy(&b->wake);
  uv_mutex_destroy(&b->lock);
  beat_free(b);
}
