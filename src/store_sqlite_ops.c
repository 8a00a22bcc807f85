/*
** The state store's operations, each on a statement prepared once and
** cached on the store. Writes join the open batch (store_sqlite.c); gets leave
** their statement on its row so the caller borrows the column values
** without a copy; iterators step one statement through all rows.
*/
#include <string.h>

#include "store_sqlite_sql.h"

/* ---- Apps ---- */

static void fill_app(sqlite3_stmt *st, tide_StoreApp *a) {
  a->id = col_int(st, 0);
  a->name = col_text(st, 1, &a->name_len);
  a->created_ns = col_int(st, 2);
}

static int emit_app(sqlite3_stmt *st, const void *cb, void *arg) {
  tide_StoreApp a;
  fill_app(st, &a);
  return (*(const tide_StoreAppFn *)cb)(arg, &a);
}

#define APP_LOOKUP_SQL \
  "SELECT id, name, created_ns FROM apps WHERE name = ?1"

int tide_sqs_app_lookup(SqStore *s, const char *name, size_t name_len,
                          tide_StoreApp *app) {
  sqlite3_stmt *st;
  int rc = tide_sqs_stmt(s, TIDE_STMT_APP_LOOKUP, APP_LOOKUP_SQL, &st);
  if (rc) return rc;
  if (bind_text(st, 1, name, name_len))
    return bind_failed(s, "cannot read an app");
  rc = get_row(s, st, "cannot read an app");
  if (rc) return rc;
  fill_app(st, app);
  return 0;
}

int tide_sqs_app_get_or_create(SqStore *s, const char *name,
                                 size_t name_len, int64_t *id, int *created) {
  sqlite3_stmt *st;
  const char *what = "cannot record an app";
  int rc = tide_sqs_stmt(s, TIDE_STMT_APP_LOOKUP, APP_LOOKUP_SQL, &st);
  if (created) *created = 0;
  if (rc) return rc;
  if (bind_text(st, 1, name, name_len)) return bind_failed(s, what);
  rc = find_id(s, st, what, id);
  if (rc != TIDE_ENOTFOUND) return rc;
  rc = tide_sqs_write_begin(s);
  if (rc) return rc;
  rc = tide_sqs_stmt(s, TIDE_STMT_APP_INSERT,
                       "INSERT INTO apps(name, created_ns) VALUES(?1, ?2)"
                       " RETURNING id",
                       &st);
  if (rc) return rc;
  if (bind_text(st, 1, name, name_len) ||
      bind_int(st, 2, tide_store_now_ns()))
    return bind_failed(s, what);
  rc = run_returning(s, st, what, id);
  if (rc) return rc;
  tide_sqs_write_done(s);
  if (created) *created = 1;
  return 0;
}

int tide_sqs_app_each(SqStore *s, tide_StoreAppFn fn, void *arg) {
  sqlite3_stmt *st;
  int rc = tide_sqs_stmt(s, TIDE_STMT_APP_EACH,
                           "SELECT id, name, created_ns FROM apps"
                           " ORDER BY name",
                           &st);
  if (rc) return rc;
  return each(s, st, "cannot list the apps", emit_app, &fn, arg);
}

/* What deleting an app deletes, in order: target states go before the
** containers that lead to them. */
static const struct {
  int slot;
  const char *sql;
} app_deletes[] = {
  { TIDE_STMT_APP_DEL_INTENTS, "DELETE FROM intents WHERE app_id = ?1" },
  { TIDE_STMT_APP_DEL_TARGETS,
    "DELETE FROM target_states WHERE container_id IN"
    " (SELECT id FROM containers WHERE app_id = ?1)" },
  { TIDE_STMT_APP_DEL_CONTAINERS, "DELETE FROM containers WHERE app_id = ?1" },
  { TIDE_STMT_APP_DEL_MEMOS, "DELETE FROM memos WHERE app_id = ?1" },
  { TIDE_STMT_APP_DEL_MEMO_REFS,
    "DELETE FROM memo_refs WHERE app_id = ?1" },
  { TIDE_STMT_APP_DEL_COMPONENTS, "DELETE FROM components WHERE app_id = ?1" },
  { TIDE_STMT_APP_DEL_SOURCES, "DELETE FROM source_items WHERE app_id = ?1" },
  { TIDE_STMT_APP_DEL_RUNS, "DELETE FROM runs WHERE app_id = ?1" },
  { TIDE_STMT_APP_DEL_APP, "DELETE FROM apps WHERE id = ?1" },
};

int tide_sqs_app_delete(SqStore *s, int64_t app_id) {
  size_t i;
  int rc = tide_sqs_write_begin(s);
  if (rc) return rc;
  for (i = 0; i < sizeof app_deletes / sizeof app_deletes[0]; i++) {
    rc = delete_by_id(s, app_deletes[i].slot, app_deletes[i].sql, app_id,
                      "cannot delete an app");
    if (rc) return rc;
  }
  tide_sqs_write_done(s);
  return 0;
}

/* ---- Processing components ---- */

#define COMPONENT_COLUMNS                                                  \
  "id, app_id, path, parent_id, fn_name, logic_fp, input_fp, source_key,"  \
  " state, status, error, updated_ns, deps_fp"

static void fill_component(sqlite3_stmt *st, tide_StoreComponent *c) {
  c->id = col_int(st, 0);
  c->app_id = col_int(st, 1);
  c->path = col_text(st, 2, &c->path_len);
  c->parent_id = col_int(st, 3);
  c->fn_name = col_text(st, 4, &c->fn_name_len);
  c->logic_fp = col_fp(st, 5);
  c->input_fp = col_fp(st, 6);
  c->source_key = col_text(st, 7, &c->source_key_len);
  c->state = col_blob(st, 8, &c->state_len);
  c->status = (int)col_int(st, 9);
  c->error = col_text(st, 10, &c->error_len);
  c->updated_ns = col_int(st, 11);
  c->deps_fp = col_fp(st, 12);
}

static int emit_component(sqlite3_stmt *st, const void *cb, void *arg) {
  tide_StoreComponent c;
  fill_component(st, &c);
  return (*(const tide_StoreComponentFn *)cb)(arg, &c);
}

