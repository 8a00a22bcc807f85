/*
** The SQLite store's queued writes and its writer thread (store_sqlite.h
** says what is queued, and why the order of the statements does not
** change).
**
** A queued write is a record in s->queue: a kind byte, then its fields,
** each an int64 or a byte string (a uint64 length, UINT64_MAX for NULL,
** then the bytes), in the order the kind's writer reads them. A record is
** appended whole or not at all.
**
** Ownership: s->queue, s->in_flight and the id counters belong to the
** loop's thread. tide_sqs_flush_send swaps the queue into s->sending and
** hands it to the writer thread, which runs it, commits and signals; until
** the loop's thread has waited for that (tide_sqs_sync, flush_wait), the
** connection, its statements, the batch fields and the message buffer are
** the writer's, and the loop's thread only appends to the new queue. The
** mutex hands them back and forth, so each side sees the other's writes.
** A thread that runs queued writes marks itself (running_queue): the
** store calls they make then do not sync again.
**
** Edge cases: a write that fails stops the queue there, rolls the batch
** back (its message kept) and drops the rest; so does a failed commit.
** The records after a failure are never run: the caller learns of it at
** its next call, as with the PostgreSQL store. When the writer thread
** cannot start, the batch is committed on the loop's thread instead.
** Signals are blocked on the writer thread: they belong to the loop's.
*/
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "store_sqlite.h"

enum {
  OP_COMPONENT = 1, /* c->id known or handed out: tide_sqs_component_insert */
  OP_TARGET,
  OP_SOURCE,
  OP_MEMO,
  OP_MEMO_REF,
  OP_INTENT,
  OP_INTENT_DELETE,
  OP_MEMO_REFS_CLEAR,
  OP_COMPONENT_HOLD
};

static _Thread_local int running_queue;

/* Room for any message of a failed write: the path twice (the store's,
** and SQLite's words about it) and the rest. */
#define WRITER_MSG_SIZE (2 * PATH_MAX + 512)

static const char out_of_memory[] = "out of memory";

/* ---- Records ---- */

static int put_i64(tide_Buf *b, int64_t v) {
  return tide_buf_append(b, &v, sizeof v);
}

static int put_bytes(tide_Buf *b, const void *p, size_t n) {
  uint64_t len = p ? (uint64_t)n : UINT64_MAX;
  if (tide_buf_append(b, &len, sizeof len)) return TIDE_ENOMEM;
  return p && n ? tide_buf_append(b, p, n) : 0;
}

static int put_fp(tide_Buf *b, const uint8_t *fp) {
  return put_bytes(b, fp, fp ? TIDE_FP_SIZE : 0);
}

typedef struct Reader {
  const uint8_t *p;
} Reader;

static int64_t get_i64(Reader *r) {
  int64_t v;
  memcpy(&v, r->p, sizeof v);
  r->p += sizeof v;
  return v;
}

/* A zero-length string keeps a non-NULL pointer: SQLite binds it as an
** empty value, and NULL as SQL NULL. */
static const void *get_bytes(Reader *r, size_t *n) {
  uint64_t len;
  const void *p = r->p + sizeof len;
  memcpy(&len, r->p, sizeof len);
  r->p += sizeof len;
  if (len == UINT64_MAX) {
    *n = 0;
    return NULL;
  }
  *n = (size_t)len;
  r->p += len;
  return p;
}

static const uint8_t *get_fp(Reader *r) {
  size_t n;
  return get_bytes(r, &n);
}

/* A record that could not be appended whole is taken back; the message
** is set only once the connection is the loop's thread's again. */
static int queue_failed(SqStore *s, size_t start) {
  s->queue.len = start;
  tide_sqs_sync(s);
  return tide_sqs_fail(s, TIDE_ENOMEM, "%s", out_of_memory);
}

