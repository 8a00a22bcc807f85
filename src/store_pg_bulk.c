/*
** Set-based writes of the PostgreSQL store (store_pg.h): the rows of the
** writes a batch makes by the thousand (components, target states, file
** states, work items recorded and done, a worker's counts) are kept here
** as they come, a column each, and sent as one statement per kind over
** arrays (unnest), before any other statement and before the pipeline is
** synchronised. So a batch costs the server one statement per kind
** instead of one per row.
**
** Order: rows of one kind keep theirs, and a key written twice in a batch
** is written once, with the last row's values (DISTINCT ON ... ORDER BY
** the row's number, descending); kinds go in a fixed order, which is
** safe because they write different tables, nothing reads in between,
** and every other statement sends the rows kept before it first. The
** two kinds of memo references write the same table: a component's are
** cleared before any is added, so a clear that comes after additions to
** the same component (tide_pgs_memo_refs_clear checks ref_owners) sends
** the rows kept first. A memo entry, a component's state and its memo
** references are read apart from the rows kept (the store's call does
** not send them first) unless one of those rows is theirs (the maps
** memos_kept, components_kept, ref_owners): a read in each component
** would otherwise send every kind's rows one by one.
**
** Memo entries are the rows two processes sharing an update write alike
** (a function computed by both): each upsert locks its entry's row
** until the commit, so two batches that upserted the same entries in
** more than one statement each, in different orders, would deadlock (the
** server rolls one back). So a batch's entries are kept until its commit
** and sent last, in one statement that writes them in key order: of two
** batches, the one that waits for an entry holds none the other needs.
** Only a statement that reads or deletes memo entries sends them earlier
** (tide_pgs_bulk_send_memos), and so do a batch's MEMO_MAX_ROWS-th entry
** and its MEMO_MAX_BYTES-th byte of them; a batch whose entries reach
** BULK_MAX_BYTES commits at tide_store_maybe_flush
** (tide_pgs_bulk_memos_due).
**
** A batch that sends entries early, or deletes some, locks rows in more
** than one statement, and could deadlock with another such batch, or
** with a batch whose commit waits for one of its entries while it waits
** for one of the other's. The memo lock rules that out: an advisory lock
** of the transaction, keyed by the schema, which a batch takes shared
** just before its entries at its commit, and alone before it first sends
** them early or deletes any. A batch that holds memo entries early holds
** the lock alone, so no other batch holds any entry until it ends; the
** lock is sent in the pipeline with the statement it guards, and costs
** no round trip.
**
** The arrays travel as text: int8 elements as decimal digits, bytea
** elements as "\\x" and hex, NULL as NULL.
*/
#include <stdio.h>
#include <string.h>

#include "store_pg.h"

/* Rows kept before a kind is sent on its own; and bytes (a memo entry's
** value may be large: an embedding). */
#define BULK_MAX_ROWS 2048
#define BULK_MAX_BYTES (8 << 20)
/* A batch's memo entries, sent at its commit: the most rows and bytes
** kept before they are sent anyway (a component that memoizes more). */
#define MEMO_MAX_ROWS (8 * BULK_MAX_ROWS)
#define MEMO_MAX_BYTES (4 * BULK_MAX_BYTES)
/* The memo lock's keys: "TIDM", the schema's name hashed (the writer lock
** is "TIDE"'s, store_pg.c). */
#define MEMO_LOCK_KEYS "1414087757, hashtext($1::text)"

static const char hex_digits[] = "0123456789abcdef";

typedef struct {
  int slot;
  const char *what;
  const char *types; /* a column each: 'i' int8, 'b' bytea */
  const char *sql;
} Kind;

