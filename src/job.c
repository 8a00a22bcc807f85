/* A thread that runs one job at a time (job.h). */
#include <signal.h>

#include "job.h"
#include "tide.h"

static void job_main(void *arg) {
  tide_Job *j = arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  uv_mutex_lock(&j->lock);
  for (;;) {
    while (!j->busy && !j->stop) uv_cond_wait(&j->wake, &j->lock);
    if (!j->busy) break;
    uv_mutex_unlock(&j->lock);
    {
      int rc = j->fn(j->arg);
      uv_mutex_lock(&j->lock);
      j->rc = rc;
    }
    j->busy = 0;
    uv_cond_signal(&j->idle);
  }
  uv_mutex_unlock(&j->lock);
}

static int job_start(tide_Job *j) {
  if (j->started) return 0;
  if (uv_mutex_init(&j->lock) != 0) return TIDE_ENOMEM;
  if (uv_cond_init(&j->wake) != 0) goto no_wake;
  if (uv_cond_init(&j->idle) != 0) goto no_idle;
  j->busy = j->stop = 0;
  if (uv_thread_create(&j->thread, job_main, j) != 0) goto no_thread;
  j->started = 1;
  return 0;
no_thread:
  uv_cond_destroy(&j->idle);
no_idle:
  uv_cond_destroy(&j->wake);
no_wake:
  uv_mutex_destroy(&j->lock);
  return TIDE_ENOMEM;
}

int tide_job_send(tide_Job *j, tide_JobFn fn, void *arg) {
  if (job_start(j) != 0) return TIDE_ENOMEM;
  tide_job_wait(j);
  uv_mutex_lock(&j->lock);
  j->fn = fn;
  j->arg = arg;
  j->rc = 0;
  j->busy = 1;
  uv_cond_signal(&j->wake);
  uv_mutex_unlock(&j->lock);
  return 0;
}

int tide_job_wait(tide_Job *j) {
  int rc;
  if (!j->started) return 0;
  uv_mutex_lock(&j->lock);
  while (j->busy) uv_cond_wait(&j->idle, &j->lock);
  rc = j->rc;
  j->rc = 0;
  uv_mutex_unlock(&j->lock);
  return rc;
}

void tide_job_stop(tide_Job *j) {
  if (!j->started) return;
  uv_mutex_lock(&j->lock);
  while (j->busy) uv_cond_wait(&j->idle, &j->lock);
  j->stop = 1;
  uv_cond_signal(&j->wake);
  uv_mutex_unlock(&j->lock);
  uv_thread_join(&j->thread);
  uv_cond_destroy(&j->idle);
  uv_cond_destroy(&j->wake);
  uv_mutex_destroy(&j->lock);
  j->started = 0;
}
