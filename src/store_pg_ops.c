/*
** The PostgreSQL store's operations (store_pg.h): the SQLite store's, one
** prepared statement each. A write is sent into the pipeline and not
** waited for, unless the caller needs what it returns (an id it cannot
** know, a "not found"); a get leaves its result on the store so that the
** caller borrows the values; an iteration reads its rows a page of
** PAGE_ROWS at a time, each page after the last one's key, so that a
** callback may call the store between rows and a large table is never
** held whole.
*/
#include <string.h>

#include "store_pg.h"

#define PAGE_ROWS 4096
#define PAGE " LIMIT 4096"

/* Turns row `row` of r into a struct and hands it to the callback that
** cb points at. */
typedef int (*Emit)(const PGresult *r, int row, const void *cb, void *arg);

/* An iteration may not start again inside its own callback, as the
** contract says (SQLite's statement would be in use). */
static int nested(PgStore *s) {
  return tide_pgs_fail(s, TIDE_EINVAL, "%s: nested use of a store iteration",
                       s->location);
}

/* Every row of one query. */
/* Every row of a query, read apart from the rows kept for the open batch
** (tide_pgs_read_apart) when apart is set. */
static int each_row_of(PgStore *s, int apart, int slot, const char *sql,
                       const PgParams *p, const char *what, Emit emit,
                       const void *cb, void *arg) {
  PGresult *r;
  int rc, i, n;
  if (s->iterating[slot]) return nested(s);
  rc = apart ? tide_pgs_read_apart(s, slot, sql, p, what, &r)
             : tide_pgs_read(s, slot, sql, p, what, &r);
  if (rc != 0) return rc;
  n = PQntuples(r);
  s->iterating[slot] = 1;
  for (i = 0; i < n && rc == 0; i++) rc = emit(r, i, cb, arg);
  s->iterating[slot] = 0;
  PQclear(r);
  return rc;
}

static int each_row(PgStore *s, int slot, const char *sql, const PgParams *p,
                    const char *what, Emit emit, const void *cb, void *arg) {
  return each_row_of(s, 0, slot, sql, p, what, emit, cb, arg);
}

/*
** Every row of a query read in pages: first_sql takes p; next_sql takes p
** and then the values of the columns keys[0..nkeys) of the page's last
** row, which order the rows and are unique together. The values are
** copied (binary, as the next page's parameters) before the page is
** freed.
*/
static int each_page(PgStore *s, int first_slot, const char *first_sql,
                     int next_slot, const char *next_sql, const PgParams *p,
                     const int *keys, int nkeys, const char *what, Emit emit,
                     const void *cb, void *arg) {
  PgParams q = *p;
  tide_Buf last;
  PGresult *r;
  int rc, i, n, first = 1;
  if (s->iterating[first_slot]) return nested(s);
  s->iterating[first_slot] = 1;
  tide_buf_init(&last, s->base.alloc, s->base.ud);
  for (;;) {
    rc = first ? tide_pgs_read(s, first_slot, first_sql, p, what, &r)
               : tide_pgs_read(s, next_slot, next_sql, &q, what, &r);
    if (rc) break;
    n = PQntuples(r);
    for (i = 0; i < n && rc == 0; i++) rc = emit(r, i, cb, arg);
    if (rc || n < PAGE_ROWS) {
      PQclear(r);
      break;
    }
    /* The next page starts after this one's last row. */
    last.len = 0;
    for (i = 0; i < nkeys && rc == 0; i++)
      rc = tide_buf_append(&last, PQgetvalue(r, n - 1, keys[i]),
                           (size_t)PQgetlength(r, n - 1, keys[i]));
    if (rc == 0) {
      size_t at = 0;
      q = *p;
      for (i = 0; i < nkeys; i++) {
        size_t len = (size_t)PQgetlength(r, n - 1, keys[i]);
        pg_param_bytes(&q, last.data ? (const char *)last.data + at : "",
                       len);
        at += len;
      }
    }
    PQclear(r);
    if (rc) {
      rc = tide_pgs_fail(s, TIDE_ENOMEM, "out of memory");
      break;
    }
    first = 0;
  }
  tide_buf_close(&last);
  s->iterating[first_slot] = 0;
  return rc;
}

static int send_write(PgStore *s, int slot, const char *sql, const PgParams *p,
                      const char *what) {
  return tide_pgs_write(s, slot, sql, p, what);
}

/* A kept row's bytes (NULL for a NULL pointer), fingerprint, and id (0
** for NULL). */
static void cell_bytes(PgCell *cell, const void *p, size_t len) {
  cell->null = p == NULL;
  cell->p = p;
  cell->len = p ? len : 0;
}

static void cell_fp(PgCell *cell, const uint8_t *fp) {
  cell_bytes(cell, fp, TIDE_FP_SIZE);
}

static void cell_id(PgCell *cell, int64_t id) {
  cell->null = id == 0;
  cell->i = id;
}

/* A statement whose one parameter is an id. */
static void id_param(PgParams *p, int64_t id) {
  p->n = 0;
  pg_param_int(p, id);
}

/* ---- Apps ---- */

static void fill_app(const PGresult *r, int row, tide_StoreApp *a) {
  a->id = pg_int(r, row, 0);
  a->name = pg_bytes(r, row, 1, &a->name_len);
  a->created_ns = pg_int(r, row, 2);
}

static int emit_app(const PGresult *r, int row, const void *cb, void *arg) {
  tide_StoreApp a;
  fill_app(r, row, &a);
  return (*(const tide_StoreAppFn *)cb)(arg, &a);
}

#define APP_LOOKUP_SQL "SELECT id, name, created_ns FROM apps WHERE name = $1"

int tide_pgs_app_lookup(PgStore *s, const char *name, size_t name_len,
                        tide_StoreApp *app) {
  PGresult *r;
  PgParams p = {0};
  int rc;
  pg_param_bytes(&p, name, name_len);
  rc = tide_pgs_get(s, PG_APP_LOOKUP, APP_LOOKUP_SQL, &p,
                    "cannot read an app", &r);
  if (rc) return rc;
  fill_app(r, 0, app);
  return 0;
}

int tide_pgs_app_get_or_create(PgStore *s, const char *name, size_t name_len,
                               int64_t *id, int *created) {
  tide_StoreApp app;
  PgParams p = {0};
  int rc = tide_pgs_app_lookup(s, name, name_len, &app);
  if (created) *created = 0;
  if (rc == 0) {
    *id = app.id;
    return 0;
  }
  if (rc != TIDE_ENOTFOUND) return rc;
  pg_param_bytes(&p, name, name_len);
  pg_param_int(&p, tide_store_now_ns());
  rc = tide_pgs_write_returning(s, PG_APP_INSERT,
                       "INSERT INTO apps(name, created_ns) VALUES($1, $2)"
                       " RETURNING id", &p, "cannot record an app", id);
  if (rc) return rc;
  if (created) *created = 1;
  return 0;
}

int tide_pgs_app_each(PgStore *s, tide_StoreAppFn fn, void *arg) {
  return each_row(s, PG_APP_EACH,
                  "SELECT id, name, created_ns FROM apps ORDER BY name",
                  NULL, "cannot list the apps", emit_app, &fn, arg);
}