/* Runs one record at r; 0 or the failure of its write. */
static int run_record(SqStore *s, Reader *r) {
  int kind = *r->p++;
  size_t n;
  switch (kind) {
  case OP_COMPONENT: {
    tide_StoreComponent c;
    memset(&c, 0, sizeof c);
    c.id = get_i64(r);
    c.app_id = get_i64(r);
    c.path = get_bytes(r, &c.path_len);
    c.parent_id = get_i64(r);
    c.fn_name = get_bytes(r, &c.fn_name_len);
    c.logic_fp = get_fp(r);
    c.input_fp = get_fp(r);
    c.source_key = get_bytes(r, &c.source_key_len);
    c.state = get_bytes(r, &c.state_len);
    c.status = (int)get_i64(r);
    c.error = get_bytes(r, &c.error_len);
    c.deps_fp = get_fp(r);
    return tide_sqs_component_insert(s, &c);
  }
  case OP_TARGET: {
    tide_StoreTarget t;
    memset(&t, 0, sizeof t);
    t.container_id = get_i64(r);
    t.key = get_bytes(r, &t.key_len);
    t.owner_id = get_i64(r);
    t.value_fp = get_fp(r);
    t.pending = (int)get_i64(r);
    t.written = (int)get_i64(r);
    return tide_sqs_target_put(s, &t);
  }
  case OP_SOURCE: {
    tide_StoreSourceItem item;
    item.app_id = get_i64(r);
    item.source = get_bytes(r, &item.source_len);
    item.key = get_bytes(r, &item.key_len);
    item.size = get_i64(r);
    item.mtime_ns = get_i64(r);
    item.inode = get_i64(r);
    item.content_fp = get_fp(r);
    return tide_sqs_source_put(s, &item);
  }
  case OP_MEMO: {
    tide_StoreMemo m;
    memset(&m, 0, sizeof m);
    m.app_id = get_i64(r);
    m.key = get_fp(r);
    m.fn_name = get_bytes(r, &m.fn_name_len);
    m.value = get_bytes(r, &m.value_len);
    m.deps = get_bytes(r, &m.deps_len);
    m.targets = get_bytes(r, &m.targets_len);
    return tide_sqs_memo_put(s, &m);
  }
  case OP_MEMO_REF: {
    int64_t app_id = get_i64(r), component_id = get_i64(r);
    return tide_sqs_memo_ref_add(s, app_id, component_id, get_fp(r));
  }
  case OP_INTENT: {
    int64_t id = get_i64(r), app_id = get_i64(r), container = get_i64(r);
    const void *keys = get_bytes(r, &n);
    return tide_sqs_intent_add(s, id, app_id, container, keys, n);
  }
  case OP_INTENT_DELETE:
    return tide_sqs_intent_delete(s, get_i64(r));
  case OP_MEMO_REFS_CLEAR:
    return tide_sqs_memo_refs_clear(s, get_i64(r));
  case OP_COMPONENT_HOLD:
    return tide_sqs_component_hold(s, get_i64(r));
  default:
    return tide_sqs_fail(s, TIDE_EINVAL, "%s: unknown queued write %d",
                         s->path, kind);
  }
}

/* Adds to the failure's message that its batch was rolled back, as
** tide_sqs_fail_db says when SQLite rolled it back itself. */
static int rolled_back(SqStore *s, int rc) {
  static const char note[] = " (the uncommitted batch was rolled back)";
  char msg[WRITER_MSG_SIZE];
  snprintf(msg, sizeof msg, "%s", s->base.errmsg);
  if (strstr(msg, note)) return rc;
  return tide_sqs_fail(s, rc, "%s%s", msg, note);
}

/* Runs the records of b in order, then commits when commit is set. A
** failure rolls the open batch back, keeping its message. */
static int run_queue(SqStore *s, tide_Buf *b, int commit) {
  Reader r;
  int rc = 0;
  r.p = b->data;
  running_queue = 1;
  /* An empty queue may have no buffer at all: a commit alone. */
  while (rc == 0 && b->len > 0 && r.p < b->data + b->len)
    rc = run_record(s, &r);
  if (rc == 0 && commit) rc = tide_sqs_flush(s);
  if (rc && s->base.in_batch) {
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    s->base.in_batch = 0;
    s->base.batch_writes = 0;
    rc = rolled_back(s, rc);
  }
  running_queue = 0;
  b->len = 0;
  return rc;
}

