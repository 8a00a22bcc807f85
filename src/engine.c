/*
** The engine's session: its loop, store, index, counts and message (see
** engine.h). Nothing here runs Lua; lengine.c binds it and host.c makes
** the public API of it.
*/
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "engine.h"

char *tide_engine_path(tide_Engine *e, const char *dir, const char *path) {
  int join = dir && path[0] != '/';
  size_t dn = join ? strlen(dir) : 0, pn = strlen(path);
  /* Exactly strlen + 1: tide_engine_free_path gives back that size. */
  char *p = e->alloc(e->ud, NULL, 0, dn + join + pn + 1);
  if (p == NULL) return NULL;
  if (join) {
    memcpy(p, dir, dn);
    p[dn] = '/';
    memcpy(p + dn + 1, path, pn + 1);
  } else {
    memcpy(p, path, pn + 1);
  }
  return p;
}

void tide_engine_free_path(tide_Engine *e, char *p) {
  if (p) e->alloc(e->ud, p, strlen(p) + 1, 0);
}

int tide_engine_fail(tide_Engine *e, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof e->msg, fmt, ap);
  va_end(ap);
  return code;
}

int tide_engine_make(tide_Engine **out, lua_State *L, const char *base,
                     const char *db, uv_loop_t *loop, tide_Alloc alloc,
                     void *ud) {
  tide_Engine *e;
  int rc;
  *out = NULL;
  if (alloc == NULL) alloc = tide_alloc_default;
  e = alloc(ud, NULL, 0, sizeof *e);
  if (e == NULL) return TIDE_ENOMEM;
  memset(e, 0, sizeof *e);
  e->alloc = alloc;
  e->ud = ud;
  e->L = L;
  e->app_ref = -2; /* LUA_NOREF */
  *out = e;
  if (base == NULL || base[0] != '/')
    return tide_engine_fail(e, TIDE_EINVAL,
                            "the engine's base folder must be absolute");
  /* NULL: set later (tide_engine_load: beside the pipeline file). */
  if (db == NULL) db = "";
  e->base = tide_engine_path(e, NULL, base);
  /* A PostgreSQL store's location is not a path. */
  e->db = tide_engine_path(e, db[0] && !tide_store_is_postgres(db) ? base
                                                                   : NULL,
                           db);
  if (e->base == NULL || e->db == NULL)
    return tide_engine_fail(e, TIDE_ENOMEM, "out of memory");
  if (tide_index_new(&e->index, alloc, ud) != 0)
    return tide_engine_fail(e, TIDE_ENOMEM, "out of memory");
  if (loop) {
    e->loop = loop;
  } else {
    if ((rc = uv_loop_init(&e->own_loop)) != 0)
      return tide_engine_fail(e, TIDE_EIO, "cannot create the event loop: %s",
                              uv_strerror(rc));
    e->loop = &e->own_loop;
  }
  if (tide_sched_new(&e->sched, e->loop, alloc, ud) != 0)
    return tide_engine_fail(e, TIDE_ENOMEM, "out of memory");
  return 0;
}