/* Everything an app owns, in one statement: target states and intents
** go with their containers. */
int tide_pgs_app_delete(PgStore *s, int64_t app_id) {
  PgParams p;
  int rc = tide_pgs_memos_delete_begin(s);
  if (rc) return rc;
  id_param(&p, app_id);
  return send_write(s, PG_APP_DELETE,
               "WITH c AS (DELETE FROM containers WHERE app_id = $1"
               " RETURNING id),"
               " t AS (DELETE FROM target_states"
               " WHERE container_id IN (SELECT id FROM c)),"
               " i AS (DELETE FROM intents WHERE app_id = $1),"
               " m AS (DELETE FROM memos WHERE app_id = $1),"
               " r AS (DELETE FROM memo_refs WHERE app_id = $1),"
               " k AS (DELETE FROM components WHERE app_id = $1),"
               " s AS (DELETE FROM source_items WHERE app_id = $1),"
               " u AS (DELETE FROM runs WHERE app_id = $1)"
               " DELETE FROM apps WHERE id = $1",
               &p, "cannot delete an app");
}

/* ---- Processing components ---- */

#define COMPONENT_COLUMNS                                                  \
  "id, app_id, path, parent_id, fn_name, logic_fp, input_fp, source_key,"  \
  " state, status, error, updated_ns, deps_fp"

static void fill_component(const PGresult *r, int row,
                           tide_StoreComponent *c) {
  c->id = pg_int(r, row, 0);
  c->app_id = pg_int(r, row, 1);
  c->path = pg_bytes(r, row, 2, &c->path_len);
  c->parent_id = pg_int(r, row, 3);
  c->fn_name = pg_bytes(r, row, 4, &c->fn_name_len);
  c->logic_fp = pg_fp(r, row, 5);
  c->input_fp = pg_fp(r, row, 6);
  c->source_key = pg_bytes(r, row, 7, &c->source_key_len);
  c->state = pg_bytes(r, row, 8, &c->state_len);
  c->status = (int)pg_int(r, row, 9);
  c->error = pg_bytes(r, row, 10, &c->error_len);
  c->updated_ns = pg_int(r, row, 11);
  c->deps_fp = pg_fp(r, row, 12);
}

static int emit_component(const PGresult *r, int row, const void *cb,
                          void *arg) {
  tide_StoreComponent c;
  fill_component(r, row, &c);
  return (*(const tide_StoreComponentFn *)cb)(arg, &c);
}

#define COMPONENT_VALUES                                                   \
  "app_id, path, parent_id, fn_name, logic_fp, input_fp, source_key,"      \
  " state, status, error, updated_ns, deps_fp"
#define COMPONENT_UPDATE                                                   \
  " ON CONFLICT (app_id, path) DO UPDATE SET"                              \
  " parent_id = excluded.parent_id, fn_name = excluded.fn_name,"           \
  " logic_fp = excluded.logic_fp, input_fp = excluded.input_fp,"           \
  " source_key = excluded.source_key, state = excluded.state,"             \
  " status = excluded.status, error = excluded.error,"                     \
  " updated_ns = excluded.updated_ns, deps_fp = excluded.deps_fp"

/* The next id of a pool, taken from the sequence by sql (a statement of
** slot returning PG_RESERVED_IDS ids) when the pool is empty: one round
** trip for that many new rows. */
static int take_id(PgStore *s, PgIds *pool, int slot, const char *sql,
                   const char *what, int64_t *id) {
  if (pool->next == pool->n) {
    PGresult *r;
    PgParams p = {0};
    int rc, i;
    pg_param_int(&p, PG_RESERVED_IDS);
    if ((rc = tide_pgs_read_apart(s, slot, sql, &p, what, &r)) != 0)
      return rc;
    pool->n = PQntuples(r) < PG_RESERVED_IDS ? PQntuples(r)
                                              : PG_RESERVED_IDS;
    for (i = 0; i < pool->n; i++) pool->ids[i] = pg_int(r, i, 0);
    pool->next = 0;
    PQclear(r);
    if (pool->n == 0)
      return tide_pgs_fail(s, TIDE_ESTORE, "%s: %s: no ids reserved",
                           s->location, what);
  }
  *id = pool->ids[pool->next++];
  return 0;
}

/*
** c->id > 0 (the id the caller read) and TIDE_STORE_NEW_ID (a component
** the caller knows is not there, given a reserved id) are kept for the
** batch's set-based statement and not waited for: each row must be
** written with that id, else the batch fails (someone else recorded the
** path meanwhile). c->id 0 waits for the id the server finds or makes.
*/
int tide_pgs_component_put(PgStore *s, const tide_StoreComponent *c,
                           int64_t *id) {
  const char *what = "cannot record a component";
  PgParams p = {0};
  int64_t known = c->id;
  int rc = 0;
  if (known == TIDE_STORE_NEW_ID) {
    if ((rc = tide_pgs_write_begin(s)) != 0) return rc;
    if ((rc = take_id(s, &s->component_ids, PG_COMPONENT_IDS,
                      "SELECT nextval('component_ids')"
                      " FROM generate_series(1, $1::int8)", what,
                      &known)) != 0)
      return rc;
  }
  if (known <= 0) {
    pg_param_int(&p, c->app_id);
    pg_param_bytes(&p, c->path, c->path_len);
    pg_param_id(&p, c->parent_id);
    pg_param_bytes(&p, c->fn_name, c->fn_name_len);
    pg_param_fp(&p, c->logic_fp);
    pg_param_fp(&p, c->input_fp);
    pg_param_bytes(&p, c->source_key, c->source_key_len);
    pg_param_bytes(&p, c->state, c->state_len);
    pg_param_int(&p, c->status);
    pg_param_bytes(&p, c->error, c->error_len);
    pg_param_int(&p, tide_store_now_ns());
    pg_param_fp(&p, c->deps_fp);
    return tide_pgs_write_returning(s, PG_COMPONENT_PUT,
                                    "INSERT INTO components("
                                    COMPONENT_VALUES ")"
                                    " VALUES($1, $2, $3, $4, $5, $6, $7, $8,"
                                    " $9, $10, $11, $12)" COMPONENT_UPDATE
                                    " RETURNING id", &p, what, id);
  }
  {
    PgCell row[13];
    memset(row, 0, sizeof row);
    row[0].i = c->app_id;
    cell_bytes(&row[1], c->path, c->path_len);
    cell_id(&row[2], c->parent_id);
    cell_bytes(&row[3], c->fn_name, c->fn_name_len);
    cell_fp(&row[4], c->logic_fp);
    cell_fp(&row[5], c->input_fp);
    cell_bytes(&row[6], c->source_key, c->source_key_len);
    cell_bytes(&row[7], c->state, c->state_len);
    row[8].i = c->status;
    cell_bytes(&row[9], c->error, c->error_len);
    row[10].i = tide_store_now_ns();
    cell_fp(&row[11], c->deps_fp);
    row[12].i = known;
    rc = tide_pgs_bulk_component(s, row, known);
  }
  if (rc == 0 && id) *id = known;
  return rc;
}

int tide_pgs_component_get(PgStore *s, int64_t app_id, const char *path,
                           size_t path_len, tide_StoreComponent *c) {
  PGresult *r;
  PgParams p = {0};
  int rc;
  pg_param_int(&p, app_id);
  pg_param_bytes(&p, path, path_len);
  rc = tide_pgs_get(s, PG_COMPONENT_GET,
                    "SELECT " COMPONENT_COLUMNS " FROM components"
                    " WHERE app_id = $1 AND path = $2",
                    &p, "cannot read a component", &r);
  if (rc) return rc;
  fill_component(r, 0, c);
  return 0;
}