/* ---- The writer thread ---- */

/* The writer thread's job: the batch sent, and its commit. */
static int write_sent(void *arg) {
  SqStore *s = arg;
  return run_queue(s, &s->sending, 1);
}

void tide_sqs_writer_stop(SqStore *s) {
  tide_job_stop(&s->writer);
}

/* Keeps the failure of the batch sent last, with its message, for
** tide_sqs_flush_wait (until the next send); returns rc. */
static int keep_sent_failure(SqStore *s, int rc) {
  s->sent_rc = rc;
  s->sent_msg.len = 0;
  tide_buf_append(&s->sent_msg, s->base.errmsg, strlen(s->base.errmsg) + 1);
  return rc;
}

/* Waits for the batch in flight; its outcome. */
static int wait_writer(SqStore *s) {
  int rc;
  if (!s->in_flight) return 0;
  rc = tide_job_wait(&s->writer);
  s->in_flight = 0;
  tide_sqs_reader_end(s);
  s->base.msg_fixed = 0;
  tide_ckpt_poll(s->ckpt);
  return rc ? keep_sent_failure(s, rc) : 0;
}

/* ---- Syncing, sending, waiting ---- */

void tide_sqs_forget_ids(SqStore *s) {
  s->next_component_id = 0;
  s->next_intent_id = 0;
}

void tide_sqs_committed(SqStore *s) {
  if (running_queue) return;
  tide_ckpt_poll(s->ckpt);
  tide_sqs_reader_end(s);
}

int tide_sqs_running_queue(void) { return running_queue; }

void tide_sqs_batch_lost(SqStore *s) {
  size_t len = strlen(s->base.errmsg);
  char *kept = s->base.alloc(s->base.ud, NULL, 0, len + 1);
  s->base.batches_lost++;
  if (kept) memcpy(kept, s->base.errmsg, len + 1);
  tide_store_keep_lost(&s->base, kept);
}

/* After a failure: what was queued after it is dropped with its batch,
** which is lost (a failure of queued writes or of their commit rolls the
** batch back). */
static int failed(SqStore *s, int rc) {
  s->queue.len = 0;
  s->queued = 0;
  tide_sqs_forget_ids(s);
  if (rc) tide_sqs_batch_lost(s);
  return rc;
}

void tide_sqs_drop_queue(SqStore *s) {
  wait_writer(s);
  failed(s, 0);
}

int tide_sqs_sync(SqStore *s) {
  int rc;
  if (running_queue) return 0;
  if ((rc = wait_writer(s)) != 0) return failed(s, rc);
  if (s->queue.len == 0) return 0;
  s->queued = 0;
  if ((rc = run_queue(s, &s->queue, 0)) != 0) return failed(s, rc);
  return 0;
}

int tide_sqs_read_begin(SqStore *s) {
  if (running_queue || s->base.in_batch || s->flags != TIDE_STORE_WRITE ||
      s->lock_fd < 0)
    return 0;
  return tide_sqs_write_begin(s);
}

int64_t tide_sqs_batch_writes(const SqStore *s) {
  if (s->in_flight) return s->queued;
  return (s->base.in_batch ? s->base.batch_writes : 0) + s->queued;
}

int tide_sqs_flush_send(SqStore *s) {
  tide_Buf swap;
  int rc;
  if ((rc = wait_writer(s)) != 0) return failed(s, rc);
  s->sent_rc = 0;
  if (s->queue.len == 0 && !s->base.in_batch) return 0;
  /* The writer thread may write a message, never allocate: the host's
  ** allocator need not be thread-safe. */
  if (tide_store_msg_reserve(&s->base, WRITER_MSG_SIZE) != 0)
    return tide_sqs_flush(s);
  s->base.msg_fixed = 1;
  swap = s->sending;
  s->sending = s->queue;
  s->queue = swap;
  if (tide_job_send(&s->writer, write_sent, s) != 0) {
    /* No thread: committed here. */
    swap = s->queue;
    s->queue = s->sending;
    s->sending = swap;
    s->base.msg_fixed = 0;
    return tide_sqs_flush(s);
  }
  s->queued = 0;
  s->in_flight = 1;
  return 0;
}