/* The columns of a component after its id, as ?2 .. ?13. */
static int bind_component(sqlite3_stmt *st, const tide_StoreComponent *c) {
  return bind_int(st, 2, c->app_id) ||
         bind_text(st, 3, c->path, c->path_len) ||
         bind_id(st, 4, c->parent_id) ||
         bind_text(st, 5, c->fn_name, c->fn_name_len) ||
         bind_fp(st, 6, c->logic_fp) || bind_fp(st, 7, c->input_fp) ||
         bind_text(st, 8, c->source_key, c->source_key_len) ||
         bind_blob(st, 9, c->state, c->state_len) ||
         bind_int(st, 10, c->status) ||
         bind_text(st, 11, c->error, c->error_len) ||
         bind_int(st, 12, tide_store_now_ns()) ||
         bind_fp(st, 13, c->deps_fp);
}

#define COMPONENT_INSERT \
  "INSERT INTO components(id, app_id, path, parent_id, fn_name, logic_fp," \
  " input_fp, source_key, state, status, error, updated_ns, deps_fp)" \
  " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)" \
  " ON CONFLICT(app_id, path) DO UPDATE SET parent_id = excluded.parent_id," \
  " fn_name = excluded.fn_name, logic_fp = excluded.logic_fp," \
  " input_fp = excluded.input_fp, source_key = excluded.source_key," \
  " state = excluded.state, status = excluded.status," \
  " error = excluded.error, updated_ns = excluded.updated_ns," \
  " deps_fp = excluded.deps_fp"

int tide_sqs_component_insert(SqStore *s, const tide_StoreComponent *c) {
  sqlite3_stmt *st;
  const char *what = "cannot record a component";
  int rc = tide_sqs_write_begin(s);
  if (rc) return rc;
  /* The path's row is updated only when it has the caller's id. */
  rc = tide_sqs_stmt(s, TIDE_STMT_COMPONENT_INSERT,
                     COMPONENT_INSERT " WHERE components.id = excluded.id",
                     &st);
  if (rc) return rc;
  if (bind_int(st, 1, c->id) || bind_component(st, c))
    return bind_failed(s, what);
  if ((rc = run(s, st, what)) != 0) return rc;
  if (sqlite3_changes(s->db) == 0)
    return tide_sqs_fail(s, TIDE_ESTORE, "%s: %s: %.*s: it is recorded "
                         "under another id (did another process write it?)",
                         s->path, what, (int)strnlen(c->path, c->path_len),
                         c->path);
  tide_sqs_write_done(s);
  return 0;
}

int tide_sqs_component_put(SqStore *s, const tide_StoreComponent *c,
                             int64_t *id) {
  sqlite3_stmt *st;
  const char *what = "cannot record a component";
  int64_t row_id = 0;
  int rc;
  if (c->id > 0) {
    rc = tide_sqs_component_insert(s, c);
    if (rc == 0 && id) *id = c->id;
    return rc;
  }
  if ((rc = tide_sqs_write_begin(s)) != 0) return rc;
  rc = tide_sqs_stmt(s, TIDE_STMT_COMPONENT_PUT, COMPONENT_INSERT, &st);
  if (rc) return rc;
  if (bind_id(st, 1, 0) || bind_component(st, c)) return bind_failed(s, what);
  /* Without RETURNING, which makes SQLite buffer the row: an insert
  ** sets the last rowid (cleared first), an update leaves it, and the
  ** updated row's id is then looked up by its unique key. */
  sqlite3_set_last_insert_rowid(s->db, 0);
  rc = run(s, st, what);
  if (rc) return rc;
  tide_sqs_write_done(s);
  row_id = sqlite3_last_insert_rowid(s->db);
  /* SQLite chose the id: the queue's counter may have handed it out. */
  if (row_id != 0) tide_sqs_forget_ids(s);
  if (row_id == 0 && id) {
    rc = tide_sqs_stmt(s, TIDE_STMT_COMPONENT_ID,
                         "SELECT id FROM components"
                         " WHERE app_id = ?1 AND path = ?2", &st);
    if (rc) return rc;
    if (bind_int(st, 1, c->app_id) || bind_text(st, 2, c->path, c->path_len))
      return bind_failed(s, what);
    if (sqlite3_step(st) != SQLITE_ROW) {
      rc = tide_sqs_fail_db(s, what);
      sqlite3_reset(st);
      return rc ? rc : TIDE_EIO;
    }
    row_id = col_int(st, 0);
    sqlite3_reset(st);
  }
  if (id) *id = row_id;
  return 0;
}

int tide_sqs_component_get(SqStore *s, int64_t app_id,
                             const char *path, size_t path_len,
                             tide_StoreComponent *c) {
  sqlite3_stmt *st;
  const char *what = "cannot read a component";
  int rc = tide_sqs_stmt(s, TIDE_STMT_COMPONENT_GET,
                           "SELECT " COMPONENT_COLUMNS " FROM components"
                           " WHERE app_id = ?1 AND path = ?2",
                           &st);
  if (rc) return rc;
  if (bind_int(st, 1, app_id) || bind_text(st, 2, path, path_len))
    return bind_failed(s, what);
  rc = get_row(s, st, what);
  if (rc) return rc;
  fill_component(st, c);
  return 0;
}

int tide_sqs_component_path(SqStore *s, int64_t id, const char **path,
                              size_t *path_len) {
  sqlite3_stmt *st;
  const char *what = "cannot read a component";
  int rc = tide_sqs_stmt(s, TIDE_STMT_COMPONENT_PATH,
                           "SELECT path FROM components WHERE id = ?1", &st);
  if (rc) return rc;
  if (bind_int(st, 1, id)) return bind_failed(s, what);
  rc = get_row(s, st, what);
  if (rc) return rc;
  *path = col_text(st, 0, path_len);
  return 0;
}

int tide_sqs_component_state(SqStore *s, int64_t id, const void **state,
                             size_t *state_len) {
  sqlite3_stmt *st;
  const char *what = "cannot read a component";
  int rc = tide_sqs_stmt(s, TIDE_STMT_COMPONENT_STATE,
                         "SELECT state FROM components WHERE id = ?1", &st);
  if (rc) return rc;
  if (bind_int(st, 1, id)) return bind_failed(s, what);
  rc = get_row(s, st, what);
  if (rc) return rc;
  *state = col_blob(st, 0, state_len);
  return 0;
}