int tide_pgs_component_path(PgStore *s, int64_t id, const char **path,
                            size_t *path_len) {
  PGresult *r;
  PgParams p;
  int rc;
  id_param(&p, id);
  rc = tide_pgs_get(s, PG_COMPONENT_PATH,
                    "SELECT path FROM components WHERE id = $1", &p,
                    "cannot read a component", &r);
  if (rc) return rc;
  *path = pg_bytes(r, 0, 0, path_len);
  return 0;
}

int tide_pgs_component_state(PgStore *s, int64_t id, const void **state,
                             size_t *state_len) {
  PGresult *r;
  PgParams p;
  int rc;
  id_param(&p, id);
  /* Apart from the rows kept, unless the component is one of them. */
  rc = (tide_pgs_bulk_component_kept(s, id) ? tide_pgs_get
                                             : tide_pgs_get_apart)(
    s, PG_COMPONENT_STATE, "SELECT state FROM components WHERE id = $1", &p,
    "cannot read a component", &r);
  if (rc) return rc;
  *state = pg_bytes(r, 0, 0, state_len);
  return 0;
}

/* The ids as an int8[] literal in *list (NUL-terminated), and, unless
** kept is NULL, whether a row of any of them is kept for the batch
** (states: its component's row; else its memo references). */
static int id_list(PgStore *s, tide_Buf *list, const int64_t *ids, size_t n,
                   int states, int *kept) {
  size_t i;
  char digits[24];
  if (kept) *kept = 0;
  list->len = 0;
  if (tide_buf_push(list, '{') != 0) return TIDE_ENOMEM;
  for (i = 0; i < n; i++) {
    int len = snprintf(digits, sizeof digits, "%s%lld", i ? "," : "",
                       (long long)ids[i]);
    if (tide_buf_append(list, digits, (size_t)len) != 0) return TIDE_ENOMEM;
    if (kept && (states ? tide_pgs_bulk_component_kept(s, ids[i])
                        : tide_pgs_bulk_refs_kept(s, ids[i])))
      *kept = 1;
  }
  if (tide_buf_push(list, '}') != 0 || tide_buf_push(list, '\0') != 0)
    return TIDE_ENOMEM;
  return 0;
}

/* One statement over the ids: read apart from the rows kept unless one
** of them is an id's. */
static int read_ids(PgStore *s, tide_Buf *list, const int64_t *ids,
                    size_t n, int states, int slot, const char *sql,
                    PGresult **out) {
  const char *what = states ? "cannot read the components"
                            : "cannot list the memo references";
  PgParams p;
  int kept;
  if (id_list(s, list, ids, n, states, &kept) != 0)
    return tide_pgs_fail(s, TIDE_ENOMEM, "out of memory");
  memset(&p, 0, sizeof p);
  p.n = 1;
  p.values[0] = (const char *)list->data;
  return kept ? tide_pgs_read(s, slot, sql, &p, what, out)
              : tide_pgs_read_apart(s, slot, sql, &p, what, out);
}

int tide_pgs_components_before(PgStore *s, const int64_t *ids, size_t n,
                               tide_StoreStateFn states,
                               tide_StoreComponentRefFn refs, void *arg) {
  tide_Buf list;
  PGresult *r = NULL;
  int rc = 0, i, rows;
  if (n == 0) return 0;
  tide_buf_init(&list, s->base.alloc, s->base.ud);
  if (states) {
    rc = read_ids(s, &list, ids, n, 1, PG_COMPONENTS_STATES,
                  "SELECT id, state FROM components"
                  " WHERE id = ANY($1::int8[])", &r);
    rows = rc ? 0 : PQntuples(r);
    for (i = 0; i < rows && rc == 0; i++) {
      size_t len;
      const void *state = pg_bytes(r, i, 1, &len);
      rc = states(arg, pg_int(r, i, 0), state, len);
    }
    PQclear(r);
    r = NULL;
  }
  if (refs && rc == 0) {
    rc = read_ids(s, &list, ids, n, 0, PG_MEMO_REFS_OF,
                  "SELECT component_id, key FROM memo_refs"
                  " WHERE component_id = ANY($1::int8[])"
                  " ORDER BY component_id, key", &r);
    rows = rc ? 0 : PQntuples(r);
    for (i = 0; i < rows && rc == 0; i++)
      rc = refs(arg, pg_int(r, i, 0), pg_fp(r, i, 1));
    PQclear(r);
  }
  tide_buf_close(&list);
  return rc;
}

int tide_pgs_component_delete(PgStore *s, int64_t id) {
  PgParams p;
  id_param(&p, id);
  return send_write(s, PG_COMPONENT_DEL,
                    "DELETE FROM components WHERE id = $1",
               &p, "cannot delete a component");
}

int tide_pgs_component_hold(PgStore *s, int64_t id) {
  PgParams p;
  id_param(&p, id);
  return send_write(s, PG_COMPONENT_HOLD,
                    "UPDATE components SET status = 2"
                    " WHERE id = $1 AND status = 0",
                    &p, "cannot mark a component incomplete");
}

/* A statement per IDS_MAX ids, after the rows kept (one of them may be
** a component's). */
#define IDS_MAX 1024

int tide_pgs_components_delete(PgStore *s, const int64_t *ids, size_t n) {
  tide_Buf list;
  PgParams p;
  size_t at;
  int rc = 0;
  tide_buf_init(&list, s->base.alloc, s->base.ud);
  for (at = 0; at < n && rc == 0; at += IDS_MAX) {
    size_t count = n - at < IDS_MAX ? n - at : IDS_MAX;
    if (id_list(s, &list, ids + at, count, 1, NULL) != 0) {
      rc = tide_pgs_fail(s, TIDE_ENOMEM, "out of memory");
      break;
    }
    memset(&p, 0, sizeof p);
    p.n = 1;
    p.values[0] = (const char *)list.data;
    rc = tide_pgs_write(s, PG_COMPONENTS_DEL,
                        "DELETE FROM components WHERE id = ANY($1::int8[])",
                        &p, "cannot delete the components");
  }
  tide_buf_close(&list);
  return rc;
}

int tide_pgs_component_each(PgStore *s, int64_t app_id,
                            tide_StoreComponentFn fn, void *arg) {
  static const int keys[] = { 2 };
  PgParams p;
  id_param(&p, app_id);
  return each_page(s, PG_COMPONENT_EACH_FIRST,
                   "SELECT " COMPONENT_COLUMNS " FROM components"
                   " WHERE app_id = $1 ORDER BY path" PAGE,
                   PG_COMPONENT_EACH_NEXT,
                   "SELECT " COMPONENT_COLUMNS " FROM components"
                   " WHERE app_id = $1 AND path > $2 ORDER BY path" PAGE,
                   &p, keys, 1, "cannot list the components",
                   emit_component, &fn, arg);
}

static int emit_component_brief(const PGresult *r, int row, const void *cb,
                                void *arg) {
  tide_StoreComponent c;
  memset(&c, 0, sizeof c);
  c.id = pg_int(r, row, 0);
  c.app_id = pg_int(r, row, 1);
  c.path = pg_bytes(r, row, 2, &c.path_len);
  c.logic_fp = pg_fp(r, row, 3);
  c.input_fp = pg_fp(r, row, 4);
  c.deps_fp = pg_fp(r, row, 5);
  c.status = (int)pg_int(r, row, 6);
  return (*(const tide_StoreComponentFn *)cb)(arg, &c);
}