int tide_sqs_flush_wait(SqStore *s) {
  int rc = wait_writer(s);
  if (rc) return failed(s, rc);
  if (s->sent_rc == 0) return 0;
  return tide_sqs_fail(s, s->sent_rc, "%s",
                       s->sent_msg.len ? (const char *)s->sent_msg.data
                                       : "cannot commit");
}

/* ---- Queueing ---- */

/* Reads the largest ids once nothing is queued or in flight. */
static int read_next_ids(SqStore *s) {
  static const struct {
    int slot;
    const char *sql;
  } max_ids[] = {
    {TIDE_STMT_COMPONENT_MAX_ID, "SELECT coalesce(max(id), 0) FROM components"},
    {TIDE_STMT_INTENT_MAX_ID, "SELECT coalesce(max(id), 0) FROM intents"},
  };
  int64_t next[2];
  size_t i;
  int rc = tide_sqs_sync(s);
  if (rc) return rc;
  for (i = 0; i < 2; i++) {
    sqlite3_stmt *st;
    if ((rc = tide_sqs_stmt(s, max_ids[i].slot, max_ids[i].sql, &st)) != 0)
      return rc;
    if (sqlite3_step(st) != SQLITE_ROW) {
      rc = tide_sqs_fail_db(s, "cannot read the largest id");
      sqlite3_reset(st);
      return rc ? rc : TIDE_EIO;
    }
    next[i] = sqlite3_column_int64(st, 0) + 1;
    sqlite3_reset(st);
  }
  s->next_component_id = next[0];
  s->next_intent_id = next[1];
  return 0;
}

/* Starts a record of kind at the queue's end, once the store is known to
** take writes (as a write run at once would check); *start is where it
** begins. 0, or the refusal. */
static int record_begin(SqStore *s, int kind, size_t *start) {
  int rc;
  if (s->flags != TIDE_STORE_WRITE && (rc = tide_sqs_write_begin(s)) != 0)
    return rc;
  *start = s->queue.len;
  if (tide_buf_push(&s->queue, (uint8_t)kind)) return queue_failed(s, *start);
  return 0;
}

/* Ends the record begun at start: counted when every field was appended,
** taken back when one was not. */
static int record_end(SqStore *s, size_t start, int incomplete) {
  if (incomplete) return queue_failed(s, start);
  s->queued++;
  return 0;
}

int tide_sqs_queue_component(SqStore *s, const tide_StoreComponent *c,
                             int64_t *id) {
  tide_Buf *b = &s->queue;
  size_t start;
  int64_t row_id = c->id;
  int rc;
  /* Read before the record begins: reading runs the queue. */
  if (row_id == TIDE_STORE_NEW_ID && s->next_component_id == 0 &&
      s->flags == TIDE_STORE_WRITE && (rc = read_next_ids(s)) != 0)
    return rc;
  if ((rc = record_begin(s, OP_COMPONENT, &start)) != 0) return rc;
  if (row_id == TIDE_STORE_NEW_ID) row_id = s->next_component_id++;
  rc = record_end(s, start,
                  put_i64(b, row_id) || put_i64(b, c->app_id) ||
                  put_bytes(b, c->path, c->path_len) ||
                  put_i64(b, c->parent_id) ||
                  put_bytes(b, c->fn_name, c->fn_name_len) ||
                  put_fp(b, c->logic_fp) || put_fp(b, c->input_fp) ||
                  put_bytes(b, c->source_key, c->source_key_len) ||
                  put_bytes(b, c->state, c->state_len) ||
                  put_i64(b, c->status) ||
                  put_bytes(b, c->error, c->error_len) ||
                  put_fp(b, c->deps_fp));
  if (rc == 0 && id) *id = row_id;
  return rc;
}

