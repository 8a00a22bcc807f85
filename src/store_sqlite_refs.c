/*
** Memo references: which component used which memo entry. When a
** component runs again or is deleted, the entries it no longer uses are
** checked one by one, so collecting unused memo entries costs what
** changed, not the size of the app.
*/
#include "store_sqlite_sql.h"

int tide_sqs_memo_ref_add(SqStore *s, int64_t app_id,
                            int64_t component_id, const uint8_t *key) {
  sqlite3_stmt *st;
  const char *what = "cannot record a memo reference";
  int rc = tide_sqs_write_begin(s);
  if (rc) return rc;
  rc = tide_sqs_stmt(s, TIDE_STMT_MEMO_REF_ADD,
                       "INSERT OR IGNORE INTO memo_refs(app_id, component_id,"
                       " key) VALUES(?1, ?2, ?3)", &st);
  if (rc) return rc;
  if (bind_int(st, 1, app_id) || bind_int(st, 2, component_id) ||
      bind_fp(st, 3, key))
    return bind_failed(s, what);
  return run_write(s, st, what);
}

static int emit_ref(sqlite3_stmt *st, const void *cb, void *arg) {
  const uint8_t *key = col_fp(st, 0);
  if (key == NULL) return 0;
  return (*(const tide_StoreMemoRefFn *)cb)(arg, key);
}

int tide_sqs_memo_refs_each(SqStore *s, int64_t component_id,
                              tide_StoreMemoRefFn fn, void *arg) {
  sqlite3_stmt *st;
  const char *what = "cannot list the memo references";
  int rc = tide_sqs_stmt(s, TIDE_STMT_MEMO_REFS_EACH,
                           "SELECT key FROM memo_refs WHERE component_id = ?1"
                           " ORDER BY key", &st);
  if (rc) return rc;
  if (bind_int(st, 1, component_id)) return bind_failed(s, what);
  return each(s, st, what, emit_ref, &fn, arg);
}

int tide_sqs_memo_refs_clear(SqStore *s, int64_t component_id) {
  return write_by_id(s, TIDE_STMT_MEMO_REFS_CLEAR,
                            "DELETE FROM memo_refs WHERE component_id = ?1",
                            component_id, "cannot delete memo references");
}

int tide_sqs_memo_ref_exists(SqStore *s, int64_t app_id,
                               const uint8_t *key, int *used) {
  sqlite3_stmt *st;
  const char *what = "cannot read a memo reference";
  int rc = tide_sqs_stmt(s, TIDE_STMT_MEMO_REF_EXISTS,
                           "SELECT EXISTS(SELECT 1 FROM memo_refs"
                           " WHERE app_id = ?1 AND key = ?2)", &st);
  int64_t found = 0;
  if (rc) return rc;
  if (bind_int(st, 1, app_id) || bind_fp(st, 2, key))
    return bind_failed(s, what);
  rc = find_id(s, st, what, &found);
  if (rc) return rc;
  *used = found != 0;
  return 0;
}