int tide_sqs_component_delete(SqStore *s, int64_t id) {
  return write_by_id(s, TIDE_STMT_COMPONENT_DEL,
                            "DELETE FROM components WHERE id = ?1", id,
                            "cannot delete a component");
}

int tide_sqs_component_hold(SqStore *s, int64_t id) {
  return write_by_id(s, TIDE_STMT_COMPONENT_HOLD,
                     "UPDATE components SET status = 2"
                     " WHERE id = ?1 AND status = 0", id,
                     "cannot mark a component incomplete");
}

int tide_sqs_component_each(SqStore *s, int64_t app_id,
                              tide_StoreComponentFn fn, void *arg) {
  sqlite3_stmt *st;
  const char *what = "cannot list the components";
  int rc = tide_sqs_stmt(s, TIDE_STMT_COMPONENT_EACH,
                           "SELECT " COMPONENT_COLUMNS " FROM components"
                           " WHERE app_id = ?1 ORDER BY path",
                           &st);
  if (rc) return rc;
  if (bind_int(st, 1, app_id)) return bind_failed(s, what);
  return each(s, st, what, emit_component, &fn, arg);
}

static int emit_component_brief(sqlite3_stmt *st, const void *cb,
                                void *arg) {
  tide_StoreComponent c;
  memset(&c, 0, sizeof c);
  c.id = col_int(st, 0);
  c.app_id = col_int(st, 1);
  c.path = col_text(st, 2, &c.path_len);
  c.logic_fp = col_fp(st, 3);
  c.input_fp = col_fp(st, 4);
  c.deps_fp = col_fp(st, 5);
  c.status = (int)col_int(st, 6);
  return (*(const tide_StoreComponentFn *)cb)(arg, &c);
}

int tide_sqs_component_each_brief(SqStore *s, int64_t app_id,
                                    tide_StoreComponentFn fn, void *arg) {
  sqlite3_stmt *st;
  const char *what = "cannot list the components";
  /* NOT INDEXED: the (app_id, path) index would give path order at the
  ** price of a table lookup per row. */
  int rc = tide_sqs_stmt(s, TIDE_STMT_COMPONENT_EACH_BRIEF,
                           "SELECT id, app_id, path, logic_fp, input_fp,"
                           " deps_fp, status FROM components NOT INDEXED"
                           " WHERE app_id = ?1",
                           &st);
  if (rc) return rc;
  if (bind_int(st, 1, app_id)) return bind_failed(s, what);
  return each(s, st, what, emit_component_brief, &fn, arg);
}

/* A path that tide_sqs_component_each_under reads below, and whom to
** tell of what it finds. */
typedef struct {
  const char *path;
  size_t len;
  tide_StoreComponentFn fn;
  void *arg;
} Under;

static int emit_under(sqlite3_stmt *st, const void *cb, void *arg) {
  const Under *u = cb;
  size_t len;
  const char *path = col_text(st, 2, &len);
  (void)arg;
  /* Between path and path + "0" sort its siblings path + "." and the
  ** like too ('.' and NUL are below '/'). */
  if (len != u->len && path[u->len] != '/') return 0;
  return emit_component_brief(st, &u->fn, u->arg);
}

/* Each path's run of the (app_id, path) index: from the path itself to
** path + "0", '0' being the byte after '/'. */
int tide_sqs_component_each_under(SqStore *s, int64_t app_id,
                                  const char *const *paths,
                                  const size_t *lens, size_t n,
                                  tide_StoreComponentFn fn, void *arg) {
  sqlite3_stmt *st;
  const char *what = "cannot list the components";
  char *end = NULL;
  size_t i, end_size = 0;
  int rc = tide_sqs_stmt(s, TIDE_STMT_COMPONENT_EACH_UNDER,
                         "SELECT id, app_id, path, logic_fp, input_fp,"
                         " deps_fp, status FROM components"
                         " WHERE app_id = ?1 AND path >= ?2 AND path < ?3",
                         &st);
  for (i = 0; i < n && rc == 0; i++) {
    Under u;
    if (lens[i] + 1 > end_size) {
      char *grown = s->alloc(s->ud, end, end_size, lens[i] + 1);
      if (grown == NULL) {
        rc = tide_sqs_fail(s, TIDE_ENOMEM, "out of memory");
        break;
      }
      end = grown;
      end_size = lens[i] + 1;
    }
    memcpy(end, paths[i], lens[i]);
    end[lens[i]] = '0';
    u.path = paths[i];
    u.len = lens[i];
    u.fn = fn;
    u.arg = arg;
    if (bind_int(st, 1, app_id) || bind_text(st, 2, paths[i], lens[i]) ||
        bind_text(st, 3, end, lens[i] + 1)) {
      rc = bind_failed(s, what);
      sqlite3_reset(st);
      break;
    }
    rc = each(s, st, what, emit_under, &u, NULL);
  }
  if (end) s->alloc(s->ud, end, end_size, 0);
  return rc;
}

int tide_sqs_component_count(SqStore *s, int64_t app_id, int64_t max,
                             int64_t *count) {
  sqlite3_stmt *st;
  const char *what = "cannot count the components";
  int rc = tide_sqs_stmt(s, TIDE_STMT_COMPONENT_COUNT,
                           "SELECT count(*) FROM (SELECT 1 FROM components"
                           " WHERE app_id = ?1 LIMIT ?2)",
                           &st);
  if (rc) return rc;
  if (bind_int(st, 1, app_id) || bind_int(st, 2, max > 0 ? max : -1))
    return bind_failed(s, what);
  return find_id(s, st, what, count);
}

/* ---- Memo entries ---- */

