/*
** Intents: a batch of upserts to one container that is being applied
** (the crash protocol, reconcile.lua). The states of the batch are written
** applied, in the same transaction as one intent row naming their keys;
** once the target holds them, the row is deleted. A row left behind by a
** crash says that every state it names may not be in the target.
*/
#include "store_sqlite_sql.h"

int tide_sqs_intent_add(SqStore *s, int64_t id, int64_t app_id,
                        int64_t container_id, const void *keys,
                        size_t keys_len) {
  sqlite3_stmt *st;
  const char *what = "cannot record an intent";
  int rc = tide_sqs_write_begin(s);
  if (rc) return rc;
  rc = tide_sqs_stmt(s, TIDE_STMT_INTENT_ADD,
                       "INSERT INTO intents(id, app_id, container_id, keys)"
                       " VALUES(?1, ?2, ?3, ?4)", &st);
  if (rc) return rc;
  if (bind_int(st, 1, id) || bind_int(st, 2, app_id) ||
      bind_int(st, 3, container_id) || bind_blob(st, 4, keys, keys_len))
    return bind_failed(s, what);
  return run_write(s, st, what);
}

int tide_sqs_intent_delete(SqStore *s, int64_t id) {
  return write_by_id(s, TIDE_STMT_INTENT_DEL,
                            "DELETE FROM intents WHERE id = ?1", id,
                            "cannot delete an intent");
}

static int emit_intent(sqlite3_stmt *st, const void *cb, void *arg) {
  tide_StoreIntent in;
  in.id = col_int(st, 0);
  in.container_id = col_int(st, 1);
  in.keys = col_blob(st, 2, &in.keys_len);
  return (*(const tide_StoreIntentFn *)cb)(arg, &in);
}

int tide_sqs_intent_each(SqStore *s, int64_t app_id,
                           tide_StoreIntentFn fn, void *arg) {
  sqlite3_stmt *st;
  const char *what = "cannot list the intents";
  int rc = tide_sqs_stmt(s, TIDE_STMT_INTENT_EACH,
                           "SELECT id, container_id, keys FROM intents"
                           " WHERE app_id = ?1 ORDER BY id", &st);
  if (rc) return rc;
  if (bind_int(st, 1, app_id)) return bind_failed(s, what);
  return each(s, st, what, emit_intent, &fn, arg);
}
