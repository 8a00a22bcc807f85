/* The scheduler's C core (scheduler.h). */
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "scheduler.h"

struct tide_Sched {
  tide_Alloc alloc;
  void *ud;
  uv_loop_t *loop;
  int *ring;            /* the ready queue: cap slots from head, count used */
  size_t cap, head, count;
  int *free;            /* anchors given back, a stack */
  size_t nfree, free_cap;
  int top;              /* the highest anchor handed out */
  tide_Wait waits;      /* sentinel of the list of linked waits */
  size_t waiting;       /* linked and not done */
  tide_SchedCounts counts;
  uv_poll_t stop_watch; /* on the stop descriptor, once watched */
  int watching;
  tide_Http *http;      /* the session's HTTP client, made on first use */
};

int tide_sched_new(tide_Sched **out, uv_loop_t *loop, tide_Alloc alloc,
                   void *ud) {
  tide_Sched *s = alloc(ud, NULL, 0, sizeof *s);
  *out = NULL;
  if (s == NULL) return TIDE_ENOMEM;
  memset(s, 0, sizeof *s);
  s->alloc = alloc;
  s->ud = ud;
  s->loop = loop;
  s->waits.prev = s->waits.next = &s->waits;
  s->counts.max_inflight = 1024;
  *out = s;
  return 0;
}

/* Cancels the waits not done, runs the loop until their handles are
** closed (each then calls tide_wait_done), and releases every wait. */
static void drop_waits(tide_Sched *s) {
  tide_Wait *w;
  for (w = s->waits.next; w != &s->waits; w = w->next) {
    w->task = 0;
    if (!w->done) w->cancel(w);
  }
  while (s->waiting > 0 && uv_run(s->loop, UV_RUN_ONCE) != 0) {
  }
  while ((w = s->waits.next) != &s->waits) tide_sched_wait_end(w);
}

void tide_sched_reset(tide_Sched *s) {
  size_t max = s->counts.max_inflight;
  drop_waits(s);
  s->head = s->count = 0;
  s->nfree = 0;
  s->top = 0;
  memset(&s->counts, 0, sizeof s->counts);
  s->counts.max_inflight = max;
}

void tide_sched_free(tide_Sched *s) {
  if (s == NULL) return;
  drop_waits(s);
  tide_http_free(s->http); /* its handles close on the run below */
  if (s->watching) {
    /* Its memory is s's: closed before s is freed. */
    uv_close((uv_handle_t *)&s->stop_watch, NULL);
  }
  if (s->watching || s->http) uv_run(s->loop, UV_RUN_NOWAIT);
  s->alloc(s->ud, s->ring, s->cap * sizeof *s->ring, 0);
  s->alloc(s->ud, s->free, s->free_cap * sizeof *s->free, 0);
  s->alloc(s->ud, s, sizeof *s, 0);
}

uv_loop_t *tide_sched_loop(tide_Sched *s) { return s->loop; }

int tide_sched_http(tide_Sched *s, struct tide_Http **out) {
  int rc = 0;
  if (s->http == NULL) rc = tide_http_new(&s->http, s->loop, s->alloc, s->ud);
  *out = s->http;
  return rc;
}
tide_SchedCounts *tide_sched_counts(tide_Sched *s) { return &s->counts; }
size_t tide_sched_ready(const tide_Sched *s) { return s->count; }
size_t tide_sched_waiting(const tide_Sched *s) { return s->waiting; }

int tide_sched_anchor(tide_Sched *s) {
  if (s->nfree > 0) return s->free[--s->nfree];
  if (s->top == 0x7fffffff) return 0;
  return ++s->top;
}

void tide_sched_unanchor(tide_Sched *s, int anchor) {
  if (s->nfree == s->free_cap) {
    size_t cap = s->free_cap ? s->free_cap * 2 : 64;
    int *p = s->alloc(s->ud, s->free, s->free_cap * sizeof *p,
                      cap * sizeof *p);
    /* Out of memory: the number is not reused, which only wastes it. */
    if (p == NULL) return;
    s->free = p;
    s->free_cap = cap;
  }
  s->free[s->nfree++] = anchor;
}