/* In path order, the pages read through the (app_id, path) index: the
** plan the server takes whatever its statistics say. (By id, a table
** just filled, not yet analyzed, was read whole and sorted for each
** page: 30 ms a page of 100k components instead of 5.) */
int tide_pgs_component_each_brief(PgStore *s, int64_t app_id,
                                  tide_StoreComponentFn fn, void *arg) {
  static const int keys[] = { 2 };
  PgParams p;
  id_param(&p, app_id);
  return each_page(s, PG_COMPONENT_BRIEF,
                   "SELECT id, app_id, path, logic_fp, input_fp, deps_fp,"
                   " status FROM components WHERE app_id = $1"
                   " ORDER BY path" PAGE,
                   PG_COMPONENT_BRIEF_NEXT,
                   "SELECT id, app_id, path, logic_fp, input_fp, deps_fp,"
                   " status FROM components WHERE app_id = $1 AND path > $2"
                   " ORDER BY path" PAGE,
                   &p, keys, 1, "cannot list the components",
                   emit_component_brief, &fn, arg);
}

/* Reads sql with an id as $1 and, as $2, the bytea[] of keys[0..n)
** (lens[i] bytes each, or a fingerprint's when lens is NULL): apart from
** the rows kept for the open batch when apart is set. */
static int read_id_keys(PgStore *s, int slot, const char *sql, int64_t id,
                        const void *const *keys, const size_t *lens,
                        size_t n, int apart, const char *what,
                        PGresult **out) {
  tide_Buf list;
  char digits[24];
  PgParams p;
  size_t i;
  int rc = 0;
  tide_buf_init(&list, s->base.alloc, s->base.ud);
  for (i = 0; i < n && rc == 0; i++)
    rc = tide_pgs_array_bytes(&list, keys[i], lens ? lens[i] : TIDE_FP_SIZE);
  if (rc == 0) rc = tide_buf_append(&list, n ? "}" : "{}", n ? 2 : 3);
  if (rc != 0) {
    tide_buf_close(&list);
    return tide_pgs_fail(s, TIDE_ENOMEM, "out of memory");
  }
  snprintf(digits, sizeof digits, "%lld", (long long)id);
  memset(&p, 0, sizeof p);
  p.n = 2;
  p.values[0] = digits;
  p.values[1] = (const char *)list.data;
  rc = (apart ? tide_pgs_read_apart : tide_pgs_read)(s, slot, sql, &p, what,
                                                     out);
  tide_buf_close(&list);
  return rc;
}

/* One statement for every path: each path's run of the (app_id, path)
** index, from the path itself to path + "0" ('0' is the byte after '/'),
** less its siblings that sort between (path + "." and the like). A
** lateral scan a path, in path order: the only plan is the index's range
** a path, whatever the statistics say (a join of the paths with the
** app's components, planned while a shared update's first claims found
** the table small and not analyzed yet, read all of them at each claim:
** a no-op update of 10k files took 2.5 times as long). Read apart from
** the rows kept for the open batch, which the worker's components
** finished since its last claim wrote: none of them is below the items
** it just claimed (an item is claimed by one worker at a time), and
** their commit goes on while the items run. */
int tide_pgs_component_each_under(PgStore *s, int64_t app_id,
                                  const char *const *paths,
                                  const size_t *lens, size_t n,
                                  tide_StoreComponentFn fn, void *arg) {
  PGresult *r;
  int rc, row, rows;
  rc = read_id_keys(s, PG_COMPONENT_UNDER,
                    "SELECT c.id, c.app_id, c.path, c.logic_fp,"
                    " c.input_fp, c.deps_fp, c.status"
                    " FROM unnest($2::bytea[]) AS u(p), LATERAL"
                    " (SELECT * FROM components WHERE app_id ="
                    " $1::int8 AND path >= u.p AND path <"
                    " (u.p || '\\x30'::bytea) ORDER BY path) c"
                    " WHERE octet_length(c.path) = octet_length(u.p)"
                    " OR substring(c.path FROM octet_length(u.p) + 1"
                    " FOR 1) = '\\x2f'::bytea",
                    app_id, (const void *const *)paths, lens, n, 1,
                    "cannot list the components", &r);
  if (rc) return rc;
  rows = PQntuples(r);
  for (row = 0; row < rows && rc == 0; row++)
    rc = emit_component_brief(r, row, &fn, arg);
  PQclear(r);
  return rc;
}

int tide_pgs_component_count(PgStore *s, int64_t app_id, int64_t max,
                             int64_t *count) {
  PGresult *r;
  PgParams p;
  int rc;
  id_param(&p, app_id);
  if (max > 0)
    pg_param_int(&p, max);
  else
    pg_param_bytes(&p, NULL, 0); /* LIMIT NULL: all */
  rc = tide_pgs_read(s, PG_COMPONENT_COUNT,
                     "SELECT count(*) FROM (SELECT 1 FROM components"
                     " WHERE app_id = $1 LIMIT $2) c", &p,
                     "cannot count the components", &r);
  if (rc) return rc;
  *count = pg_int(r, 0, 0);
  PQclear(r);
  return 0;
}

/* ---- Memo entries ---- */

int tide_pgs_memo_get(PgStore *s, int64_t app_id, const uint8_t *key,
                      tide_StoreMemo *m) {
  PGresult *r;
  PgParams p = {0};
  int rc;
  pg_param_int(&p, app_id);
  pg_param_fp(&p, key);
  /* Apart from the rows kept (a memo miss in each component would
  ** otherwise send every kind's rows), after the entries kept when the
  ** entry is one of them. */
  if (tide_pgs_bulk_memo_kept(s, key) &&
      (rc = tide_pgs_bulk_send_memos(s)) != 0)
    return rc;
  rc = tide_pgs_get_apart(
    s, PG_MEMO_GET,
    "SELECT app_id, key, fn_name, value, deps, targets,"
    " updated_ns FROM memos WHERE app_id = $1 AND key = $2",
    &p, "cannot read a memo entry", &r);
  if (rc) return rc;
  m->app_id = pg_int(r, 0, 0);
  m->key = pg_fp(r, 0, 1);
  m->fn_name = pg_bytes(r, 0, 2, &m->fn_name_len);
  m->value = pg_bytes(r, 0, 3, &m->value_len);
  m->deps = pg_bytes(r, 0, 4, &m->deps_len);
  m->targets = pg_bytes(r, 0, 5, &m->targets_len);
  m->updated_ns = pg_int(r, 0, 6);
  return 0;
}

int tide_pgs_memo_each_of(PgStore *s, int64_t app_id,
                          const uint8_t *const *keys, size_t n,
                          tide_StoreMemoFn fn, void *arg) {
  PGresult *r;
  size_t i;
  int rc, row, rows, kept = 0;
  if (n == 0) return 0;
  for (i = 0; i < n && !kept; i++) kept = tide_pgs_bulk_memo_kept(s, keys[i]);
  /* Apart from the rows kept, after the entries kept when an entry asked
  ** for is one of them (tide_pgs_memo_get). */
  if (kept && (rc = tide_pgs_bulk_send_memos(s)) != 0) return rc;
  rc = read_id_keys(s, PG_MEMO_EACH_OF,
                    "SELECT app_id, key, fn_name, value, deps, targets,"
                    " updated_ns FROM memos WHERE app_id = $1::int8"
                    " AND key = ANY($2::bytea[])",
                    app_id, (const void *const *)keys, NULL, n, 1,
                    "cannot read the memo entries", &r);
  if (rc) return rc;
  rows = PQntuples(r);
  for (row = 0; row < rows && rc == 0; row++) {
    tide_StoreMemo m;
    m.app_id = pg_int(r, row, 0);
    m.key = pg_fp(r, row, 1);
    m.fn_name = pg_bytes(r, row, 2, &m.fn_name_len);
    m.value = pg_bytes(r, row, 3, &m.value_len);
    m.deps = pg_bytes(r, row, 4, &m.deps_len);
    m.targets = pg_bytes(r, row, 5, &m.targets_len);
    m.updated_ns = pg_int(r, row, 6);
    rc = fn(arg, &m);
  }
  PQclear(r);
  return rc;
}