static void close_handle(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

void tide_engine_destroy(tide_Engine *e) {
  if (e == NULL) return;
  /* An engine dropped during a cycle commits nothing of it. */
  if (e->in_cycle && e->store) tide_store_rollback(e->store);
  tide_store_close(e->store);
  tide_index_free(e->index);
  /* Before the loop closes: it cancels the waits left, whose handles are
  ** on the loop. */
  tide_sched_free(e->sched);
  if (e->loop == &e->own_loop) {
    uv_walk(e->loop, close_handle, NULL);
    uv_run(e->loop, UV_RUN_DEFAULT); /* lets the close callbacks run */
    uv_loop_close(e->loop);
  }
  tide_engine_free_path(e, e->base);
  tide_engine_free_path(e, e->db);
  e->alloc(e->ud, e, sizeof *e, 0);
}

const char *tide_engine_base(const tide_Engine *e) { return e->base; }
const char *tide_engine_db(const tide_Engine *e) { return e->db; }
uv_loop_t *tide_engine_loop(tide_Engine *e) { return e->loop; }
tide_Store *tide_engine_store(tide_Engine *e) { return e->store; }
tide_Index *tide_engine_index(tide_Engine *e) { return e->index; }
tide_Sched *tide_engine_sched(tide_Engine *e) { return e->sched; }
tide_Stats *tide_engine_stats_of(tide_Engine *e) { return &e->stats; }
int tide_engine_in_cycle(const tide_Engine *e) { return e->in_cycle; }
int tide_engine_owns_state(const tide_Engine *e) { return e->owns_state; }
lua_State *tide_engine_state(tide_Engine *e) { return e->L; }

/* A store that failed is closed, so that the next cycle opens it anew. */
static int store_failed(tide_Engine *e, int rc) {
  tide_engine_fail(e, rc, "%s", tide_store_errmsg(e->store));
  /* A load on the index's thread ends first (it falls back on this
  ** store), and the next cycle reads the new one whole. */
  tide_index_cool(e->index);
  tide_store_close(e->store);
  e->store = NULL;
  return rc;
}

int tide_engine_cycle_begin(tide_Engine *e, int *reopened) {
  int rc, changed = 0;
  *reopened = 0;
  if (e->in_cycle)
    return tide_engine_fail(e, TIDE_EINVAL, "an update of this app is "
                            "already running: a component's code called "
                            "update, or a live cycle is under way (a step "
                            "gave back before its end; update between "
                            "cycles, or stop live mode first)");
  if (e->store != NULL &&
      (rc = tide_store_relock(e->store, &changed)) != 0) {
    /* Locked by another process: the connection stays for next time. */
    if (rc == TIDE_ELOCKED)
      return tide_engine_fail(e, rc, "%s", tide_store_errmsg(e->store));
    /* Any other failure (a PostgreSQL store's connection cut by a server
    ** restart): the store is opened anew, as by a first cycle. */
    tide_index_cool(e->index);
    tide_store_close(e->store);
    e->store = NULL;
  }
  if (e->store == NULL) {
    /* A worker of an update another process runs writes without the
    ** writer lock, which that process holds. */
    rc = tide_store_open(&e->store, e->db,
                         e->shared ? TIDE_STORE_SHARED : TIDE_STORE_WRITE,
                         e->alloc, e->ud);
    if (rc) {
      if (e->store == NULL) return tide_engine_fail(e, rc, "out of memory");
      return store_failed(e, rc);
    }
    /* Commits never wait for the disk: checkpoints run on the pool. */
    if ((rc = tide_store_checkpoint_on(e->store, e->loop)) != 0)
      return store_failed(e, rc);
    *reopened = 1;
  }
  /* Other processes write a shared update's store without taking the
  ** lock: what a worker kept of it is stale at every cycle (its index,
  ** scoped, is read anew under the items it claims). */
  if (changed || e->shared) *reopened = 1;
  tide_store_set_batch_limits(e->store, 0, 0);
  e->in_cycle = 1;
  e->msg[0] = '\0';
  return 0;
}

int tide_engine_cycle_end(tide_Engine *e) {
  int rc = 0;
  int64_t freed;
  if (!e->in_cycle) return 0;
  e->in_cycle = 0;
  e->stats.cycles++;
  /* A cycle that deleted much leaves free pages: given back while the
  ** writer lock is still held, so that the store's size tracks what it
  ** holds (tide_store_reclaim does nothing below its thresholds). Its
  ** failure (a full disk) loses nothing: the cycle is committed and the
  ** pages stay free for the next one. */
  if (e->store && (rc = tide_store_flush(e->store)) == 0) {
    tide_store_reclaim(e->store, &freed);
    rc = tide_store_unlock(e->store);
  }
  if (rc != 0) return store_failed(e, rc);
  return 0;
}