int tide_sqs_queue_target(SqStore *s, const tide_StoreTarget *t) {
  tide_Buf *b = &s->queue;
  size_t start;
  int rc = record_begin(s, OP_TARGET, &start);
  if (rc) return rc;
  return record_end(s, start,
                    put_i64(b, t->container_id) ||
                    put_bytes(b, t->key, t->key_len) ||
                    put_i64(b, t->owner_id) || put_fp(b, t->value_fp) ||
                    put_i64(b, t->pending) || put_i64(b, t->written));
}

int tide_sqs_queue_source(SqStore *s, const tide_StoreSourceItem *item) {
  tide_Buf *b = &s->queue;
  size_t start;
  int rc = record_begin(s, OP_SOURCE, &start);
  if (rc) return rc;
  return record_end(s, start,
                    put_i64(b, item->app_id) ||
                    put_bytes(b, item->source, item->source_len) ||
                    put_bytes(b, item->key, item->key_len) ||
                    put_i64(b, item->size) || put_i64(b, item->mtime_ns) ||
                    put_i64(b, item->inode) || put_fp(b, item->content_fp));
}

int tide_sqs_queue_memo(SqStore *s, const tide_StoreMemo *m) {
  tide_Buf *b = &s->queue;
  size_t start;
  int rc = record_begin(s, OP_MEMO, &start);
  if (rc) return rc;
  return record_end(s, start,
                    put_i64(b, m->app_id) || put_fp(b, m->key) ||
                    put_bytes(b, m->fn_name, m->fn_name_len) ||
                    put_bytes(b, m->value, m->value_len) ||
                    put_bytes(b, m->deps, m->deps_len) ||
                    put_bytes(b, m->targets, m->targets_len));
}

int tide_sqs_queue_memo_ref(SqStore *s, int64_t app_id, int64_t component_id,
                            const uint8_t *key) {
  tide_Buf *b = &s->queue;
  size_t start;
  int rc = record_begin(s, OP_MEMO_REF, &start);
  if (rc) return rc;
  return record_end(s, start, put_i64(b, app_id) ||
                                put_i64(b, component_id) || put_fp(b, key));
}

int tide_sqs_queue_memo_refs_clear(SqStore *s, int64_t component_id) {
  size_t start;
  int rc = record_begin(s, OP_MEMO_REFS_CLEAR, &start);
  if (rc) return rc;
  return record_end(s, start, put_i64(&s->queue, component_id));
}

int tide_sqs_queue_component_hold(SqStore *s, int64_t id) {
  size_t start;
  int rc = record_begin(s, OP_COMPONENT_HOLD, &start);
  if (rc) return rc;
  return record_end(s, start, put_i64(&s->queue, id));
}

int tide_sqs_queue_intent(SqStore *s, int64_t app_id, int64_t container_id,
                          const void *keys, size_t keys_len, int64_t *id) {
  tide_Buf *b = &s->queue;
  size_t start;
  int64_t intent_id;
  int rc;
  if (s->next_intent_id == 0 && s->flags == TIDE_STORE_WRITE &&
      (rc = read_next_ids(s)) != 0)
    return rc;
  if ((rc = record_begin(s, OP_INTENT, &start)) != 0) return rc;
  intent_id = s->next_intent_id++;
  rc = record_end(s, start,
                  put_i64(b, intent_id) || put_i64(b, app_id) ||
                  put_i64(b, container_id) || put_bytes(b, keys, keys_len));
  if (rc == 0 && id) *id = intent_id;
  return rc;
}

int tide_sqs_queue_intent_delete(SqStore *s, int64_t id) {
  size_t start;
  int rc = record_begin(s, OP_INTENT_DELETE, &start);
  if (rc) return rc;
  return record_end(s, start, put_i64(&s->queue, id));
}