int tide_pgs_memo_put(PgStore *s, const tide_StoreMemo *m) {
  PgCell row[7];
  memset(row, 0, sizeof row);
  row[0].i = m->app_id;
  cell_fp(&row[1], m->key);
  /* A name is never NULL, even when empty. */
  row[2].p = m->fn_name;
  row[2].len = m->fn_name_len;
  cell_bytes(&row[3], m->value, m->value_len);
  cell_bytes(&row[4], m->deps, m->deps_len);
  cell_bytes(&row[5], m->targets, m->targets_len);
  row[6].i = tide_store_now_ns();
  return tide_pgs_bulk_memo(s, row, m->key);
}

int tide_pgs_memo_delete(PgStore *s, int64_t app_id, const uint8_t *key) {
  PgParams p = {0};
  int rc = tide_pgs_memos_delete_begin(s);
  if (rc) return rc;
  pg_param_int(&p, app_id);
  pg_param_fp(&p, key);
  return send_write(s, PG_MEMO_DEL,
               "DELETE FROM memos WHERE app_id = $1 AND key = $2", &p,
               "cannot delete a memo entry");
}

static int emit_memo_key(const PGresult *r, int row, const void *cb,
                         void *arg) {
  size_t len;
  const char *name = pg_bytes(r, row, 1, &len);
  return (*(const tide_StoreMemoKeyFn *)cb)(arg, pg_fp(r, row, 0), name,
                                            len);
}

int tide_pgs_memo_each_key(PgStore *s, int64_t app_id, tide_StoreMemoKeyFn fn,
                           void *arg) {
  static const int keys[] = { 0 };
  PgParams p;
  int rc = tide_pgs_bulk_send_memos(s);
  if (rc) return rc;
  id_param(&p, app_id);
  return each_page(s, PG_MEMO_KEYS_FIRST,
                   "SELECT key, fn_name FROM memos WHERE app_id = $1"
                   " ORDER BY key" PAGE,
                   PG_MEMO_KEYS_NEXT,
                   "SELECT key, fn_name FROM memos WHERE app_id = $1"
                   " AND key > $2 ORDER BY key" PAGE,
                   &p, keys, 1, "cannot list the memo entries",
                   emit_memo_key, &fn, arg);
}

/* ---- Memo references ---- */

int tide_pgs_memo_ref_add(PgStore *s, int64_t app_id, int64_t component_id,
                          const uint8_t *key) {
  return tide_pgs_bulk_ref(s, app_id, component_id, key, TIDE_FP_SIZE);
}

static int emit_memo_ref(const PGresult *r, int row, const void *cb,
                         void *arg) {
  return (*(const tide_StoreMemoRefFn *)cb)(arg, pg_fp(r, row, 0));
}

int tide_pgs_memo_refs_each(PgStore *s, int64_t component_id,
                            tide_StoreMemoRefFn fn, void *arg) {
  PgParams p;
  id_param(&p, component_id);
  return each_row_of(s, !tide_pgs_bulk_refs_kept(s, component_id),
                     PG_MEMO_REFS_EACH,
                     "SELECT key FROM memo_refs WHERE component_id = $1"
                     " ORDER BY key", &p, "cannot list the memo references",
                     emit_memo_ref, &fn, arg);
}

int tide_pgs_memo_refs_clear(PgStore *s, int64_t component_id) {
  return tide_pgs_bulk_refs_clear(s, component_id);
}

int tide_pgs_memo_ref_exists(PgStore *s, int64_t app_id, const uint8_t *key,
                             int *used) {
  PGresult *r;
  PgParams p = {0};
  int rc;
  pg_param_int(&p, app_id);
  pg_param_fp(&p, key);
  rc = tide_pgs_read(s, PG_MEMO_REF_EXISTS,
                     "SELECT EXISTS(SELECT 1 FROM memo_refs"
                     " WHERE app_id = $1 AND key = $2)",
                     &p, "cannot read a memo reference", &r);
  if (rc) return rc;
  *used = PQgetvalue(r, 0, 0)[0] != 0;
  PQclear(r);
  return 0;
}

/* ---- Target containers ---- */

#define CONTAINER_COLUMNS \
  "id, app_id, kind, identity, spec, schema_fp, owner_id, state"

static void fill_container(const PGresult *r, int row,
                           tide_StoreContainer *c) {
  c->id = pg_int(r, row, 0);
  c->app_id = pg_int(r, row, 1);
  c->kind = pg_bytes(r, row, 2, &c->kind_len);
  c->identity = pg_bytes(r, row, 3, &c->identity_len);
  c->spec = pg_bytes(r, row, 4, &c->spec_len);
  c->schema_fp = pg_fp(r, row, 5);
  c->owner_id = pg_int(r, row, 6);
  c->state = (int)pg_int(r, row, 7);
}

static int emit_container(const PGresult *r, int row, const void *cb,
                          void *arg) {
  tide_StoreContainer c;
  fill_container(r, row, &c);
  return (*(const tide_StoreContainerFn *)cb)(arg, &c);
}

int tide_pgs_container_get_or_create(PgStore *s, int64_t app_id,
                                     const char *kind, size_t kind_len,
                                     const char *identity,
                                     size_t identity_len, int64_t *id,
                                     int *created) {
  const char *what = "cannot record a target container";
  PGresult *r;
  PgParams p = {0};
  int rc;
  if (created) *created = 0;
  pg_param_int(&p, app_id);
  pg_param_bytes(&p, kind, kind_len);
  pg_param_bytes(&p, identity, identity_len);
  rc = tide_pgs_read(s, PG_CONTAINER_FIND,
                     "SELECT id FROM containers WHERE app_id = $1"
                     " AND kind = $2 AND identity = $3",
                     &p, what, &r);
  if (rc) return rc;
  if (PQntuples(r) == 1) {
    *id = pg_int(r, 0, 0);
    PQclear(r);
    return 0;
  }
  PQclear(r);
  rc = tide_pgs_write_returning(s, PG_CONTAINER_INSERT,
                       "INSERT INTO containers(app_id, kind, identity)"
                       " VALUES($1, $2, $3) RETURNING id",
                       &p, what, id);
  if (rc) return rc;
  if (created) *created = 1;
  return 0;
}

int tide_pgs_container_get(PgStore *s, int64_t id, tide_StoreContainer *c) {
  PGresult *r;
  PgParams p;
  int rc;
  id_param(&p, id);
  rc = tide_pgs_get(s, PG_CONTAINER_GET,
                    "SELECT " CONTAINER_COLUMNS " FROM containers"
                    " WHERE id = $1",
                    &p, "cannot read a target container", &r);
  if (rc) return rc;
  fill_container(r, 0, c);
  return 0;
}

int tide_pgs_container_update(PgStore *s, const tide_StoreContainer *c) {
  PgParams p = {0};
  pg_param_int(&p, c->id);
  pg_param_bytes(&p, c->spec, c->spec_len);
  pg_param_fp(&p, c->schema_fp);
  pg_param_id(&p, c->owner_id);
  pg_param_int(&p, c->state);
  return tide_pgs_write_returning(s, PG_CONTAINER_UPDATE,
                         "UPDATE containers SET spec = $2, schema_fp = $3,"
                         " owner_id = $4, state = $5 WHERE id = $1"
                         " RETURNING id",
                         &p, "cannot update a target container", NULL);
}