/* Makes room for one more anchor in the ring, unrolling it into a ring
** twice as large. */
static int grow(tide_Sched *s) {
  size_t cap = s->cap ? s->cap * 2 : 256, i;
  int *p;
  if (s->count < s->cap) return 0;
  p = s->alloc(s->ud, NULL, 0, cap * sizeof *p);
  if (p == NULL) return TIDE_ENOMEM;
  for (i = 0; i < s->count; i++) p[i] = s->ring[(s->head + i) % s->cap];
  s->alloc(s->ud, s->ring, s->cap * sizeof *s->ring, 0);
  s->ring = p;
  s->cap = cap;
  s->head = 0;
  return 0;
}

int tide_sched_push(tide_Sched *s, int anchor) {
  if (grow(s) != 0) return TIDE_ENOMEM;
  s->ring[(s->head + s->count) % s->cap] = anchor;
  s->count++;
  return 0;
}

int tide_sched_push_front(tide_Sched *s, int anchor) {
  if (grow(s) != 0) return TIDE_ENOMEM;
  s->head = (s->head + s->cap - 1) % s->cap;
  s->ring[s->head] = anchor;
  s->count++;
  return 0;
}

int tide_sched_pop(tide_Sched *s) {
  int anchor;
  if (s->count == 0) return 0;
  anchor = s->ring[s->head];
  s->head = (s->head + 1) % s->cap;
  s->count--;
  return anchor;
}

int tide_sched_promote(tide_Sched *s, int anchor) {
  size_t k;
  for (k = 0; k < s->count; k++) {
    if (s->ring[(s->head + k) % s->cap] == anchor) break;
  }
  if (k == s->count) return 0;
  for (; k > 0; k--)
    s->ring[(s->head + k) % s->cap] = s->ring[(s->head + k - 1) % s->cap];
  s->ring[s->head] = anchor;
  return 1;
}

void tide_sched_wait_begin(tide_Sched *s, tide_Wait *w, int anchor) {
  w->sched = s;
  w->task = anchor;
  w->done = 0;
  w->next = &s->waits;
  w->prev = s->waits.prev;
  s->waits.prev->next = w;
  s->waits.prev = w;
  s->waiting++;
}

int tide_wait_done(tide_Wait *w) {
  tide_Sched *s = w->sched;
  if (w->done) return 0;
  w->done = 1;
  if (s == NULL) return 0;
  s->waiting--;
  /* A cancelled wait's task is not coming back: it is not queued. */
  if (w->task == 0) return 0;
  return tide_sched_push(s, w->task);
}

void tide_sched_wait_end(tide_Wait *w) {
  if (w->sched != NULL) {
    w->prev->next = w->next;
    w->next->prev = w->prev;
    w->sched = NULL;
  }
  w->release(w);
}

static void stop_readable(uv_poll_t *h, int status, int events) {
  char drain[64];
  uv_os_fd_t fd;
  (void)status;
  (void)events;
  if (uv_fileno((uv_handle_t *)h, &fd) != 0) return;
  while (read(fd, drain, sizeof drain) > 0) {
  }
}

int tide_sched_watch_stop(tide_Sched *s, int fd) {
  if (s->watching) return 0;
  if (uv_poll_init(s->loop, &s->stop_watch, fd) != 0) return TIDE_EIO;
  if (uv_poll_start(&s->stop_watch, UV_READABLE, stop_readable) != 0) {
    uv_close((uv_handle_t *)&s->stop_watch, NULL);
    uv_run(s->loop, UV_RUN_NOWAIT);
    return TIDE_EIO;
  }
  uv_unref((uv_handle_t *)&s->stop_watch);
  s->watching = 1;
  return 0;
}
