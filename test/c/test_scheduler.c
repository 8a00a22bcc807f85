/* C tests of the scheduler's core: the ready queue, anchors and waits, on
** a real libuv loop and timers. */
#include <stdlib.h>

#include "buf.h"
#include "check.h"
#include "scheduler.h"

static void test_queue_order_and_growth(void) {
  uv_loop_t loop;
  tide_Sched *s;
  int i;
  CHECK_EQ_INT(uv_loop_init(&loop), 0);
  CHECK_EQ_INT(tide_sched_new(&s, &loop, tide_alloc_default, NULL), 0);
  CHECK_EQ_INT(tide_sched_pop(s), 0);
  /* Wrap the ring around before it grows: its order must survive. */
  for (i = 1; i <= 200; i++) CHECK_EQ_INT(tide_sched_push(s, i), 0);
  for (i = 1; i <= 150; i++) CHECK_EQ_INT(tide_sched_pop(s), i);
  for (i = 201; i <= 1000; i++) CHECK_EQ_INT(tide_sched_push(s, i), 0);
  CHECK_EQ_INT(tide_sched_ready(s), 850);
  CHECK_EQ_INT(tide_sched_push_front(s, 7), 0);
  CHECK_EQ_INT(tide_sched_pop(s), 7);
  for (i = 151; i <= 1000; i++) CHECK_EQ_INT(tide_sched_pop(s), i);
  CHECK_EQ_INT(tide_sched_pop(s), 0);
  /* push_front on an empty ring, then the back. */
  CHECK_EQ_INT(tide_sched_push_front(s, 3), 0);
  CHECK_EQ_INT(tide_sched_push(s, 4), 0);
  CHECK_EQ_INT(tide_sched_push_front(s, 2), 0);
  CHECK_EQ_INT(tide_sched_pop(s), 2);
  CHECK_EQ_INT(tide_sched_pop(s), 3);
  CHECK_EQ_INT(tide_sched_pop(s), 4);
  tide_sched_free(s);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

/* promote moves one anchor to the front across the ring's wrap, keeping
** the others' order, and leaves the queue alone for an anchor not in it. */
static void test_promote(void) {
  uv_loop_t loop;
  tide_Sched *s;
  int i;
  CHECK_EQ_INT(uv_loop_init(&loop), 0);
  CHECK_EQ_INT(tide_sched_new(&s, &loop, tide_alloc_default, NULL), 0);
  CHECK_EQ_INT(tide_sched_promote(s, 1), 0);
  for (i = 1; i <= 60; i++) CHECK_EQ_INT(tide_sched_push(s, i), 0);
  for (i = 1; i <= 50; i++) CHECK_EQ_INT(tide_sched_pop(s), i);
  for (i = 61; i <= 100; i++) CHECK_EQ_INT(tide_sched_push(s, i), 0);
  CHECK_EQ_INT(tide_sched_promote(s, 99), 1);
  CHECK_EQ_INT(tide_sched_promote(s, 5), 0);
  CHECK_EQ_INT(tide_sched_promote(s, 51), 1); /* back before 99 */
  CHECK_EQ_INT(tide_sched_promote(s, 51), 1); /* first already */
  CHECK_EQ_INT(tide_sched_ready(s), 50);
  CHECK_EQ_INT(tide_sched_pop(s), 51);
  CHECK_EQ_INT(tide_sched_pop(s), 99);
  for (i = 52; i <= 98; i++) CHECK_EQ_INT(tide_sched_pop(s), i);
  CHECK_EQ_INT(tide_sched_pop(s), 100);
  CHECK_EQ_INT(tide_sched_pop(s), 0);
  tide_sched_free(s);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

static void test_anchors_are_reused(void) {
  uv_loop_t loop;
  tide_Sched *s;
  int a, b, c;
  CHECK_EQ_INT(uv_loop_init(&loop), 0);
  CHECK_EQ_INT(tide_sched_new(&s, &loop, tide_alloc_default, NULL), 0);
  a = tide_sched_anchor(s);
  b = tide_sched_anchor(s);
  CHECK(a > 0 && b > 0 && a != b);
  tide_sched_unanchor(s, a);
  c = tide_sched_anchor(s);
  CHECK_EQ_INT(c, a);
  tide_sched_reset(s);
  CHECK_EQ_INT(tide_sched_anchor(s), 1);
  tide_sched_free(s);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

/* A wait on a timer, as lwait.c's sleep makes one. */
typedef struct {
  tide_Wait w;
  uv_timer_t timer;
  int released, cancelled;
  int *freed;
} TimerWait;

static void timer_closed(uv_handle_t *h) {
  TimerWait *t = h->data;
  CHECK_EQ_INT(tide_wait_done(&t->w), 0);
}

static void timer_fired(uv_timer_t *h) {
  uv_close((uv_handle_t *)h, timer_closed);
}

static void timer_cancel(tide_Wait *w) {
  TimerWait *t = (TimerWait *)w;
  t->cancelled = 1;
  uv_close((uv_handle_t *)&t->timer, timer_closed);
}

static void timer_release(tide_Wait *w) {
  TimerWait *t = (TimerWait *)w;
  (*t->freed)++;
  free(t);
}

static TimerWait *timer_wait(tide_Sched *s, int anchor, uint64_t ms,
                             int *freed) {
  TimerWait *t = calloc(1, sizeof *t);
  t->w.cancel = timer_cancel;
  t->w.release = timer_release;
  t->freed = freed;
  uv_timer_init(tide_sched_loop(s), &t->timer);
  t->timer.data = t;
  uv_timer_start(&t->timer, timer_fired, ms, 0);
  tide_sched_wait_begin(s, &t->w, anchor);
  return t;
}

static void test_waits_queue_their_tasks_in_time_order(void) {
  uv_loop_t loop;
  tide_Sched *s;
  TimerWait *slow, *fast;
  int freed = 0;
  CHECK_EQ_INT(uv_loop_init(&loop), 0);
  CHECK_EQ_INT(tide_sched_new(&s, &loop, tide_alloc_default, NULL), 0);
  slow = timer_wait(s, 11, 30, &freed);
  fast = timer_wait(s, 12, 1, &freed);
  CHECK_EQ_INT(tide_sched_waiting(s), 2);
  while (tide_sched_ready(s) == 0) uv_run(&loop, UV_RUN_ONCE);
  CHECK_EQ_INT(tide_sched_pop(s), 12);
  CHECK(fast->w.done && !slow->w.done);
  tide_sched_wait_end(&fast->w);
  CHECK_EQ_INT(freed, 1);
  while (tide_sched_ready(s) == 0) uv_run(&loop, UV_RUN_ONCE);
  CHECK_EQ_INT(tide_sched_pop(s), 11);
  CHECK_EQ_INT(tide_sched_waiting(s), 0);
  tide_sched_wait_end(&slow->w);
  CHECK_EQ_INT(freed, 2);
  tide_sched_free(s);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

static void test_reset_cancels_and_releases_what_is_left(void) {
  uv_loop_t loop;
  tide_Sched *s;
  TimerWait *pending, *finished;
  int freed = 0;
  CHECK_EQ_INT(uv_loop_init(&loop), 0);
  CHECK_EQ_INT(tide_sched_new(&s, &loop, tide_alloc_default, NULL), 0);
  finished = timer_wait(s, 1, 0, &freed);
  pending = timer_wait(s, 2, 60000, &freed);
  while (!finished->w.done) uv_run(&loop, UV_RUN_ONCE);
  CHECK(!pending->w.done);
  /* One done and never taken back, one still waiting: both go, and the
  ** cancelled one's task is not queued. */
  tide_sched_reset(s);
  CHECK_EQ_INT(freed, 2);
  CHECK_EQ_INT(tide_sched_waiting(s), 0);
  CHECK_EQ_INT(tide_sched_ready(s), 0);
  CHECK_EQ_INT(uv_loop_alive(&loop), 0);
  /* And freeing a scheduler with a wait left closes its handle too. */
  timer_wait(s, 3, 60000, &freed);
  tide_sched_free(s);
  CHECK_EQ_INT(freed, 3);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

int main(void) {
  static const CheckTest tests[] = {
    {"queue order and growth", test_queue_order_and_growth},
    {"promote", test_promote},
    {"anchors are reused", test_anchors_are_reused},
    {"waits queue their tasks in time order",
     test_waits_queue_their_tasks_in_time_order},
    {"reset cancels and releases what is left",
     test_reset_cancels_and_releases_what_is_left},
    {NULL, NULL},
  };
  return check_run("scheduler", tests);
}