/* The statements, a parameter per column, in the order rows are sent. */
static const Kind kinds[PG_BULK_KINDS] = {
  { PG_BULK_COMPONENTS, "cannot record a component", "ibibbbbbibibi",
    "WITH u AS (SELECT DISTINCT ON (app_id, path) * FROM unnest($1::int8[],"
    " $2::bytea[], $3::int8[], $4::bytea[], $5::bytea[], $6::bytea[],"
    " $7::bytea[], $8::bytea[], $9::int8[], $10::bytea[], $11::int8[],"
    " $12::bytea[], $13::int8[]) WITH ORDINALITY AS u(app_id, path,"
    " parent_id, fn_name, logic_fp, input_fp, source_key, state, status,"
    " error, updated_ns, deps_fp, id, ord) ORDER BY app_id, path, ord DESC),"
    " c AS (INSERT INTO components(app_id, path, parent_id, fn_name,"
    " logic_fp, input_fp, source_key, state, status, error, updated_ns,"
    " deps_fp, id) SELECT app_id, path, parent_id, fn_name, logic_fp,"
    " input_fp, source_key, state, status, error, updated_ns, deps_fp, id"
    " FROM u ON CONFLICT (app_id, path) DO UPDATE SET"
    " parent_id = excluded.parent_id, fn_name = excluded.fn_name,"
    " logic_fp = excluded.logic_fp, input_fp = excluded.input_fp,"
    " source_key = excluded.source_key, state = excluded.state,"
    " status = excluded.status, error = excluded.error,"
    " updated_ns = excluded.updated_ns, deps_fp = excluded.deps_fp"
    " WHERE components.id = excluded.id RETURNING 1)"
    " SELECT rows_are((SELECT count(*) FROM c), (SELECT count(*) FROM u),"
    " 'it is recorded under another id (did another process write it?)')" },
  { PG_BULK_TARGETS, "cannot record a target state", "ibibii",
    "INSERT INTO target_states(container_id, key, owner_id, value_fp,"
    " pending, written_ns) SELECT DISTINCT ON (container_id, key)"
    " container_id, key, owner_id, value_fp, pending,"
    " max(written_ns) OVER (PARTITION BY container_id, key)"
    " FROM unnest($1::int8[], $2::bytea[], $3::int8[], $4::bytea[],"
    " $5::int8[], $6::int8[]) WITH ORDINALITY AS u(container_id, key,"
    " owner_id, value_fp, pending, written_ns, ord)"
    " ORDER BY container_id, key, ord DESC"
    " ON CONFLICT (container_id, key) DO UPDATE SET"
    " owner_id = excluded.owner_id, value_fp = excluded.value_fp,"
    " pending = excluded.pending, written_ns ="
    " coalesce(excluded.written_ns, target_states.written_ns)" },
  { PG_BULK_SOURCES, "cannot record a source item", "ibbiiib",
    "INSERT INTO source_items(app_id, source, key, size, mtime_ns, inode,"
    " content_fp) SELECT DISTINCT ON (app_id, source, key) app_id, source,"
    " key, size, mtime_ns, inode, content_fp FROM unnest($1::int8[],"
    " $2::bytea[], $3::bytea[], $4::int8[], $5::int8[], $6::int8[],"
    " $7::bytea[]) WITH ORDINALITY AS u(app_id, source, key, size, mtime_ns,"
    " inode, content_fp, ord) ORDER BY app_id, source, key, ord DESC"
    " ON CONFLICT (app_id, source, key) DO UPDATE SET size = excluded.size,"
    " mtime_ns = excluded.mtime_ns, inode = excluded.inode,"
    " content_fp = excluded.content_fp" },
  { PG_BULK_WORK, "cannot record a work item", "ibb",
    "INSERT INTO work_items(update_id, path, item) SELECT update_id, path,"
    " item FROM unnest($1::int8[], $2::bytea[], $3::bytea[]) WITH ORDINALITY"
    " AS u(update_id, path, item, ord) ORDER BY ord" },
  { PG_BULK_DONE, "cannot mark a work item done", "iii",
    "WITH u AS (SELECT DISTINCT ON (id) id, worker, state FROM"
    " unnest($1::int8[], $2::int8[], $3::int8[]) AS u(id, worker, state)"
    " ORDER BY id, state DESC), d AS (UPDATE work_items w"
    " SET state = u.state FROM u WHERE w.id = u.id"
    " AND w.worker_id = u.worker AND w.state < u.state"
    " RETURNING w.worker_id, w.state), n AS (UPDATE workers k"
    " SET done = k.done + c.n FROM (SELECT worker_id, count(*) AS n FROM d"
    " WHERE state = 2 GROUP BY worker_id) c WHERE k.id = c.worker_id)"
    " SELECT rows_are((SELECT count(*) FROM d), (SELECT count(*) FROM u),"
    " 'it is no longer this worker''s (its lease ran out and another"
    " worker took it, or its update ended)')" },
  { PG_BULK_COUNTS, "cannot record a worker's counts", "ibi",
    "INSERT INTO worker_counts(worker_id, name, n) SELECT worker_id, name,"
    " sum(n) FROM unnest($1::int8[], $2::bytea[], $3::int8[])"
    " AS u(worker_id, name, n) GROUP BY worker_id, name"
    " ON CONFLICT (worker_id, name) DO UPDATE"
    " SET n = worker_counts.n + excluded.n" },
  { PG_BULK_MEMOS, "cannot record a memo entry", "ibbbbbi",
    "INSERT INTO memos(app_id, key, fn_name, value, deps, targets,"
    " updated_ns) SELECT DISTINCT ON (app_id, key) app_id, key, fn_name,"
    " value, deps, targets, updated_ns FROM unnest($1::int8[], $2::bytea[],"
    " $3::bytea[], $4::bytea[], $5::bytea[], $6::bytea[], $7::int8[])"
    " WITH ORDINALITY AS u(app_id, key, fn_name, value, deps, targets,"
    " updated_ns, ord) ORDER BY app_id, key, ord DESC"
    " ON CONFLICT (app_id, key) DO UPDATE SET fn_name = excluded.fn_name,"
    " value = excluded.value, deps = excluded.deps,"
    " targets = excluded.targets, updated_ns = excluded.updated_ns" },
  { PG_BULK_REFS_CLEAR, "cannot delete memo references", "i",
    "DELETE FROM memo_refs WHERE component_id = ANY($1::int8[])" },
  { PG_BULK_REFS, "cannot record a memo reference", "iib",
    "INSERT INTO memo_refs(app_id, component_id, key) SELECT app_id,"
    " component_id, key FROM unnest($1::int8[], $2::int8[], $3::bytea[])"
    " AS u(app_id, component_id, key) ON CONFLICT DO NOTHING" },
};

