/* Waiting for PostgreSQL notifications on a libuv loop (pg.h). */
#include <stdio.h>
#include <string.h>

#include "pg.h"
#include "pq_api.h"

static void handle_closed(uv_handle_t *h) {
  tide_PgListen *l = h->data;
  if (--l->handles == 0 && l->ended) l->done(l);
}

static void end(tide_PgListen *l) {
  if (l->ended) return;
  l->ended = 1;
  uv_poll_stop(&l->poll);
  uv_timer_stop(&l->timer);
  uv_close((uv_handle_t *)&l->poll, handle_closed);
  uv_close((uv_handle_t *)&l->timer, handle_closed);
}

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)status;
  (void)events;
  end(h->data);
}

static void on_timeout(uv_timer_t *h) {
  tide_PgListen *l = h->data;
  l->timed_out = 1;
  end(l);
}

int tide_pg_listen_start(tide_PgListen *l, uv_loop_t *loop, int timeout_ms) {
  int rc, fd = PQsocket(l->conn);
  l->ended = l->timed_out = 0;
  l->handles = 0;
  if (fd < 0) return UV_EBADF;
  if ((rc = uv_poll_init_socket(loop, &l->poll, fd)) != 0) return rc;
  l->poll.data = l;
  l->handles++;
  uv_timer_init(loop, &l->timer);
  l->timer.data = l;
  l->handles++;
  uv_poll_start(&l->poll, UV_READABLE | UV_DISCONNECT, on_readable);
  if (timeout_ms >= 0) {
    uv_update_time(loop); /* from now, not the loop's cached time */
    uv_timer_start(&l->timer, on_timeout, (uint64_t)timeout_ms, 0);
  }
  return 0;
}

void tide_pg_listen_cancel(tide_PgListen *l) { end(l); }

void tide_pg_listen_close(tide_PgListen *l) {
  if (l->conn) PQfinish(l->conn);
  l->conn = NULL;
}

/* libpq's message on three lines, as one: each run of newlines, tabs and
** spaces a single space. */
static void one_line(char *s) {
  char *from, *to = s;
  for (from = s; *from; from++) {
    int blank = *from == '\n' || *from == '\t' || *from == ' ';
    if (!blank) *to++ = *from;
    else if (to > s && to[-1] != ' ') *to++ = ' ';
  }
  while (to > s && to[-1] == ' ') to--;
  *to = '\0';
}

int tide_pg_listen_drain(void *conn, void (*each)(void *arg,
                         const char *payload), void *arg, char *out,
                         size_t size) {
  PGnotify *n;
  int ok = PQconsumeInput(conn) && PQstatus(conn) == CONNECTION_OK;
  /* What came before the connection was lost is still given. */
  while ((n = PQnotifies(conn)) != NULL) {
    each(arg, n->extra);
    PQfreemem(n);
  }
  if (!ok) {
    size_t len;
    snprintf(out, size, "%s", PQerrorMessage(conn));
    len = strlen(out);
    while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == ' '))
      out[--len] = '\0';
    if (len == 0) snprintf(out, size, "the connection was lost");
    one_line(out);
  }
  return ok;
}