int tide_sqs_memo_get(SqStore *s, int64_t app_id, const uint8_t *key,
                        tide_StoreMemo *m) {
  sqlite3_stmt *st;
  const char *what = "cannot read a memo entry";
  int rc = tide_sqs_stmt(s, TIDE_STMT_MEMO_GET,
                           "SELECT app_id, key, fn_name, value, deps,"
                           " targets, updated_ns FROM memos"
                           " WHERE app_id = ?1 AND key = ?2",
                           &st);
  if (rc) return rc;
  if (bind_int(st, 1, app_id) || bind_fp(st, 2, key))
    return bind_failed(s, what);
  rc = get_row(s, st, what);
  if (rc) return rc;
  m->app_id = col_int(st, 0);
  m->key = col_fp(st, 1);
  m->fn_name = col_text(st, 2, &m->fn_name_len);
  m->value = col_blob(st, 3, &m->value_len);
  m->deps = col_blob(st, 4, &m->deps_len);
  m->targets = col_blob(st, 5, &m->targets_len);
  m->updated_ns = col_int(st, 6);
  return 0;
}

int tide_sqs_memo_put(SqStore *s, const tide_StoreMemo *m) {
  sqlite3_stmt *st;
  const char *what = "cannot record a memo entry";
  int rc = tide_sqs_write_begin(s);
  if (rc) return rc;
  rc = tide_sqs_stmt(
    s, TIDE_STMT_MEMO_PUT,
    "INSERT INTO memos(app_id, key, fn_name, value, deps, targets,"
    " updated_ns) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    " ON CONFLICT(app_id, key) DO UPDATE SET fn_name = excluded.fn_name,"
    " value = excluded.value, deps = excluded.deps,"
    " targets = excluded.targets, updated_ns = excluded.updated_ns",
    &st);
  if (rc) return rc;
  if (bind_int(st, 1, m->app_id) || bind_fp(st, 2, m->key) ||
      bind_text(st, 3, m->fn_name, m->fn_name_len) ||
      bind_blob(st, 4, m->value, m->value_len) ||
      bind_blob(st, 5, m->deps, m->deps_len) ||
      bind_blob(st, 6, m->targets, m->targets_len) ||
      bind_int(st, 7, tide_store_now_ns()))
    return bind_failed(s, what);
  return run_write(s, st, what);
}

int tide_sqs_memo_delete(SqStore *s, int64_t app_id,
                           const uint8_t *key) {
  sqlite3_stmt *st;
  const char *what = "cannot delete a memo entry";
  int rc = tide_sqs_write_begin(s);
  if (rc) return rc;
  rc = tide_sqs_stmt(s, TIDE_STMT_MEMO_DEL,
                       "DELETE FROM memos WHERE app_id = ?1 AND key = ?2",
                       &st);
  if (rc) return rc;
  if (bind_int(st, 1, app_id) || bind_fp(st, 2, key))
    return bind_failed(s, what);
  return run_write(s, st, what);
}

int tide_sqs_memo_delete_unreferenced(SqStore *s, int64_t app_id) {
  sqlite3_stmt *st;
  const char *what = "cannot delete memo entries";
  int rc = tide_sqs_write_begin(s);
  if (rc) return rc;
  rc = tide_sqs_stmt(s, TIDE_STMT_MEMO_DEL_UNREFERENCED,
                     "DELETE FROM memos WHERE app_id = ?1 AND NOT EXISTS"
                     " (SELECT 1 FROM memo_refs r WHERE r.app_id = ?1"
                     " AND r.key = memos.key)", &st);
  if (rc) return rc;
  if (bind_int(st, 1, app_id)) return bind_failed(s, what);
  return run_write(s, st, what);
}

static int emit_memo_key(sqlite3_stmt *st, const void *cb, void *arg) {
  size_t fn_name_len;
  const char *fn_name = col_text(st, 1, &fn_name_len);
  return (*(const tide_StoreMemoKeyFn *)cb)(arg, col_fp(st, 0), fn_name,
                                            fn_name_len);
}

int tide_sqs_memo_each_key(SqStore *s, int64_t app_id,
                             tide_StoreMemoKeyFn fn, void *arg) {
  sqlite3_stmt *st;
  const char *what = "cannot list the memo entries";
  int rc = tide_sqs_stmt(s, TIDE_STMT_MEMO_EACH_KEY,
                           "SELECT key, fn_name FROM memos"
                           " WHERE app_id = ?1",
                           &st);
  if (rc) return rc;
  if (bind_int(st, 1, app_id)) return bind_failed(s, what);
  return each(s, st, what, emit_memo_key, &fn, arg);
}

/* ---- Target containers ---- */

#define CONTAINER_COLUMNS \
  "id, app_id, kind, identity, spec, schema_fp, owner_id, state"

static void fill_container(sqlite3_stmt *st, tide_StoreContainer *c) {
  c->id = col_int(st, 0);
  c->app_id = col_int(st, 1);
  c->kind = col_text(st, 2, &c->kind_len);
  c->identity = col_text(st, 3, &c->identity_len);
  c->spec = col_blob(st, 4, &c->spec_len);
  c->schema_fp = col_fp(st, 5);
  c->owner_id = col_int(st, 6);
  c->state = (int)col_int(st, 7);
}

static int emit_container(sqlite3_stmt *st, const void *cb, void *arg) {
  tide_StoreContainer c;
  fill_container(st, &c);
  return (*(const tide_StoreContainerFn *)cb)(arg, &c);
}

int tide_sqs_container_get_or_create(SqStore *s, int64_t app_id,
                                       const char *kind, size_t kind_len,
                                       const char *identity,
                                       size_t identity_len, int64_t *id,
                                       int *created) {
  sqlite3_stmt *st;
  const char *what = "cannot record a target container";
  int rc = tide_sqs_stmt(s, TIDE_STMT_CONTAINER_FIND,
                           "SELECT id FROM containers WHERE app_id = ?1"
                           " AND kind = ?2 AND identity = ?3",
                           &st);
  if (created) *created = 0;
  if (rc) return rc;
  if (bind_int(st, 1, app_id) || bind_text(st, 2, kind, kind_len) ||
      bind_text(st, 3, identity, identity_len))
    return bind_failed(s, what);
  rc = find_id(s, st, what, id);
  if (rc != TIDE_ENOTFOUND) return rc;
  rc = tide_sqs_write_begin(s);
  if (rc) return rc;
  rc = tide_sqs_stmt(s, TIDE_STMT_CONTAINER_INSERT,
                       "INSERT INTO containers(app_id, kind, identity)"
                       " VALUES(?1, ?2, ?3) RETURNING id",
                       &st);
  if (rc) return rc;
  if (bind_int(st, 1, app_id) || bind_text(st, 2, kind, kind_len) ||
      bind_text(st, 3, identity, identity_len))
    return bind_failed(s, what);
  rc = run_returning(s, st, what, id);
  if (rc) return rc;
  tide_sqs_write_done(s);
  if (created) *created = 1;
  return 0;
}