int tide_pgs_container_delete(PgStore *s, int64_t id) {
  PgParams p;
  id_param(&p, id);
  return send_write(s, PG_CONTAINER_DEL,
               "WITH t AS (DELETE FROM target_states WHERE container_id = $1),"
               " i AS (DELETE FROM intents WHERE container_id = $1)"
               " DELETE FROM containers WHERE id = $1",
               &p, "cannot delete a target container");
}

int tide_pgs_container_each(PgStore *s, int64_t app_id,
                            tide_StoreContainerFn fn, void *arg) {
  PgParams p;
  id_param(&p, app_id);
  return each_row(s, PG_CONTAINER_EACH,
                  "SELECT " CONTAINER_COLUMNS " FROM containers"
                  " WHERE app_id = $1 ORDER BY kind, identity",
                  &p, "cannot list the target containers", emit_container,
                  &fn, arg);
}

/* ---- Target states ---- */

#define TARGET_COLUMNS TIDE_PG_TARGET_COLUMNS

void tide_pgs_fill_target(const PGresult *r, int row, tide_StoreTarget *t) {
  t->container_id = pg_int(r, row, 0);
  t->key = pg_bytes(r, row, 1, &t->key_len);
  t->owner_id = pg_int(r, row, 2);
  t->value_fp = pg_fp(r, row, 3);
  t->pending = (int)pg_int(r, row, 4);
  t->written_ns = pg_int(r, row, 5);
  t->written = 0;
}

static int emit_target(const PGresult *r, int row, const void *cb,
                       void *arg) {
  tide_StoreTarget t;
  tide_pgs_fill_target(r, row, &t);
  return (*(const tide_StoreTargetFn *)cb)(arg, &t);
}

/* A statement whose parameters are a container and a key. */
static void target_params(PgParams *p, int64_t container_id, const void *key,
                          size_t key_len) {
  p->n = 0;
  pg_param_int(p, container_id);
  pg_param_bytes(p, key, key_len);
}

int tide_pgs_target_put(PgStore *s, const tide_StoreTarget *t) {
  PgCell row[6];
  memset(row, 0, sizeof row);
  row[0].i = t->container_id;
  cell_bytes(&row[1], t->key, t->key_len);
  row[2].i = t->owner_id;
  cell_fp(&row[3], t->value_fp);
  row[4].i = t->pending;
  cell_id(&row[5], t->written ? tide_store_now_ns() : 0);
  return tide_pgs_bulk_row(s, PG_KIND_TARGETS, row);
}

/* A pending delete goes; any other pending state becomes applied. */
int tide_pgs_target_mark_applied(PgStore *s, int64_t container_id,
                                 const void *key, size_t key_len) {
  PgParams p;
  target_params(&p, container_id, key, key_len);
  pg_param_int(&p, tide_store_now_ns());
  return send_write(s, PG_TARGET_APPLIED,
               "WITH d AS (DELETE FROM target_states WHERE container_id = $1"
               " AND key = $2 AND pending = 2 RETURNING 1)"
               " UPDATE target_states SET pending = 0, written_ns = $3"
               " WHERE container_id = $1 AND key = $2 AND pending <> 0"
               " AND pending <> 2",
               &p, "cannot mark a target state applied");
}

int tide_pgs_targets_mark_applied(PgStore *s, int64_t container_id) {
  PgParams p;
  id_param(&p, container_id);
  pg_param_int(&p, tide_store_now_ns());
  return send_write(s, PG_TARGETS_APPLIED,
               "WITH d AS (DELETE FROM target_states WHERE container_id = $1"
               " AND pending <> 0 AND pending = 2)"
               " UPDATE target_states SET pending = 0, written_ns = $2"
               " WHERE container_id = $1 AND pending <> 0 AND pending = 1",
               &p, "cannot mark target states applied");
}

int tide_pgs_target_delete(PgStore *s, int64_t container_id, const void *key,
                           size_t key_len) {
  PgParams p;
  target_params(&p, container_id, key, key_len);
  return send_write(s, PG_TARGET_DEL,
               "DELETE FROM target_states WHERE container_id = $1"
               " AND key = $2",
               &p, "cannot delete a target state");
}

static int target_get(PgStore *s, int apart, int64_t container_id,
                      const void *key, size_t key_len, tide_StoreTarget *t) {
  PGresult *r;
  PgParams p;
  int rc;
  target_params(&p, container_id, key, key_len);
  rc = (apart ? tide_pgs_get_apart : tide_pgs_get)(
    s, PG_TARGET_GET,
    "SELECT " TARGET_COLUMNS " FROM target_states"
    " WHERE container_id = $1 AND key = $2",
    &p, "cannot read a target state", &r);
  if (rc) return rc;
  tide_pgs_fill_target(r, 0, t);
  return 0;
}

int tide_pgs_target_get(PgStore *s, int64_t container_id, const void *key,
                        size_t key_len, tide_StoreTarget *t) {
  return target_get(s, 0, container_id, key, key_len, t);
}

int tide_pgs_target_get_committed(PgStore *s, int64_t container_id,
                                  const void *key, size_t key_len,
                                  tide_StoreTarget *t) {
  return target_get(s, 1, container_id, key, key_len, t);
}

static int target_each_by_owner(PgStore *s, int apart, int64_t owner_id,
                                tide_StoreTargetFn fn, void *arg) {
  PgParams p;
  id_param(&p, owner_id);
  return each_row_of(s, apart, PG_TARGET_EACH_OWNER,
                     "SELECT " TARGET_COLUMNS " FROM target_states"
                     " WHERE owner_id = $1 ORDER BY container_id, key",
                     &p, "cannot list the target states", emit_target, &fn,
                     arg);
}

int tide_pgs_target_each_by_owner(PgStore *s, int64_t owner_id,
                                  tide_StoreTargetFn fn, void *arg) {
  return target_each_by_owner(s, 0, owner_id, fn, arg);
}

/* The committed reads (store.h) may miss the batch under way: they are
** read apart from the rows kept for it. */
int tide_pgs_target_each_by_owner_committed(PgStore *s, int64_t owner_id,
                                            tide_StoreTargetFn fn,
                                            void *arg) {
  int taken, rc = tide_pgs_ahead_take(s, owner_id, fn, arg, &taken);
  return taken ? rc : target_each_by_owner(s, 1, owner_id, fn, arg);
}

int tide_pgs_target_each_by_container(PgStore *s, int64_t container_id,
                                      tide_StoreTargetFn fn, void *arg) {
  static const int keys[] = { 1 };
  PgParams p;
  id_param(&p, container_id);
  return each_page(s, PG_TARGET_EACH_FIRST,
                   "SELECT " TARGET_COLUMNS " FROM target_states"
                   " WHERE container_id = $1 ORDER BY key" PAGE,
                   PG_TARGET_EACH_NEXT,
                   "SELECT " TARGET_COLUMNS " FROM target_states"
                   " WHERE container_id = $1 AND key > $2 ORDER BY key" PAGE,
                   &p, keys, 1, "cannot list the target states",
                   emit_target, &fn, arg);
}

static int emit_path(const PGresult *r, int row, const void *cb, void *arg) {
  size_t len;
  const char *path = pg_bytes(r, row, 0, &len);
  return (*(const tide_StorePathFn *)cb)(arg, path, len);
}

