/*
** Set-based writes of the PostgreSQL store (store_pg.h): the rows of the
** writes a batch makes by the thousand (components, target states, file
** states, work items recorded and done) are kept here as they come, a
** column each, and sent as one statement per kind over arrays (unnest), before any
** other statement and before the pipeline is synchronised. So a batch
** costs the server one statement per kind instead of one per row.
**
** Order: rows of one kind keep theirs, and a key written twice in a batch
** is written once, with the last row's values (DISTINCT ON ... ORDER BY
** the row's number, descending); kinds go in a fixed order, which is
** safe because they write different tables, nothing reads in between,
** and every other statement sends the rows kept before it first.
**
** The arrays travel as text: int8 elements as decimal digits, bytea
** elements as "\\x" and hex, NULL as NULL.
*/
#include <stdio.h>
#include <string.h>

#include "store_pg.h"

/* Rows kept before a kind is sent on its own. */
#define BULK_MAX_ROWS 2048

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
  { PG_BULK_DONE, "cannot mark a work item done", "ii",
    "WITH u AS (SELECT DISTINCT id, worker FROM unnest($1::int8[],"
    " $2::int8[]) AS u(id, worker)), d AS (UPDATE work_items w"
    " SET state = 2 FROM u WHERE w.id = u.id AND w.worker_id = u.worker"
    " AND w.state = 0 RETURNING w.worker_id), n AS (UPDATE workers k"
    " SET done = k.done + c.n FROM (SELECT worker_id, count(*) AS n FROM d"
    " GROUP BY worker_id) c WHERE k.id = c.worker_id)"
    " SELECT rows_are((SELECT count(*) FROM d), (SELECT count(*) FROM u),"
    " 'another worker holds it now (this worker''s lease ran out)')" },
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
  if (k->rows >= BULK_MAX_ROWS) return tide_pgs_bulk_send(s);
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

int tide_pgs_bulk_send(PgStore *s) {
  int kind, rc;
  for (kind = 0; kind < PG_BULK_KINDS; kind++) {
    if (s->bulk[kind].rows == 0) continue;
    if ((rc = send_kind(s, kind)) != 0) return rc;
  }
  return 0;
}

void tide_pgs_bulk_drop(PgStore *s) {
  int kind, i;
  for (kind = 0; kind < PG_BULK_KINDS; kind++) {
    for (i = 0; i < PG_BULK_COLS; i++) s->bulk[kind].cols[i].len = 0;
    s->bulk[kind].rows = 0;
  }
}

void tide_pgs_bulk_free(PgStore *s) {
  int kind, i;
  for (kind = 0; kind < PG_BULK_KINDS; kind++)
    for (i = 0; i < PG_BULK_COLS; i++)
      if (s->bulk[kind].cols[i].alloc) tide_buf_close(&s->bulk[kind].cols[i]);
}