int tide_sqs_container_get(SqStore *s, int64_t id,
                             tide_StoreContainer *c) {
  sqlite3_stmt *st;
  const char *what = "cannot read a target container";
  int rc = tide_sqs_stmt(s, TIDE_STMT_CONTAINER_GET,
                           "SELECT " CONTAINER_COLUMNS " FROM containers"
                           " WHERE id = ?1",
                           &st);
  if (rc) return rc;
  if (bind_int(st, 1, id)) return bind_failed(s, what);
  rc = get_row(s, st, what);
  if (rc) return rc;
  fill_container(st, c);
  return 0;
}

int tide_sqs_container_update(SqStore *s,
                                const tide_StoreContainer *c) {
  sqlite3_stmt *st;
  const char *what = "cannot record a target container";
  int rc = tide_sqs_write_begin(s);
  if (rc) return rc;
  rc = tide_sqs_stmt(s, TIDE_STMT_CONTAINER_UPDATE,
                       "UPDATE containers SET spec = ?2, schema_fp = ?3,"
                       " owner_id = ?4, state = ?5 WHERE id = ?1",
                       &st);
  if (rc) return rc;
  if (bind_int(st, 1, c->id) || bind_blob(st, 2, c->spec, c->spec_len) ||
      bind_fp(st, 3, c->schema_fp) || bind_id(st, 4, c->owner_id) ||
      bind_int(st, 5, c->state))
    return bind_failed(s, what);
  rc = run(s, st, what);
  if (rc) return rc;
  if (sqlite3_changes(s->db) == 0) return TIDE_ENOTFOUND;
  tide_sqs_write_done(s);
  return 0;
}

int tide_sqs_container_delete(SqStore *s, int64_t id) {
  const char *what = "cannot delete a target container";
  int rc = tide_sqs_write_begin(s);
  if (rc) return rc;
  rc = delete_by_id(s, TIDE_STMT_CONTAINER_DEL_TARGETS,
                    "DELETE FROM target_states WHERE container_id = ?1", id,
                    what);
  if (rc) return rc;
  rc = delete_by_id(s, TIDE_STMT_CONTAINER_DEL_INTENTS,
                    "DELETE FROM intents WHERE container_id = ?1", id, what);
  if (rc) return rc;
  rc = delete_by_id(s, TIDE_STMT_CONTAINER_DEL,
                    "DELETE FROM containers WHERE id = ?1", id, what);
  if (rc) return rc;
  tide_sqs_write_done(s);
  return 0;
}

int tide_sqs_container_each(SqStore *s, int64_t app_id,
                              tide_StoreContainerFn fn, void *arg) {
  sqlite3_stmt *st;
  const char *what = "cannot list the target containers";
  int rc = tide_sqs_stmt(s, TIDE_STMT_CONTAINER_EACH,
                           "SELECT " CONTAINER_COLUMNS " FROM containers"
                           " WHERE app_id = ?1 ORDER BY kind, identity",
                           &st);
  if (rc) return rc;
  if (bind_int(st, 1, app_id)) return bind_failed(s, what);
  return each(s, st, what, emit_container, &fn, arg);
}

/* ---- Target states ---- */

#define TARGET_COLUMNS \
  "container_id, key, owner_id, value_fp, pending, written_ns"

static void fill_target(sqlite3_stmt *st, tide_StoreTarget *t) {
  t->container_id = col_int(st, 0);
  t->key = col_blob(st, 1, &t->key_len);
  t->owner_id = col_int(st, 2);
  t->value_fp = col_fp(st, 3);
  t->pending = (int)col_int(st, 4);
  t->written_ns = col_int(st, 5);
  t->written = 0;
}

static int emit_target(sqlite3_stmt *st, const void *cb, void *arg) {
  tide_StoreTarget t;
  fill_target(st, &t);
  return (*(const tide_StoreTargetFn *)cb)(arg, &t);
}

int tide_sqs_target_put(SqStore *s, const tide_StoreTarget *t) {
  sqlite3_stmt *st;
  const char *what = "cannot record a target state";
  int rc = tide_sqs_write_begin(s);
  if (rc) return rc;
  rc = tide_sqs_stmt(
    s, TIDE_STMT_TARGET_PUT,
    "INSERT INTO target_states(container_id, key, owner_id, value_fp,"
    " pending, written_ns) VALUES(?1, ?2, ?3, ?4, ?5, ?6)"
    " ON CONFLICT(container_id, key) DO UPDATE SET"
    " owner_id = excluded.owner_id, value_fp = excluded.value_fp,"
    " pending = excluded.pending,"
    " written_ns = coalesce(excluded.written_ns, written_ns)",
    &st);
  if (rc) return rc;
  if (bind_int(st, 1, t->container_id) ||
      bind_blob(st, 2, t->key, t->key_len) || bind_int(st, 3, t->owner_id) ||
      bind_fp(st, 4, t->value_fp) || bind_int(st, 5, t->pending) ||
      bind_id(st, 6, t->written ? tide_store_now_ns() : 0))
    return bind_failed(s, what);
  return run_write(s, st, what);
}

/* Binds (container_id, key) as parameters 1 and 2 of the statement. */
static int target_stmt(SqStore *s, int slot, const char *sql,
                       int64_t container_id, const void *key,
                       size_t key_len, const char *what, sqlite3_stmt **st) {
  int rc = tide_sqs_stmt(s, slot, sql, st);
  if (rc) return rc;
  if (bind_int(*st, 1, container_id) || bind_blob(*st, 2, key, key_len))
    return bind_failed(s, what);
  return 0;
}