/* Released (4) and being deleted (2): states the target does not hold. */
#define OWNERS_OF \
  "SELECT DISTINCT c.path FROM target_states t" \
  " JOIN components c ON c.id = t.owner_id WHERE t.container_id = $1" \
  " AND ($2::int8 = 0 OR (t.pending <> 2 AND t.pending <> 4))"

int tide_pgs_target_owner_each(PgStore *s, int64_t container_id,
                               int held_only, tide_StorePathFn fn,
                               void *arg) {
  static const int keys[] = { 0 };
  PgParams p;
  id_param(&p, container_id);
  pg_param_int(&p, held_only != 0);
  return each_page(s, PG_TARGET_OWNERS_FIRST,
                   OWNERS_OF " ORDER BY c.path" PAGE,
                   PG_TARGET_OWNERS_NEXT,
                   OWNERS_OF " AND c.path > $3 ORDER BY c.path" PAGE,
                   &p, keys, 1, "cannot list the owners of target states",
                   emit_path, &fn, arg);
}

int tide_pgs_targets_mark_unknown(PgStore *s, int64_t container_id) {
  PgParams p;
  id_param(&p, container_id);
  return send_write(s, PG_TARGETS_UNKNOWN,
                    "UPDATE target_states SET pending = 3, value_fp = NULL"
                    " WHERE container_id = $1 AND pending <> 2"
                    " AND pending <> 4",
                    &p, "cannot mark target states unknown");
}

/* The ids as an int8[] literal (NUL-terminated) in list. */
static int ids_literal(tide_Buf *list, const int64_t *ids, size_t n) {
  char digits[24];
  size_t i;
  if (tide_buf_push(list, '{') != 0) return TIDE_ENOMEM;
  for (i = 0; i < n; i++) {
    int len = snprintf(digits, sizeof digits, "%s%lld", i ? "," : "",
                       (long long)ids[i]);
    if (tide_buf_append(list, digits, (size_t)len) != 0) return TIDE_ENOMEM;
  }
  return tide_buf_append(list, "}", 2); /* and its NUL */
}

/* Emits the rows of r in the order of ids: r is ordered by owner, and an
** owner given twice is answered twice. */
static int emit_by_owners(const PGresult *r, const int64_t *ids, size_t n,
                          tide_StoreTargetFn fn, void *arg) {
  int rows = PQntuples(r), lo, hi, row, rc = 0;
  size_t i;
  for (i = 0; i < n && rc == 0; i++) {
    /* The first row of the owner: a binary search over the owners. */
    lo = 0;
    hi = rows;
    while (lo < hi) {
      int mid = lo + (hi - lo) / 2;
      if (pg_int(r, mid, 2) < ids[i]) lo = mid + 1;
      else hi = mid;
    }
    for (row = lo; row < rows && pg_int(r, row, 2) == ids[i] && rc == 0;
         row++) {
      tide_StoreTarget t;
      tide_pgs_fill_target(r, row, &t);
      rc = fn(arg, &t);
    }
  }
  return rc;
}

int tide_pgs_target_each_by_owners(PgStore *s, const int64_t *ids, size_t n,
                                   tide_StoreTargetFn fn, void *arg) {
  tide_Buf list;
  PgParams p;
  PGresult *r;
  int rc;
  if (n == 0) return 0;
  tide_buf_init(&list, s->base.alloc, s->base.ud);
  if (ids_literal(&list, ids, n) != 0) {
    tide_buf_close(&list);
    return tide_pgs_fail(s, TIDE_ENOMEM, "out of memory");
  }
  memset(&p, 0, sizeof p);
  p.n = 1;
  p.values[0] = (const char *)list.data;
  rc = tide_pgs_read(s, PG_TARGET_EACH_OWNERS,
                     "SELECT " TARGET_COLUMNS " FROM target_states"
                     " WHERE owner_id = ANY($1::int8[])"
                     " ORDER BY owner_id, container_id, key",
                     &p, "cannot list the target states", &r);
  tide_buf_close(&list);
  if (rc) return rc;
  rc = emit_by_owners(r, ids, n, fn, arg);
  PQclear(r);
  return rc;
}

int tide_pgs_target_each_of_keys(PgStore *s, int64_t container_id,
                                 const char *const *keys, const size_t *lens,
                                 size_t n, int committed,
                                 tide_StoreTargetFn fn, void *arg) {
  PGresult *r;
  int rc, row, rows;
  if (n == 0) return 0;
  /* Committed: apart from the rows kept for the batch (store.h). */
  rc = read_id_keys(s, PG_TARGET_EACH_KEYS,
                    "SELECT " TARGET_COLUMNS " FROM target_states"
                    " WHERE container_id = $1::int8"
                    " AND key = ANY($2::bytea[]) ORDER BY key",
                    container_id, (const void *const *)keys, lens, n,
                    committed, "cannot read the target states", &r);
  if (rc) return rc;
  rows = PQntuples(r);
  for (row = 0; row < rows && rc == 0; row++) {
    tide_StoreTarget t;
    tide_pgs_fill_target(r, row, &t);
    rc = fn(arg, &t);
  }
  PQclear(r);
  return rc;
}

int tide_pgs_target_each_pending(PgStore *s, int64_t app_id,
                                 tide_StoreTargetFn fn, void *arg) {
  PgParams p;
  id_param(&p, app_id);
  return each_row(s, PG_TARGET_EACH_PENDING,
                  "SELECT t.container_id, t.key, t.owner_id, t.value_fp,"
                  " t.pending, t.written_ns FROM target_states t"
                  " JOIN containers c ON c.id = t.container_id"
                  " WHERE c.app_id = $1 AND t.pending <> 0"
                  " ORDER BY t.container_id, t.key",
                  &p, "cannot list the pending target states", emit_target,
                  &fn, arg);
}

/* ---- Intents ---- */

/* Its id is taken from a reserve, so the intent is sent with the batch's
** other writes and not waited for. */
int tide_pgs_intent_add(PgStore *s, int64_t app_id, int64_t container_id,
                        const void *keys, size_t keys_len, int64_t *id) {
  const char *what = "cannot record an intent";
  PgParams p = {0};
  int64_t given;
  int rc;
  if ((rc = tide_pgs_write_begin(s)) != 0 ||
      (rc = take_id(s, &s->intent_ids, PG_INTENT_IDS,
                    "SELECT nextval('intents_id_seq')"
                    " FROM generate_series(1, $1::int8)", what,
                    &given)) != 0)
    return rc;
  pg_param_int(&p, given);
  pg_param_int(&p, app_id);
  pg_param_int(&p, container_id);
  pg_param_bytes(&p, keys, keys_len);
  rc = tide_pgs_write(s, PG_INTENT_ADD,
                      "INSERT INTO intents(id, app_id, container_id, keys)"
                      " VALUES($1, $2, $3, $4)", &p, what);
  if (rc == 0 && id) *id = given;
  return rc;
}

int tide_pgs_intent_delete(PgStore *s, int64_t id) {
  PgParams p;
  id_param(&p, id);
  return send_write(s, PG_INTENT_DEL, "DELETE FROM intents WHERE id = $1", &p,
               "cannot delete an intent");
}

static int emit_intent(const PGresult *r, int row, const void *cb,
                       void *arg) {
  tide_StoreIntent in;
  in.id = pg_int(r, row, 0);
  in.container_id = pg_int(r, row, 1);
  in.keys = pg_bytes(r, row, 2, &in.keys_len);
  return (*(const tide_StoreIntentFn *)cb)(arg, &in);
}

