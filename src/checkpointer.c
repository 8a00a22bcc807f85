/* Checkpoints on libuv's thread pool (checkpointer.h). */
#include <string.h>

#include "checkpointer.h"

struct tide_Ckpt {
  uv_work_t req;
  uv_loop_t *loop;
  tide_Alloc alloc;
  void *ud;
  sqlite3 *writer;  /* NULL once detached */
  sqlite3 *own;     /* the pool's connection: used on the pool only */
  char *path;       /* owned */
  size_t path_size;
  int busy;         /* a checkpoint is queued or running */
  int pages;        /* the log's size after the last commit */
  int rc;           /* its outcome, written on the pool */
  int64_t done, failed;
};

static void ckpt_free(tide_Ckpt *c) {
  /* Closing the last connection checkpoints what is left. */
  if (c->own) sqlite3_close_v2(c->own);
  c->alloc(c->ud, c->path, c->path_size, 0);
  c->alloc(c->ud, c, sizeof *c, 0);
}

/* On a pool thread: nothing here touches the loop or the writer. */
static void ckpt_work(uv_work_t *req) {
  tide_Ckpt *c = req->data;
  if (c->own == NULL) {
    c->rc = sqlite3_open_v2(c->path, &c->own,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    /* A connection learns the database is in WAL mode when it first
    ** reads it; until then a checkpoint does nothing. */
    if (c->rc == SQLITE_OK)
      c->rc = sqlite3_exec(c->own, "SELECT 1 FROM sqlite_master LIMIT 1",
                           NULL, NULL, NULL);
    if (c->rc != SQLITE_OK) {
      sqlite3_close_v2(c->own);
      c->own = NULL;
      return;
    }
  }
  c->rc = sqlite3_wal_checkpoint_v2(c->own, "main", SQLITE_CHECKPOINT_PASSIVE,
                                    NULL, NULL);
}

static void ckpt_after(uv_work_t *req, int status) {
  tide_Ckpt *c = req->data;
  c->busy = 0;
  if (status == 0 && c->rc == SQLITE_OK)
    c->done++;
  else
    c->failed++;
  if (c->writer == NULL) ckpt_free(c);
}

/* The writer's WAL hook, after each of its commits, on the thread that
** committed: it only notes the log's size (tide_ckpt_poll acts on it). */
static int on_commit(void *arg, sqlite3 *db, const char *name, int pages) {
  tide_Ckpt *c = arg;
  (void)db;
  (void)name;
  c->pages = pages;
  return SQLITE_OK;
}

void tide_ckpt_poll(tide_Ckpt *c) {
  if (c == NULL || c->writer == NULL) return;
  if (c->pages >= TIDE_CKPT_PAGES && !c->busy) {
    c->busy = 1;
    c->pages = 0;
    if (uv_queue_work(c->loop, &c->req, ckpt_work, ckpt_after) != 0)
      c->busy = 0;
  }
}

int tide_ckpt_attach(tide_Ckpt **out, sqlite3 *db, const char *path,
                     uv_loop_t *loop, tide_Alloc alloc, void *ud) {
  size_t size = strlen(path) + 1;
  tide_Ckpt *c = alloc(ud, NULL, 0, sizeof *c);
  *out = NULL;
  if (c == NULL) return TIDE_ENOMEM;
  memset(c, 0, sizeof *c);
  c->path = alloc(ud, NULL, 0, size);
  if (c->path == NULL) {
    alloc(ud, c, sizeof *c, 0);
    return TIDE_ENOMEM;
  }
  memcpy(c->path, path, size);
  c->path_size = size;
  c->loop = loop;
  c->alloc = alloc;
  c->ud = ud;
  c->writer = db;
  c->req.data = c;
  /* Replaces SQLite's automatic checkpoint, which is a WAL hook too. */
  sqlite3_wal_hook(db, on_commit, c);
  *out = c;
  return 0;
}

void tide_ckpt_detach(tide_Ckpt *c) {
  if (c == NULL) return;
  /* The writer checkpoints itself again, as SQLite does by default. */
  sqlite3_wal_autocheckpoint(c->writer, TIDE_CKPT_PAGES);
  c->writer = NULL;
  if (!c->busy) ckpt_free(c);
}

int64_t tide_ckpt_done(const tide_Ckpt *c) { return c->done; }
int64_t tide_ckpt_failed(const tide_Ckpt *c) { return c->failed; }