static int nomem(PgStore *s) {
  return tide_pgs_fail(s, TIDE_ENOMEM, "out of memory");
}

/* Appends one element to an array literal under way. */
static int add_cell(tide_Buf *b, char type, const PgCell *cell) {
  char digits[24];
  int rc = tide_buf_push(b, b->len == 0 ? '{' : ',');
  size_t i;
  if (rc) return rc;
  if (cell->null) return tide_buf_append(b, "NULL", 4);
  if (type == 'i') {
    int n = snprintf(digits, sizeof digits, "%lld", (long long)cell->i);
    return tide_buf_append(b, digits, (size_t)n);
  }
  /* "\\x" and two hex digits a byte, quoted. */
  if ((rc = tide_buf_reserve(b, 5 + 2 * cell->len)) != 0) return rc;
  memcpy(b->data + b->len, "\"\\\\x", 4);
  b->len += 4;
  for (i = 0; i < cell->len; i++) {
    uint8_t c = ((const uint8_t *)cell->p)[i];
    b->data[b->len++] = (uint8_t)hex_digits[c >> 4];
    b->data[b->len++] = (uint8_t)hex_digits[c & 15];
  }
  b->data[b->len++] = '"';
  return 0;
}

int tide_pgs_array_bytes(tide_Buf *b, const void *p, size_t len) {
  PgCell cell;
  memset(&cell, 0, sizeof cell);
  cell.p = p;
  cell.len = len;
  return add_cell(b, 'b', &cell);
}

/* The bytes of the rows of a kind kept. */
static size_t kept_bytes(const PgStore *s, int kind) {
  const char *t = kinds[kind].types;
  size_t bytes = 0;
  int i;
  for (i = 0; t[i]; i++) bytes += s->bulk[kind].cols[i].len;
  return bytes;
}

int tide_pgs_bulk_row(PgStore *s, int kind, const PgCell *cells) {
  PgBulk *k = &s->bulk[kind];
  const char *t = kinds[kind].types;
  int i, rc;
  if ((rc = tide_pgs_write_begin(s)) != 0) return rc;
  tide_pgs_release(s);
  for (i = 0; t[i]; i++) {
    if (k->cols[i].alloc == NULL)
      tide_buf_init(&k->cols[i], s->base.alloc, s->base.ud);
    if (add_cell(&k->cols[i], t[i], &cells[i]) != 0) return nomem(s);
  }
  k->rows++;
  s->base.batch_writes++;
  if (kind == PG_KIND_MEMOS)
    return k->rows >= MEMO_MAX_ROWS || kept_bytes(s, kind) >= MEMO_MAX_BYTES
           ? tide_pgs_bulk_send_memos(s) : 0;
  if (k->rows >= BULK_MAX_ROWS || kept_bytes(s, kind) >= BULK_MAX_BYTES)
    return tide_pgs_bulk_send(s);
  return 0;
}

/* Sends the kept rows of one kind as its statement. */
static int send_kind(PgStore *s, int kind) {
  PgBulk *k = &s->bulk[kind];
  const Kind *d = &kinds[kind];
  PgParams p;
  int i, rc = 0;
  memset(&p, 0, sizeof p);
  for (i = 0; d->types[i]; i++) {
    tide_Buf *b = &k->cols[i];
    /* A NUL-terminated literal, as libpq reads text parameters. */
    if (tide_buf_push(b, '}') != 0 || tide_buf_push(b, '\0') != 0)
      rc = nomem(s);
    p.values[i] = (const char *)b->data;
    p.lengths[i] = 0;
    p.formats[i] = 0;
  }
  p.n = i;
  if (rc == 0) rc = tide_pgs_send(s, d->slot, d->sql, &p, d->what);
  for (i = 0; d->types[i]; i++) k->cols[i].len = 0;
  k->rows = 0;
  return rc;
}