int tide_pgs_intent_each(PgStore *s, int64_t app_id, tide_StoreIntentFn fn,
                         void *arg) {
  PgParams p;
  id_param(&p, app_id);
  return each_row(s, PG_INTENT_EACH,
                  "SELECT id, container_id, keys FROM intents"
                  " WHERE app_id = $1 ORDER BY id",
                  &p, "cannot list the intents", emit_intent, &fn, arg);
}

/* ---- Source items ---- */

#define SOURCE_COLUMNS \
  "app_id, source, key, size, mtime_ns, inode, content_fp"

static void fill_source(const PGresult *r, int row,
                        tide_StoreSourceItem *item) {
  item->app_id = pg_int(r, row, 0);
  item->source = pg_bytes(r, row, 1, &item->source_len);
  item->key = pg_bytes(r, row, 2, &item->key_len);
  item->size = pg_int(r, row, 3);
  item->mtime_ns = pg_int(r, row, 4);
  item->inode = pg_int(r, row, 5);
  item->content_fp = pg_fp(r, row, 6);
}

static int emit_source(const PGresult *r, int row, const void *cb,
                       void *arg) {
  tide_StoreSourceItem item;
  fill_source(r, row, &item);
  return (*(const tide_StoreSourceItemFn *)cb)(arg, &item);
}

static void source_params(PgParams *p, int64_t app_id, const char *source,
                          size_t source_len, const char *key,
                          size_t key_len) {
  p->n = 0;
  pg_param_int(p, app_id);
  pg_param_bytes(p, source, source_len);
  pg_param_bytes(p, key, key_len);
}

int tide_pgs_source_get(PgStore *s, int64_t app_id, const char *source,
                        size_t source_len, const char *key, size_t key_len,
                        tide_StoreSourceItem *item) {
  PGresult *r;
  PgParams p;
  int rc;
  source_params(&p, app_id, source, source_len, key, key_len);
  rc = tide_pgs_get(s, PG_SOURCE_GET,
                    "SELECT " SOURCE_COLUMNS " FROM source_items"
                    " WHERE app_id = $1 AND source = $2 AND key = $3",
                    &p, "cannot read a source item", &r);
  if (rc) return rc;
  fill_source(r, 0, item);
  return 0;
}

int tide_pgs_source_put(PgStore *s, const tide_StoreSourceItem *item) {
  PgCell row[7];
  memset(row, 0, sizeof row);
  row[0].i = item->app_id;
  cell_bytes(&row[1], item->source, item->source_len);
  cell_bytes(&row[2], item->key, item->key_len);
  row[3].i = item->size;
  row[4].i = item->mtime_ns;
  row[5].i = item->inode;
  cell_fp(&row[6], item->content_fp);
  return tide_pgs_bulk_row(s, PG_KIND_SOURCES, row);
}

int tide_pgs_source_delete(PgStore *s, int64_t app_id, const char *source,
                           size_t source_len, const char *key,
                           size_t key_len) {
  PgParams p;
  source_params(&p, app_id, source, source_len, key, key_len);
  return send_write(s, PG_SOURCE_DEL,
               "DELETE FROM source_items WHERE app_id = $1 AND source = $2"
               " AND key = $3",
               &p, "cannot delete a source item");
}

int tide_pgs_source_each(PgStore *s, int64_t app_id, const char *source,
                         size_t source_len, tide_StoreSourceItemFn fn,
                         void *arg) {
  static const int keys[] = { 2 };
  PgParams p = {0};
  pg_param_int(&p, app_id);
  pg_param_bytes(&p, source, source_len);
  return each_page(s, PG_SOURCE_EACH_FIRST,
                   "SELECT " SOURCE_COLUMNS " FROM source_items"
                   " WHERE app_id = $1 AND source = $2 ORDER BY key" PAGE,
                   PG_SOURCE_EACH_NEXT,
                   "SELECT " SOURCE_COLUMNS " FROM source_items"
                   " WHERE app_id = $1 AND source = $2 AND key > $3"
                   " ORDER BY key" PAGE,
                   &p, keys, 1, "cannot list the source items", emit_source,
                   &fn, arg);
}

int tide_pgs_source_each_app(PgStore *s, int64_t app_id,
                             tide_StoreSourceItemFn fn, void *arg) {
  static const int keys[] = { 1, 2 };
  PgParams p;
  id_param(&p, app_id);
  return each_page(s, PG_SOURCE_APP_FIRST,
                   "SELECT " SOURCE_COLUMNS " FROM source_items"
                   " WHERE app_id = $1 ORDER BY source, key" PAGE,
                   PG_SOURCE_APP_NEXT,
                   "SELECT " SOURCE_COLUMNS " FROM source_items"
                   " WHERE app_id = $1 AND (source, key) > ($2, $3)"
                   " ORDER BY source, key" PAGE,
                   &p, keys, 2, "cannot list the source items", emit_source,
                   &fn, arg);
}

/* ---- Run log ---- */

int tide_pgs_run_begin(PgStore *s, int64_t app_id, int64_t *run_id) {
  PgParams p = {0};
  pg_param_int(&p, app_id);
  pg_param_int(&p, tide_store_now_ns());
  pg_param_int(&p, TIDE_STORE_LOG_KEPT - 1);
  /* The statement's snapshot lacks the new run: the latest
  ** TIDE_STORE_LOG_KEPT - 1 stay beside it. */
  return tide_pgs_write_returning(s, PG_RUN_BEGIN,
                         "WITH o AS (DELETE FROM runs WHERE app_id = $1"
                         " AND id <= (SELECT id FROM runs WHERE app_id = $1"
                         " ORDER BY id DESC OFFSET $3 LIMIT 1))"
                         " INSERT INTO runs(app_id, started_ns)"
                         " VALUES($1, $2) RETURNING id",
                         &p, "cannot record a run", run_id);
}

int tide_pgs_run_finish(PgStore *s, int64_t run_id, int status,
                        const char *stats, size_t stats_len) {
  PgParams p = {0};
  pg_param_int(&p, run_id);
  pg_param_int(&p, tide_store_now_ns());
  pg_param_int(&p, status);
  pg_param_bytes(&p, stats, stats_len);
  return tide_pgs_write_returning(s, PG_RUN_FINISH,
                         "UPDATE runs SET finished_ns = $2, status = $3,"
                         " stats = $4 WHERE id = $1 RETURNING id",
                         &p, "cannot record the end of a run", NULL);
}

static int emit_run(const PGresult *r, int row, const void *cb, void *arg) {
  tide_StoreRun run;
  run.id = pg_int(r, row, 0);
  run.app_id = pg_int(r, row, 1);
  run.started_ns = pg_int(r, row, 2);
  run.finished_ns = pg_int(r, row, 3);
  run.status = (int)pg_int(r, row, 4);
  run.stats = pg_bytes(r, row, 5, &run.stats_len);
  return (*(const tide_StoreRunFn *)cb)(arg, &run);
}

int tide_pgs_run_each_latest(PgStore *s, int64_t app_id, int limit,
                             tide_StoreRunFn fn, void *arg) {
  PgParams p = {0};
  pg_param_int(&p, app_id);
  pg_param_int(&p, limit);
  return each_row(s, PG_RUN_LATEST,
                  "SELECT id, app_id, started_ns, finished_ns, status, stats"
                  " FROM runs WHERE app_id = $1 ORDER BY id DESC LIMIT $2",
                  &p, "cannot list the runs", emit_run, &fn, arg);
}