int tide_sqs_target_mark_applied(SqStore *s, int64_t container_id,
                                   const void *key, size_t key_len) {
  sqlite3_stmt *st;
  const char *what = "cannot mark a target state applied";
  int rc = tide_sqs_write_begin(s);
  if (rc) return rc;
  rc = target_stmt(s, TIDE_STMT_TARGET_APPLIED_DEL,
                   "DELETE FROM target_states WHERE container_id = ?1"
                   " AND key = ?2 AND pending = 2",
                   container_id, key, key_len, what, &st);
  if (rc) return rc;
  rc = run(s, st, what);
  if (rc) return rc;
  if (sqlite3_changes(s->db) == 0) {
    rc = target_stmt(s, TIDE_STMT_TARGET_APPLIED_SET,
                     "UPDATE target_states SET pending = 0, written_ns = ?3"
                     " WHERE container_id = ?1 AND key = ?2"
                     " AND pending <> 0",
                     container_id, key, key_len, what, &st);
    if (rc) return rc;
    if (bind_int(st, 3, tide_store_now_ns())) return bind_failed(s, what);
    rc = run(s, st, what);
    if (rc) return rc;
  }
  tide_sqs_write_done(s);
  return 0;
}

int tide_sqs_targets_mark_applied(SqStore *s, int64_t container_id) {
  sqlite3_stmt *st;
  const char *what = "cannot mark target states applied";
  int rc = tide_sqs_write_begin(s);
  if (rc) return rc;
  /* Only the pending states, through their partial index: SQLite's
  ** planner would otherwise walk every state of the container. */
  rc = tide_sqs_stmt(s, TIDE_STMT_TARGETS_APPLIED_DEL,
                       "DELETE FROM target_states"
                       " INDEXED BY target_states_pending"
                       " WHERE container_id = ?1 AND pending <> 0"
                       " AND pending = 2", &st);
  if (rc) return rc;
  if (bind_int(st, 1, container_id)) return bind_failed(s, what);
  if ((rc = run(s, st, what)) != 0) return rc;
  rc = tide_sqs_stmt(s, TIDE_STMT_TARGETS_APPLIED_SET,
                       "UPDATE target_states INDEXED BY target_states_pending"
                       " SET pending = 0, written_ns = ?2"
                       " WHERE container_id = ?1 AND pending <> 0"
                       " AND pending = 1", &st);
  if (rc) return rc;
  if (bind_int(st, 1, container_id) || bind_int(st, 2, tide_store_now_ns()))
    return bind_failed(s, what);
  if ((rc = run(s, st, what)) != 0) return rc;
  tide_sqs_write_done(s);
  return 0;
}

int tide_sqs_target_delete(SqStore *s, int64_t container_id,
                             const void *key, size_t key_len) {
  sqlite3_stmt *st;
  const char *what = "cannot delete a target state";
  int rc = tide_sqs_write_begin(s);
  if (rc) return rc;
  rc = target_stmt(s, TIDE_STMT_TARGET_DEL,
                   "DELETE FROM target_states WHERE container_id = ?1"
                   " AND key = ?2",
                   container_id, key, key_len, what, &st);
  if (rc) return rc;
  return run_write(s, st, what);
}

int tide_sqs_target_get(SqStore *s, int64_t container_id,
                          const void *key, size_t key_len,
                          tide_StoreTarget *t) {
  sqlite3_stmt *st;
  const char *what = "cannot read a target state";
  int rc = target_stmt(s, TIDE_STMT_TARGET_GET,
                       "SELECT " TARGET_COLUMNS " FROM target_states"
                       " WHERE container_id = ?1 AND key = ?2",
                       container_id, key, key_len, what, &st);
  if (rc) return rc;
  rc = get_row(s, st, what);
  if (rc) return rc;
  fill_target(st, t);
  return 0;
}

/* Iterates a target state query with one integer parameter. */
static int target_each(SqStore *s, int slot, const char *sql, int64_t v,
                       const char *what, tide_StoreTargetFn fn, void *arg) {
  sqlite3_stmt *st;
  int rc = tide_sqs_stmt(s, slot, sql, &st);
  if (rc) return rc;
  if (bind_int(st, 1, v)) return bind_failed(s, what);
  return each(s, st, what, emit_target, &fn, arg);
}

int tide_sqs_target_each_by_owner(SqStore *s, int64_t owner_id,
                                    tide_StoreTargetFn fn, void *arg) {
  return target_each(s, TIDE_STMT_TARGET_EACH_OWNER,
                     "SELECT " TARGET_COLUMNS " FROM target_states"
                     " WHERE owner_id = ?1 ORDER BY container_id, key",
                     owner_id, "cannot list the target states", fn, arg);
}

/* Reads of the committed state: on the store's connection when no batch
** is in flight (what is queued runs first, as for any read), on the
** reader otherwise. */
int tide_sqs_target_get_committed(SqStore *s, int64_t container_id,
                                  const void *key, size_t key_len,
                                  tide_StoreTarget *t) {
  sqlite3_stmt *st;
  int rc;
  if (!s->in_flight)
    return tide_sqs_target_get(s, container_id, key, key_len, t);
  rc = tide_sqs_reader_stmt(s, TIDE_READER_TARGET_GET,
                            "SELECT " TARGET_COLUMNS " FROM target_states"
                            " WHERE container_id = ?1 AND key = ?2", &st);
  if (rc) return rc;
  if (bind_int(st, 1, container_id) || bind_blob(st, 2, key, key_len))
    return tide_sqs_reader_fail(s, "cannot read a target state");
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    fill_target(st, t);
    tide_sqs_reader_hold(s, st);
    return 0;
  }
  if (rc == SQLITE_DONE) rc = TIDE_ENOTFOUND;
  else rc = tide_sqs_reader_fail(s, "cannot read a target state");
  sqlite3_reset(st);
  return rc;
}

