/*
** Records as table rows, for the SQL targets (lsqlite.c's db:apply,
** lpg_copy.c's COPY data): a plan read once per batch into a scratch
** userdata, and each change { key, value } converted to column values.
**
** A plan is { table = name, columns = { { name, kind, nullable, size,
** type }... }, keys = { column indexes in key order }, staged }, where
** kind is "text", "blob", "integer", "real", "boolean", "json" (type: the
** described type to follow) or "vector" (size: its length). Values cross
** as tide_SqlValue: text and blobs borrowed from Lua or from the scratch's
** buffer (JSON text, vectors as little-endian float32s); a boolean is an
** integer 0 or 1; NULL only for a nullable column.
**
** Conversion failures are not raised: they return non-zero with the
** message, naming the change and the column, in s->err. Misuse of the
** plan raises (luaL_argcheck).
*/
#ifndef TIDE_LROWS_H
#define TIDE_LROWS_H

#include <lua.h>

#include "buf.h"
#include "json_write.h"
#include "sqlite_db.h"

/* How a column's Lua value becomes an SQL value. */
enum { TIDE_COL_TEXT, TIDE_COL_BLOB, TIDE_COL_INTEGER, TIDE_COL_REAL,
       TIDE_COL_BOOLEAN, TIDE_COL_JSON, TIDE_COL_VECTOR };

typedef struct tide_RowColumn {
  int kind;
  int nullable;
  int size; /* of a vector */
} tide_RowColumn;

/* Everything a batch needs, in one userdata so nothing leaks if Lua
** raises: the columns, the values of the current row, the bytes of its
** JSON and vector values, and the JSON writer (json_write.h). */
typedef struct tide_RowPlan {
  tide_Buf out;          /* JSON and vector bytes of the current row */
  tide_JsonWriter json;  /* writes json-typed values into out */
  tide_SqliteTable table;
  tide_SqlValue *vals;   /* ncols */
  tide_RowColumn *cols;  /* ncols */
  const char **names;    /* ncols, borrowed from the plan */
  int *keyidx;           /* nkeys */
  const char *column;    /* the column being converted, for messages */
  char err[256];
} tide_RowPlan;

/* Reads the plan at index plan into a new scratch userdata, pushed with
** the plan's column names and types as two lists (the indexes
** tide_rowplan_change takes): [-0, +3, v]. */
tide_RowPlan *tide_rowplan_push(lua_State *L, int plan);

/* What a change does (tide_rowplan_change's *is_delete). */
#define TIDE_ROW_UPSERT 0
#define TIDE_ROW_DELETE 1
#define TIDE_ROW_NONE 2 /* a delete of a key the table cannot hold */

/* Converts change i (a table at index change) into s->vals: *is_delete
** says whether it deletes (value nil: only the key's values, in key
** order, are set), upserts (every column) or does nothing: a delete of
** a key that does not fit the table's key (another count or type of key
** fields, a state written before a key change recreated the table) has
** no row to delete. names and types are the lists tide_rowplan_push
** pushed. 0, or non-zero with s->err set. The stack is as it was. */
int tide_rowplan_change(tide_RowPlan *s, lua_State *L, lua_Integer i,
                        int change, int names, int types, int *is_delete);

/* Registers the scratch's metatable (lcore's opening). */
void tide_lrows_open(lua_State *L);

#endif
