/*
** The vector SQL functions (sqlite_vec.h). Built into tide, they register
** through tide_sqlite_vec_register; built with TIDE_VEC_EXTENSION, the
** same code is the loadable extension tide_vec.so, whose entry point
** SQLite finds from the file name (sqlite3_tidevec_init).
*/
#ifdef TIDE_VEC_EXTENSION
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1
#else
#include "sqlite_vec.h"
#endif

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vec.h"

/* A vector argument: its float32 bytes and dimension. `owned` is a
** buffer made from JSON text, freed by vec_free. */
typedef struct {
  const void *bytes;
  size_t n;
  void *owned;
} Vec;

static void vec_free(Vec *v) { sqlite3_free(v->owned); }

static const char *const type_names[] = {"", "integer", "real", "text",
                                         "blob", "null"};

/* Whether s..end holds only what a JSON number may (strtod also reads
** hexadecimal, "inf" and "nan"). */
static int json_number(const char *s, const char *end) {
  for (; s < end; s++)
    if (strchr("0123456789+-.eE", *s) == NULL) return 0;
  return 1;
}

/* Parses '[1, 2.5, ...]' into little-endian float32s. 0, or -1 with the
** reason in why. */
static int parse_json(const char *s, Vec *v, const char **why) {
  size_t cap = 16, n = 0;
  unsigned char *out = sqlite3_malloc(cap * 4);
  char *end;
  if (out == NULL) return *why = "out of memory", -1;
  while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
  if (*s++ != '[') goto bad;
  for (;;) {
    double d;
    float f;
    uint32_t u;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
    if (n == 0 && *s == ']') break;
    d = strtod(s, &end);
    if (end == s || !json_number(s, end)) goto bad;
    if (!(d >= -FLT_MAX && d <= FLT_MAX)) {
      sqlite3_free(out);
      return *why = "a number is not a finite float32", -1;
    }
    if (n == cap) {
      unsigned char *grown = sqlite3_realloc(out, (int)(cap * 2 * 4));
      if (grown == NULL) {
        sqlite3_free(out);
        return *why = "out of memory", -1;
      }
      out = grown;
      cap *= 2;
    }
    f = (float)d;
    memcpy(&u, &f, sizeof u);
    out[4 * n] = (unsigned char)u;
    out[4 * n + 1] = (unsigned char)(u >> 8);
    out[4 * n + 2] = (unsigned char)(u >> 16);
    out[4 * n + 3] = (unsigned char)(u >> 24);
    n++;
    for (s = end; *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r';) s++;
    if (*s == ',') {
      s++;
      continue;
    }
    if (*s != ']') goto bad;
    break;
  }
  for (s++; *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r';) s++;
  if (*s != '\0') goto bad;
  v->bytes = out;
  v->n = n;
  v->owned = out;
  return 0;
bad:
  sqlite3_free(out);
  return *why = "text that is not a JSON array of numbers", -1;
}

/* Reads argument i (from 0) of function name into v. 1 when it is a
** vector, 0 when it is NULL, -1 after setting the error. */
static int arg_vec(sqlite3_context *ctx, sqlite3_value *arg, int i,
                   const char *name, Vec *v) {
  int type = sqlite3_value_type(arg);
  const char *why = NULL;
  char msg[160];
  long dims;
  v->owned = NULL;
  if (type == SQLITE_NULL) return 0;
  if (type == SQLITE_BLOB) {
    size_t size = (size_t)sqlite3_value_bytes(arg);
    v->bytes = sqlite3_value_blob(arg);
    if ((dims = tide_vec_dims(size)) >= 0) {
      v->n = (size_t)dims;
      return 1;
    }
    snprintf(msg, sizeof msg, "%s: argument %d is not a vector: %zu bytes "
             "are not a whole number of float32s", name, i + 1, size);
  } else if (type == SQLITE_TEXT) {
    const char *text = (const char *)sqlite3_value_text(arg);
    if (text == NULL) {
      sqlite3_result_error_nomem(ctx);
      return -1;
    }
    if (parse_json(text, v, &why) == 0) return 1;
    snprintf(msg, sizeof msg, "%s: argument %d is not a vector: %s", name,
             i + 1, why);
  } else {
    snprintf(msg, sizeof msg, "%s: argument %d is not a vector (a BLOB of "
             "float32s or a JSON array), got %s", name, i + 1,
             type_names[type]);
  }
  sqlite3_result_error(ctx, msg, -1);
  return -1;
}

enum { DOT, L2, COSINE };

/* vec_dot, vec_distance_l2, vec_distance_cosine: which is user data. */
static void distance(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  static const char *const names[] = {"vec_dot", "vec_distance_l2",
                                      "vec_distance_cosine"};
  int which = *(const int *)sqlite3_user_data(ctx), ra, rb, undefined = 0;
  const char *name = names[which];
  Vec a, b;
  double d;
  (void)argc;
  if ((ra = arg_vec(ctx, argv[0], 0, name, &a)) < 0) return;
  if ((rb = arg_vec(ctx, argv[1], 1, name, &b)) < 0) {
    vec_free(&a);
    return;
  }
  if (ra == 0 || rb == 0) {
    sqlite3_result_null(ctx);
  } else if (a.n != b.n) {
    char msg[120];
    snprintf(msg, sizeof msg, "%s: vectors of %zu and %zu dimensions", name,
             a.n, b.n);
    sqlite3_result_error(ctx, msg, -1);
  } else {
    d = which == DOT  ? tide_vec_dot(a.bytes, b.bytes, a.n)
        : which == L2 ? tide_vec_l2(a.bytes, b.bytes, a.n)
                      : tide_vec_cosine(a.bytes, b.bytes, a.n, &undefined);
    if (undefined)
      sqlite3_result_null(ctx);
    else
      sqlite3_result_double(ctx, d);
  }
  vec_free(&a);
  vec_free(&b);
}

/* vec_json(a): '[0.5,1,...]', each element in the shortest form that reads
** back as the same float32 (9 significant digits suffice); NaN and the
** infinities as null, as everywhere tide writes JSON. */
static void vec_json(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  Vec v;
  sqlite3_str *out;
  size_t i;
  int r = arg_vec(ctx, argv[0], 0, "vec_json", &v);
  (void)argc;
  if (r <= 0) {
    if (r == 0) sqlite3_result_null(ctx);
    return;
  }
  out = sqlite3_str_new(sqlite3_context_db_handle(ctx));
  sqlite3_str_appendchar(out, 1, '[');
  for (i = 0; i < v.n; i++) {
    double d = tide_vec_at(v.bytes, i);
    char num[32];
    int p;
    if (i > 0) sqlite3_str_appendchar(out, 1, ',');
    if (!isfinite(d)) {
      sqlite3_str_appendall(out, "null");
      continue;
    }
    /* The fewest digits that give the same float32 back. */
    for (p = 1; p < 9; p++) {
      snprintf(num, sizeof num, "%.*g", p, d);
      if ((float)strtod(num, NULL) == (float)d) break;
    }
    snprintf(num, sizeof num, "%.*g", p, d);
    sqlite3_str_appendall(out, num);
  }
  sqlite3_str_appendchar(out, 1, ']');
  vec_free(&v);
  if (sqlite3_str_errcode(out) != SQLITE_OK) {
    sqlite3_free(sqlite3_str_finish(out));
    sqlite3_result_error_nomem(ctx);
    return;
  }
  sqlite3_result_text(ctx, sqlite3_str_finish(out), -1, sqlite3_free);
}

static int register_all(sqlite3 *db) {
  static const int which[] = {DOT, L2, COSINE};
  static const char *const names[] = {"vec_dot", "vec_distance_l2",
                                      "vec_distance_cosine"};
  const int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
  int i, rc;
  for (i = 0; i < 3; i++) {
    rc = sqlite3_create_function(db, names[i], 2, flags, (void *)&which[i],
                                 distance, NULL, NULL);
    if (rc != SQLITE_OK) return rc;
  }
  return sqlite3_create_function(db, "vec_json", 1, flags, NULL, vec_json,
                                 NULL, NULL);
}

#ifdef TIDE_VEC_EXTENSION
/* Seen by SQLite's loader whatever the visibility the build defaults to. */
__attribute__((visibility("default"))) int
sqlite3_tidevec_init(sqlite3 *db, char **err,
                     const sqlite3_api_routines *api);

int sqlite3_tidevec_init(sqlite3 *db, char **err,
                         const sqlite3_api_routines *api) {
  (void)err;
  SQLITE_EXTENSION_INIT2(api);
  return register_all(db);
}
#else
int tide_sqlite_vec_register(sqlite3 *db) { return register_all(db); }
#endif