/* What the maps of kept rows say: nothing is kept (the rows were sent,
** or dropped). */
static void forget_map(PgStore *s, tide_HashMap *m) {
  if (tide_hashmap_count(m) == 0) return;
  tide_hashmap_close(m);
  tide_hashmap_init(m, s->base.alloc, s->base.ud);
}

static void forget_kept(PgStore *s) {
  forget_map(s, &s->ref_owners);
  forget_map(s, &s->memos_kept);
  forget_map(s, &s->components_kept);
}

int tide_pgs_bulk_send(PgStore *s) {
  int kind, rc;
  for (kind = 0; kind < PG_BULK_KINDS; kind++) {
    if (s->bulk[kind].rows == 0 || kind == PG_KIND_MEMOS) continue;
    if ((rc = send_kind(s, kind)) != 0) return rc;
  }
  forget_map(s, &s->ref_owners);
  forget_map(s, &s->components_kept);
  return 0;
}

int tide_pgs_memos_lock(PgStore *s, int mode) {
  static const char *const sql[] = {
    NULL,
    "SELECT pg_advisory_xact_lock_shared(" MEMO_LOCK_KEYS ")",
    "SELECT pg_advisory_xact_lock(" MEMO_LOCK_KEYS ")"
  };
  PgParams p;
  int rc;
  if (s->memo_lock >= mode) return 0;
  if ((rc = tide_pgs_write_begin(s)) != 0) return rc;
  memset(&p, 0, sizeof p);
  p.n = 1;
  p.values[0] = s->schema; /* text */
  rc = tide_pgs_send(s, mode == PG_MEMOS_ALONE ? PG_MEMO_LOCK_ALONE
                                               : PG_MEMO_LOCK_SHARED,
                     sql[mode], &p, "cannot lock the memo entries");
  if (rc == 0) s->memo_lock = mode;
  return rc;
}

static int send_memos(PgStore *s, int lock) {
  int rc;
  if (s->bulk[PG_KIND_MEMOS].rows == 0) return 0;
  if ((rc = tide_pgs_memos_lock(s, lock)) != 0 ||
      (rc = send_kind(s, PG_KIND_MEMOS)) != 0)
    return rc;
  forget_map(s, &s->memos_kept);
  return 0;
}

int tide_pgs_bulk_send_memos(PgStore *s) {
  return send_memos(s, PG_MEMOS_ALONE);
}

int tide_pgs_bulk_commit_memos(PgStore *s) {
  return send_memos(s, PG_MEMOS_SHARED);
}

int tide_pgs_memos_delete_begin(PgStore *s) {
  int rc = tide_pgs_memos_lock(s, PG_MEMOS_ALONE);
  return rc ? rc : send_memos(s, PG_MEMOS_ALONE);
}

int tide_pgs_bulk_memos_due(const PgStore *s) {
  return kept_bytes(s, PG_KIND_MEMOS) >= BULK_MAX_BYTES;
}

/* ref_owners' values: a component's references cleared, or added (and
** maybe cleared before). */
enum { REFS_CLEARED = 1, REFS_ADDED = 2 };

int tide_pgs_bulk_ref(PgStore *s, int64_t app_id, int64_t component_id,
                      const uint8_t *key, size_t key_len) {
  PgCell row[3];
  memset(row, 0, sizeof row);
  row[0].i = app_id;
  row[1].i = component_id;
  row[2].p = key;
  row[2].len = key_len;
  if (tide_hashmap_put_id(&s->ref_owners, (uint64_t)component_id,
                          REFS_ADDED) != 0)
    return nomem(s);
  return tide_pgs_bulk_row(s, PG_KIND_REFS, row);
}

int tide_pgs_bulk_refs_clear(PgStore *s, int64_t component_id) {
  const uint64_t *was = tide_hashmap_get_id(&s->ref_owners,
                                            (uint64_t)component_id);
  PgCell row[1];
  int rc;
  memset(row, 0, sizeof row);
  row[0].i = component_id;
  /* Additions kept for the component go first, as they came. */
  if (was && *was == REFS_ADDED && (rc = tide_pgs_bulk_send(s)) != 0)
    return rc;
  if (tide_hashmap_put_id(&s->ref_owners, (uint64_t)component_id,
                          REFS_CLEARED) != 0)
    return nomem(s);
  return tide_pgs_bulk_row(s, PG_KIND_REFS_CLEAR, row);
}