int tide_sqs_target_each_by_owner_committed(SqStore *s, int64_t owner_id,
                                            tide_StoreTargetFn fn,
                                            void *arg) {
  const char *what = "cannot list the target states";
  sqlite3_stmt *st;
  int rc;
  if (!s->in_flight)
    return tide_sqs_target_each_by_owner(s, owner_id, fn, arg);
  rc = tide_sqs_reader_stmt(s, TIDE_READER_TARGET_EACH_OWNER,
                            "SELECT " TARGET_COLUMNS " FROM target_states"
                            " WHERE owner_id = ?1"
                            " ORDER BY container_id, key", &st);
  if (rc) return rc;
  if (bind_int(st, 1, owner_id)) return tide_sqs_reader_fail(s, what);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    tide_StoreTarget t;
    fill_target(st, &t);
    if ((rc = fn(arg, &t)) != 0) {
      sqlite3_reset(st);
      return rc;
    }
  }
  rc = rc == SQLITE_DONE ? 0 : tide_sqs_reader_fail(s, what);
  sqlite3_reset(st);
  return rc;
}

int tide_sqs_target_each_by_container(SqStore *s, int64_t container_id,
                                        tide_StoreTargetFn fn, void *arg) {
  return target_each(s, TIDE_STMT_TARGET_EACH_CONTAINER,
                     "SELECT " TARGET_COLUMNS " FROM target_states"
                     " WHERE container_id = ?1 ORDER BY key",
                     container_id, "cannot list the target states", fn, arg);
}

int tide_sqs_target_each_pending(SqStore *s, int64_t app_id,
                                   tide_StoreTargetFn fn, void *arg) {
  return target_each(s, TIDE_STMT_TARGET_EACH_PENDING,
                     "SELECT t.container_id, t.key, t.owner_id, t.value_fp,"
                     " t.pending, t.written_ns"
                     " FROM containers c JOIN target_states t"
                     " INDEXED BY target_states_pending"
                     " ON t.container_id = c.id"
                     " WHERE c.app_id = ?1 AND t.pending <> 0"
                     " ORDER BY t.container_id, t.key",
                     app_id, "cannot list the pending target states", fn, arg);
}

static int emit_path(sqlite3_stmt *st, const void *cb, void *arg) {
  size_t len;
  const char *path = col_text(st, 0, &len);
  return (*(const tide_StorePathFn *)cb)(arg, path, len);
}

/* Released (4) and being deleted (2): states the target does not hold. */
int tide_sqs_target_owner_each(SqStore *s, int64_t container_id,
                               int held_only, tide_StorePathFn fn,
                               void *arg) {
  sqlite3_stmt *st;
  const char *what = "cannot list the owners of target states";
  int rc = tide_sqs_stmt(s, TIDE_STMT_TARGET_OWNERS,
                         "SELECT DISTINCT c.path FROM target_states t"
                         " JOIN components c ON c.id = t.owner_id"
                         " WHERE t.container_id = ?1 AND (?2 = 0"
                         " OR (t.pending <> 2 AND t.pending <> 4))"
                         " ORDER BY c.path", &st);
  if (rc) return rc;
  if (bind_int(st, 1, container_id) || bind_int(st, 2, held_only != 0))
    return bind_failed(s, what);
  return each(s, st, what, emit_path, &fn, arg);
}

int tide_sqs_targets_mark_unknown(SqStore *s, int64_t container_id) {
  sqlite3_stmt *st;
  const char *what = "cannot mark target states unknown";
  int rc = tide_sqs_write_begin(s);
  if (rc) return rc;
  rc = tide_sqs_stmt(s, TIDE_STMT_TARGETS_UNKNOWN,
                     "UPDATE target_states SET pending = 3, value_fp = NULL"
                     " WHERE container_id = ?1 AND pending <> 2"
                     " AND pending <> 4", &st);
  if (rc) return rc;
  if (bind_int(st, 1, container_id)) return bind_failed(s, what);
  if ((rc = run(s, st, what)) != 0) return rc;
  tide_sqs_write_done(s);
  return 0;
}

/* ---- Source items ---- */

static void fill_source(sqlite3_stmt *st, tide_StoreSourceItem *item) {
  item->app_id = col_int(st, 0);
  item->source = col_text(st, 1, &item->source_len);
  item->key = col_text(st, 2, &item->key_len);
  item->size = col_int(st, 3);
  item->mtime_ns = col_int(st, 4);
  item->inode = col_int(st, 5);
  item->content_fp = col_fp(st, 6);
}

static int emit_source(sqlite3_stmt *st, const void *cb, void *arg) {
  tide_StoreSourceItem item;
  fill_source(st, &item);
  return (*(const tide_StoreSourceItemFn *)cb)(arg, &item);
}

#define SOURCE_COLUMNS \
  "app_id, source, key, size, mtime_ns, inode, content_fp"

int tide_sqs_source_get(SqStore *s, int64_t app_id, const char *source,
                          size_t source_len, const char *key, size_t key_len,
                          tide_StoreSourceItem *item) {
  sqlite3_stmt *st;
  const char *what = "cannot read a source item";
  int rc = tide_sqs_stmt(s, TIDE_STMT_SOURCE_GET,
                           "SELECT " SOURCE_COLUMNS " FROM source_items"
                           " WHERE app_id = ?1 AND source = ?2 AND key = ?3",
                           &st);
  if (rc) return rc;
  if (bind_int(st, 1, app_id) || bind_text(st, 2, source, source_len) ||
      bind_text(st, 3, key, key_len))
    return bind_failed(s, what);
  rc = get_row(s, st, what);
  if (rc) return rc;
  fill_source(st, item);
  return 0;
}

int tide_sqs_source_put(SqStore *s, const tide_StoreSourceItem *item) {
  sqlite3_stmt *st;
  const char *what = "cannot record a source item";
  int rc = tide_sqs_write_begin(s);
  if (rc) return rc;
  rc = tide_sqs_stmt(
    s, TIDE_STMT_SOURCE_PUT,
    "INSERT INTO source_items(" SOURCE_COLUMNS ")"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    " ON CONFLICT(app_id, source, key) DO UPDATE SET size = excluded.size,"
    " mtime_ns = excluded.mtime_ns, inode = excluded.inode,"
    " content_fp = excluded.content_fp",
    &st);
  if (rc) return rc;
  if (bind_int(st, 1, item->app_id) ||
      bind_text(st, 2, item->source, item->source_len) ||
      bind_text(st, 3, item->key, item->key_len) ||
      bind_int(st, 4, item->size) ||
      bind_int(st, 5, item->mtime_ns) || bind_int(st, 6, item->inode) ||
      bind_fp(st, 7, item->content_fp))
    return bind_failed(s, what);
  return run_write(s, st, what);
}

