/*
** A host with its own frame loop that embeds tide: 60 frames a second,
** each doing the host's own work (here, printing the frame counter) and
** then giving tide a step of at most STEP_US (tide_engine_step), with the
** pipeline running live over a folder. A change to a file shows up in the
** target within a few frames; the host measures every frame and prints
** the longest one tide made, and the longest frame in all, when it ends
** (Ctrl-C, or after SECONDS). Usage: embed_host PIPELINE.lua [SECONDS]
** (see README.md).
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tide.h"

#define FRAME_US 16667L /* 60 frames a second */
#define STEP_US 1000L   /* tide's share of a frame */

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static long now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000L + t.tv_nsec / 1000L;
}

static int fail(tide_Engine *e, const char *what) {
  fprintf(stderr, "embed_host: %s: %s\n", what, tide_engine_errmsg(e));
  tide_engine_free(e);
  return 1;
}

int main(int argc, char **argv) {
  tide_EngineOptions opts = {0};
  tide_Engine *e;
  tide_Stats st;
  long seconds = argc > 2 ? atol(argv[2]) : 0, frames = 0, start, next;
  long worst_step = 0, worst_frame = 0, over = 0;
  int no_step;
  int64_t cycles = 0, started;
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: embed_host PIPELINE.lua [SECONDS]\n");
    return 2;
  }
  /* EMBED_NO_STEP=1 leaves tide's step out: the frames' own noise, the
  ** floor scripts/bench/bench_frames.sh measures tide's steps against. */
  no_step = getenv("EMBED_NO_STEP") && atoi(getenv("EMBED_NO_STEP")) == 1;
  opts.lua_dir = TIDE_LUA_DIR;
  if (tide_engine_new(&e, &opts) != 0) return fail(e, "cannot start tide");
  if (tide_engine_load(e, argv[1]) != 0) return fail(e, argv[1]);
  if (tide_engine_live_start(e) != 0) return fail(e, "catch-up");
  tide_engine_stats(e, &st);
  started = cycles = st.cycles;
  printf("caught up: %lld added, %lld unchanged; watching\n",
         (long long)st.components.added, (long long)st.components.unchanged);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  start = next = now_us();
  while (!stop && (seconds == 0 || now_us() - start < seconds * 1000000L)) {
    long t0 = now_us(), t1, t2, wait;
    /* The host's own work for this frame. */
    printf("\rframe %6ld", ++frames);
    fflush(stdout);
    t1 = now_us();
    if (!no_step && tide_engine_step(e, STEP_US) != 0)
      return fail(e, "live mode");
    t2 = now_us();
    tide_engine_stats(e, &st);
    if (t2 - t1 > worst_step) worst_step = t2 - t1;
    if (t2 - t1 > 4000) over++;
    if (t2 - t0 > worst_frame) worst_frame = t2 - t0;
    if (st.cycles != cycles) {
      cycles = st.cycles;
      printf("  cycle %lld: %lld added, %lld reprocessed, %lld deleted\n",
             (long long)cycles, (long long)st.components.added,
             (long long)st.components.reprocessed,
             (long long)st.components.deleted);
    }
    next += FRAME_US;
    wait = next - now_us();
    if (wait > 0) {
      struct timespec ts = {wait / 1000000L, (wait % 1000000L) * 1000L};
      nanosleep(&ts, NULL);
    }
  }
  if (tide_engine_live_stop(e) != 0) return fail(e, "stop");
  printf("\n%ld frames, %lld cycles; longest tide step %.2f ms, longest "
         "frame %.2f ms, %ld steps over 4 ms\n",
         frames, (long long)(cycles - started), worst_step / 1000.0,
         worst_frame / 1000.0, over);
  tide_engine_free(e);
  return 0;
}