int tide_pgs_bulk_refs_kept(const PgStore *s, int64_t component_id) {
  return tide_hashmap_get_id(&s->ref_owners, (uint64_t)component_id) != NULL;
}

int tide_pgs_bulk_memo(PgStore *s, const PgCell *cells, const uint8_t *key) {
  if (tide_hashmap_put(&s->memos_kept, key, TIDE_FP_SIZE, 1, NULL) != 0)
    return nomem(s);
  return tide_pgs_bulk_row(s, PG_KIND_MEMOS, cells);
}

int tide_pgs_bulk_memo_kept(const PgStore *s, const uint8_t *key) {
  return tide_hashmap_get(&s->memos_kept, key, TIDE_FP_SIZE) != NULL;
}

int tide_pgs_bulk_component(PgStore *s, const PgCell *cells, int64_t id) {
  if (tide_hashmap_put_id(&s->components_kept, (uint64_t)id, 1) != 0)
    return nomem(s);
  return tide_pgs_bulk_row(s, PG_KIND_COMPONENTS, cells);
}

int tide_pgs_bulk_component_kept(const PgStore *s, int64_t id) {
  return tide_hashmap_get_id(&s->components_kept, (uint64_t)id) != NULL;
}

int tide_pgs_memo_delete_unreferenced(PgStore *s, int64_t app_id) {
  PgParams p = {0};
  int rc = tide_pgs_memos_delete_begin(s);
  if (rc) return rc;
  pg_param_int(&p, app_id);
  return tide_pgs_write(s, PG_MEMO_DELETE_UNREFERENCED,
                        "DELETE FROM memos m WHERE app_id = $1"
                        " AND NOT EXISTS (SELECT 1 FROM memo_refs r"
                        " WHERE r.app_id = $1 AND r.key = m.key)",
                        &p, "cannot delete memo entries");
}

/* The memo entries among keys that no component uses go, BULK_MAX_ROWS
** keys a statement, in the open batch. */
int tide_pgs_memo_delete_unused(PgStore *s, int64_t app_id,
                                const uint8_t *keys, size_t n) {
  tide_Buf list;
  char id[24];
  PgParams p;
  size_t i, at;
  int rc = n ? tide_pgs_memos_delete_begin(s) : 0;
  tide_buf_init(&list, s->base.alloc, s->base.ud);
  snprintf(id, sizeof id, "%lld", (long long)app_id);
  for (at = 0; at < n && rc == 0; at += BULK_MAX_ROWS) {
    list.len = 0;
    for (i = at; i < n && i < at + BULK_MAX_ROWS && rc == 0; i++) {
      PgCell cell;
      memset(&cell, 0, sizeof cell);
      cell.p = keys + i * TIDE_FP_SIZE;
      cell.len = TIDE_FP_SIZE;
      if (add_cell(&list, 'b', &cell) != 0) rc = nomem(s);
    }
    if (rc == 0 && (tide_buf_push(&list, '}') != 0 ||
                    tide_buf_push(&list, '\0') != 0))
      rc = nomem(s);
    if (rc != 0) break;
    memset(&p, 0, sizeof p);
    p.n = 2;
    p.values[0] = id;
    p.values[1] = (const char *)list.data;
    rc = tide_pgs_write(s, PG_MEMO_DEL_UNUSED,
                        "DELETE FROM memos m WHERE m.app_id = $1::int8"
                        " AND m.key = ANY($2::bytea[]) AND NOT EXISTS"
                        " (SELECT 1 FROM memo_refs r WHERE r.app_id ="
                        " m.app_id AND r.key = m.key)",
                        &p, "cannot delete memo entries");
  }
  tide_buf_close(&list);
  return rc;
}

void tide_pgs_bulk_drop(PgStore *s) {
  int kind, i;
  for (kind = 0; kind < PG_BULK_KINDS; kind++) {
    for (i = 0; i < PG_BULK_COLS; i++) s->bulk[kind].cols[i].len = 0;
    s->bulk[kind].rows = 0;
  }
  forget_kept(s);
}

void tide_pgs_bulk_free(PgStore *s) {
  int kind, i;
  for (kind = 0; kind < PG_BULK_KINDS; kind++)
    for (i = 0; i < PG_BULK_COLS; i++)
      if (s->bulk[kind].cols[i].alloc) tide_buf_close(&s->bulk[kind].cols[i]);
  tide_hashmap_close(&s->ref_owners);
  tide_hashmap_close(&s->memos_kept);
  tide_hashmap_close(&s->components_kept);
}