int tide_sqs_source_delete(SqStore *s, int64_t app_id,
                             const char *source, size_t source_len,
                             const char *key, size_t key_len) {
  sqlite3_stmt *st;
  const char *what = "cannot delete a source item";
  int rc = tide_sqs_write_begin(s);
  if (rc) return rc;
  rc = tide_sqs_stmt(s, TIDE_STMT_SOURCE_DEL,
                       "DELETE FROM source_items WHERE app_id = ?1"
                       " AND source = ?2 AND key = ?3",
                       &st);
  if (rc) return rc;
  if (bind_int(st, 1, app_id) || bind_text(st, 2, source, source_len) ||
      bind_text(st, 3, key, key_len))
    return bind_failed(s, what);
  return run_write(s, st, what);
}

int tide_sqs_source_each(SqStore *s, int64_t app_id, const char *source,
                           size_t source_len, tide_StoreSourceItemFn fn,
                           void *arg) {
  sqlite3_stmt *st;
  const char *what = "cannot list the source items";
  int rc = tide_sqs_stmt(s, TIDE_STMT_SOURCE_EACH,
                           "SELECT " SOURCE_COLUMNS " FROM source_items"
                           " WHERE app_id = ?1 AND source = ?2 ORDER BY key",
                           &st);
  if (rc) return rc;
  if (bind_int(st, 1, app_id) || bind_text(st, 2, source, source_len))
    return bind_failed(s, what);
  return each(s, st, what, emit_source, &fn, arg);
}

int tide_sqs_source_each_app(SqStore *s, int64_t app_id,
                               tide_StoreSourceItemFn fn, void *arg) {
  sqlite3_stmt *st;
  const char *what = "cannot list the source items";
  int rc = tide_sqs_stmt(s, TIDE_STMT_SOURCE_EACH_APP,
                           "SELECT " SOURCE_COLUMNS " FROM source_items"
                           " WHERE app_id = ?1 ORDER BY source, key",
                           &st);
  if (rc) return rc;
  if (bind_int(st, 1, app_id)) return bind_failed(s, what);
  return each(s, st, what, emit_source, &fn, arg);
}

/* ---- Run log ---- */

static int emit_run(sqlite3_stmt *st, const void *cb, void *arg) {
  tide_StoreRun r;
  r.id = col_int(st, 0);
  r.app_id = col_int(st, 1);
  r.started_ns = col_int(st, 2);
  r.finished_ns = col_int(st, 3);
  r.status = (int)col_int(st, 4);
  r.stats = col_text(st, 5, &r.stats_len);
  return (*(const tide_StoreRunFn *)cb)(arg, &r);
}

int tide_sqs_run_begin(SqStore *s, int64_t app_id, int64_t *run_id) {
  sqlite3_stmt *st;
  const char *what = "cannot record the start of a run";
  int rc = tide_sqs_write_begin(s);
  if (rc) return rc;
  rc = tide_sqs_stmt(s, TIDE_STMT_RUN_BEGIN,
                       "INSERT INTO runs(app_id, started_ns) VALUES(?1, ?2)"
                       " RETURNING id",
                       &st);
  if (rc) return rc;
  if (bind_int(st, 1, app_id) || bind_int(st, 2, tide_store_now_ns()))
    return bind_failed(s, what);
  rc = run_returning(s, st, what, run_id);
  if (rc) return rc;
  /* The new run is the first by id: those from TIDE_STORE_LOG_KEPT on go. */
  rc = tide_sqs_stmt(s, TIDE_STMT_RUN_TRIM,
                     "DELETE FROM runs WHERE app_id = ?1 AND id <= (SELECT id"
                     " FROM runs WHERE app_id = ?1 ORDER BY id DESC"
                     " LIMIT 1 OFFSET ?2)",
                     &st);
  if (rc) return rc;
  if (bind_int(st, 1, app_id) || bind_int(st, 2, TIDE_STORE_LOG_KEPT))
    return bind_failed(s, what);
  rc = run(s, st, what);
  if (rc) return rc;
  tide_sqs_write_done(s);
  return 0;
}

int tide_sqs_run_finish(SqStore *s, int64_t run_id, int status,
                          const char *stats, size_t stats_len) {
  sqlite3_stmt *st;
  const char *what = "cannot record the end of a run";
  int rc = tide_sqs_write_begin(s);
  if (rc) return rc;
  rc = tide_sqs_stmt(s, TIDE_STMT_RUN_FINISH,
                       "UPDATE runs SET finished_ns = ?2, status = ?3,"
                       " stats = ?4 WHERE id = ?1",
                       &st);
  if (rc) return rc;
  if (bind_int(st, 1, run_id) || bind_int(st, 2, tide_store_now_ns()) ||
      bind_int(st, 3, status) || bind_text(st, 4, stats, stats_len))
    return bind_failed(s, what);
  rc = run(s, st, what);
  if (rc) return rc;
  if (sqlite3_changes(s->db) == 0) return TIDE_ENOTFOUND;
  tide_sqs_write_done(s);
  return 0;
}

int tide_sqs_run_each_latest(SqStore *s, int64_t app_id, int limit,
                               tide_StoreRunFn fn, void *arg) {
  sqlite3_stmt *st;
  const char *what = "cannot list the runs";
  int rc = tide_sqs_stmt(s, TIDE_STMT_RUN_LATEST,
                           "SELECT id, app_id, started_ns, finished_ns,"
                           " status, stats FROM runs WHERE app_id = ?1"
                           " ORDER BY id DESC LIMIT ?2",
                           &st);
  if (rc) return rc;
  if (bind_int(st, 1, app_id) || bind_int(st, 2, limit))
    return bind_failed(s, what);
  return each(s, st, what, emit_run, &fn, arg);
}
