/* Canonical values: deterministic CBOR encoding and strict decoding. */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "cbor.h"
#include "utf8.h"

/* Registry key of the table of record metatables by type name. */
static const char record_types_key = 0;

enum { MAJOR_UINT, MAJOR_NINT, MAJOR_BYTES, MAJOR_TEXT, MAJOR_ARRAY,
       MAJOR_MAP, MAJOR_TAG, MAJOR_SIMPLE };

void tide_cbor_enc_init(tide_CborEnc *e, tide_Alloc alloc, void *ud) {
  tide_buf_init(&e->out, alloc, ud);
  tide_buf_init(&e->scratch, alloc, ud);
  e->root = "value";
  e->depth = 0;
  e->err[0] = '\0';
}

void tide_cbor_enc_close(tide_CborEnc *e) {
  if (e == NULL) return;
  tide_buf_close(&e->out);
  tide_buf_close(&e->scratch);
}

/* ---- Floats ---------------------------------------------------------- */

static uint32_t float_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

/* The IEEE half-precision bits of f when f is exactly representable. */
static int half_exact(float f, uint16_t *half) {
  uint32_t bits = float_bits(f);
  uint32_t sign = (bits >> 16) & 0x8000u;
  int exp = (int)((bits >> 23) & 0xff);
  uint32_t mant = bits & 0x7fffffu;
  if (exp == 0xff) { /* infinity; NaN is handled before */
    *half = (uint16_t)(sign | 0x7c00u);
    return mant == 0;
  }
  if (exp == 0) { /* zero, or a float subnormal far below half's range */
    *half = (uint16_t)sign;
    return mant == 0;
  }
  exp -= 127;
  if (exp >= -14 && exp <= 15) {
    if (mant & 0x1fffu) return 0;
    *half = (uint16_t)(sign | (uint32_t)(exp + 15) << 10 | mant >> 13);
    return 1;
  }
  if (exp >= -24 && exp < -14) { /* a half subnormal */
    uint32_t sig = mant | 0x800000u;
    int shift = -exp - 1;
    if (sig & ((1u << shift) - 1)) return 0;
    *half = (uint16_t)(sign | sig >> shift);
    return 1;
  }
  return 0;
}

static double half_to_double(uint16_t h) {
  int exp = (h >> 10) & 0x1f;
  double mant = h & 0x3ff, v;
  if (exp == 0) v = ldexp(mant, -24);
  else if (exp == 31) v = mant == 0 ? HUGE_VAL : NAN;
  else v = ldexp(mant + 1024, exp - 25);
  return (h & 0x8000) ? -v : v;
}

/* ---- Encoder --------------------------------------------------------- */

int tide_cbor_put_head(tide_Buf *b, int major, uint64_t v) {
  uint8_t h[9];
  size_t n;
  uint8_t m = (uint8_t)(major << 5);
  if (v < 24) {
    h[0] = (uint8_t)(m | v);
    n = 1;
  } else if (v <= 0xff) {
    h[0] = m | 24;
    h[1] = (uint8_t)v;
    n = 2;
  } else if (v <= 0xffff) {
    h[0] = m | 25;
    h[1] = (uint8_t)(v >> 8);
    h[2] = (uint8_t)v;
    n = 3;
  } else if (v <= 0xffffffffu) {
    int i;
    h[0] = m | 26;
    for (i = 0; i < 4; i++) h[1 + i] = (uint8_t)(v >> (24 - 8 * i));
    n = 5;
  } else {
    int i;
    h[0] = m | 27;
    for (i = 0; i < 8; i++) h[1 + i] = (uint8_t)(v >> (56 - 8 * i));
    n = 9;
  }
  return tide_buf_append(b, h, n);
}

int tide_cbor_put_string(tide_Buf *b, const void *s, size_t len) {
  int rc = tide_cbor_put_head(
    b, tide_utf8_valid(s, len) ? MAJOR_TEXT : MAJOR_BYTES, len);
  return rc ? rc : tide_buf_append(b, s, len);
}

/* Whether d (not NaN) is exactly a float; out-of-range casts are avoided
** because they are undefined behaviour in C. */
static int float_exact(double d, float *f) {
  if (!isinf(d) && fabs(d) > FLT_MAX) return 0;
  *f = (float)d;
  return (double)*f == d;
}

/* The shortest of half, single and double precision that holds d exactly,
** written in place: a vector's floats go through here one by one. */
int tide_cbor_put_float(tide_Buf *b, double d) {
  uint8_t *h;
  float f = 0;
  uint16_t half;
  int i, rc, is_float = d == d && float_exact(d, &f);
  if ((rc = tide_buf_reserve(b, 9)) != 0) return rc;
  h = b->data + b->len;
  if (d != d) {
    h[0] = 0xf9, h[1] = 0x7e, h[2] = 0x00;
    b->len += 3;
  } else if (is_float && half_exact(f, &half)) {
    h[0] = 0xf9, h[1] = (uint8_t)(half >> 8), h[2] = (uint8_t)half;
    b->len += 3;
  } else if (is_float) {
    uint32_t u = float_bits(f);
    h[0] = 0xfa;
    for (i = 0; i < 4; i++) h[1 + i] = (uint8_t)(u >> (24 - 8 * i));
    b->len += 5;
  } else {
    uint64_t u;
    memcpy(&u, &d, 8);
    h[0] = 0xfb;
    for (i = 0; i < 8; i++) h[1 + i] = (uint8_t)(u >> (56 - 8 * i));
    b->len += 9;
  }
  return 0;
}

/* Formats "<root><path>: <message>" into e->err. */
static int enc_fail(tide_CborEnc *e, lua_State *L, int code,
                    const char *fmt, ...) {
  char *p = e->err, *end = e->err + sizeof e->err;
  int d;
  va_list ap;
  p += snprintf(p, (size_t)(end - p), "%s", e->root);
  for (d = 1; d <= e->depth && p < end; d++) {
    int k = e->path[d].key_idx;
    if (e->depth > 12 && d == 6) { /* keep both ends of a long path */
      p += snprintf(p, (size_t)(end - p), "...");
      d = e->depth - 4;
      k = e->path[d].key_idx;
    }
    if (k == 0) {
      p += snprintf(p, (size_t)(end - p), "[%lld]",
                    (long long)e->path[d].index);
    } else if (lua_type(L, k) == LUA_TSTRING) {
      size_t len;
      const char *s = lua_tolstring(L, k, &len);
      if (tide_is_identifier(s, len))
        p += snprintf(p, (size_t)(end - p), ".%s", s);
      else
        p += snprintf(p, (size_t)(end - p), "[\"%.40s\"]", s);
    } else if (lua_isinteger(L, k)) {
      p += snprintf(p, (size_t)(end - p), "[%lld]",
                    (long long)lua_tointeger(L, k));
    } else if (lua_type(L, k) == LUA_TNUMBER) {
      p += snprintf(p, (size_t)(end - p), "[%.14g]", lua_tonumber(L, k));
    } else if (lua_type(L, k) == LUA_TBOOLEAN) {
      p += snprintf(p, (size_t)(end - p), "[%s]",
                    lua_toboolean(L, k) ? "true" : "false");
    } else {
      p += snprintf(p, (size_t)(end - p), "[<%s>]", luaL_typename(L, k));
    }
  }
  if (p < end) p += snprintf(p, (size_t)(end - p), ": ");
  if (p < end) {
    va_start(ap, fmt);
    vsnprintf(p, (size_t)(end - p), fmt, ap);
    va_end(ap);
  }
  return code;
}

static int encode_value(tide_CborEnc *e, lua_State *L, int idx);

/* One map entry: where its key and value lie in e->out, relative to the
** start of the map's body. */
typedef tide_CborEntry Entry;

static int entry_less(const uint8_t *base, const Entry *a, const Entry *b) {
  size_t n = a->klen < b->klen ? a->klen : b->klen;
  int c = memcmp(base + a->off, base + b->off, n);
  return c < 0 || (c == 0 && a->klen < b->klen);
}

/* A stable merge sort of n entries, using tmp (n entries) as room. */
void tide_cbor_sort_entries(const uint8_t *base, Entry *v, Entry *tmp,
                            size_t n) {
  size_t width, i;
  for (width = 1; width < n; width *= 2) {
    for (i = 0; i < n; i += 2 * width) {
      size_t lo = i, mid = i + width, hi = i + 2 * width, a, b, k;
      if (mid > n) mid = n;
      if (hi > n) hi = n;
      for (a = lo, b = mid, k = lo; k < hi; k++) {
        if (a < mid && (b >= hi || !entry_less(base, &v[b], &v[a])))
          tmp[k] = v[a++];
        else
          tmp[k] = v[b++];
      }
    }
    memcpy(v, tmp, n * sizeof *v);
  }
}

static int encode_map(tide_CborEnc *e, lua_State *L, int t, size_t n) {
  size_t body, i, entries_at = e->scratch.len, total;
  Entry *ent;
  int rc;
  if ((rc = tide_cbor_put_head(&e->out, MAJOR_MAP, n)) != 0) return rc;
  if (n > (SIZE_MAX / sizeof(Entry)) / 2) return TIDE_ENOMEM;
  if ((rc = tide_buf_reserve(&e->scratch, 2 * n * sizeof(Entry))) != 0)
    return rc;
  e->scratch.len += 2 * n * sizeof(Entry);
  body = e->out.len;
  i = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    size_t start = e->out.len;
    int key = lua_absindex(L, -2);
    e->path[e->depth].key_idx = key;
    if ((rc = encode_value(e, L, key)) != 0) break;
    ent = (Entry *)(e->scratch.data + entries_at);
    ent[i].off = start - body;
    ent[i].klen = e->out.len - start;
    if ((rc = encode_value(e, L, lua_absindex(L, -1))) != 0) break;
    ent = (Entry *)(e->scratch.data + entries_at);
    ent[i].len = e->out.len - start;
    i++;
    lua_pop(L, 1);
  }
  if (rc != 0) {
    lua_pop(L, 2);
    return rc;
  }
  /* Sort the entries by their key bytes, then lay the body out again. */
  total = e->out.len - body;
  if ((rc = tide_buf_reserve(&e->scratch, total)) != 0) return rc;
  ent = (Entry *)(e->scratch.data + entries_at);
  tide_cbor_sort_entries(e->out.data + body, ent, ent + n, n);
  {
    uint8_t *copy = e->scratch.data + e->scratch.len;
    size_t at = body;
    memcpy(copy, e->out.data + body, total);
    for (i = 0; i < n; i++) {
      if (i > 0 && ent[i].klen == ent[i - 1].klen &&
          memcmp(copy + ent[i].off, copy + ent[i - 1].off, ent[i].klen) ==
              0) {
        e->depth--; /* the fault is the table's, not one of its keys' */
        rc = enc_fail(e, L, TIDE_EENCODE, "two keys encode the same");
        e->depth++;
        return rc;
      }
      memcpy(e->out.data + at, copy + ent[i].off, ent[i].len);
      at += ent[i].len;
    }
  }
  e->scratch.len = entries_at;
  return 0;
}

/* Elements read before the stack is reset: one lua_settop for many. */
#define ARRAY_BLOCK 32

/* Whether each of from..n is a key of the table at t. */
static int all_present(lua_State *L, int t, lua_Integer from, size_t n) {
  lua_Integer i;
  int present = 1;
  for (i = from; present && i <= (lua_Integer)n; i++) {
    present = lua_rawgeti(L, t, i) != LUA_TNIL;
    lua_pop(L, 1);
  }
  return present;
}

/* The table at t, whose n keys were counted, as an array when they are
** exactly 1..n: each of 1..n being present proves it. Returns 1, with
** nothing written, when one is missing: the table is a map. Key n is
** looked at first, so that a map whose first keys are 1, 2, ... (a list
** of results with its count n) is not encoded once as an array in vain.
** A float element, what vectors hold, is written without encode_value's
** dispatch. An element that cannot be encoded fails the array only when
** the rest of 1..n is present; otherwise the map reports it. */
static int encode_array(tide_CborEnc *e, lua_State *L, int t, size_t n) {
  size_t mark = e->out.len;
  lua_Integer i;
  int top = lua_gettop(L), rc;
  if (n > 0 && !all_present(L, t, (lua_Integer)n, n)) return 1;
  if ((rc = tide_cbor_put_head(&e->out, MAJOR_ARRAY, n)) != 0) return rc;
  for (i = 1; i <= (lua_Integer)n; i++) {
    int type;
    if (i % ARRAY_BLOCK == 0) lua_settop(L, top);
    type = lua_rawgeti(L, t, i);
    if (type == LUA_TNUMBER) {
      lua_Number x = lua_tonumberx(L, -1, NULL);
      if (!tide_may_be_integer(x) || !lua_isinteger(L, -1)) {
        if ((rc = tide_cbor_put_float(&e->out, x)) != 0) break;
        continue;
      }
    } else if (type == LUA_TNIL) {
      break;
    }
    e->path[e->depth].key_idx = 0;
    e->path[e->depth].index = i;
    if ((rc = encode_value(e, L, lua_gettop(L))) != 0) break;
  }
  lua_settop(L, top);
  if (i <= (lua_Integer)n && (rc == 0 || !all_present(L, t, i + 1, n))) {
    e->out.len = mark;
    return 1;
  }
  return rc;
}

static int encode_table(tide_CborEnc *e, lua_State *L, int t) {
  size_t n = 0;
  const void *self = lua_topointer(L, t);
  int d, rc;
  for (d = 0; d < e->depth; d++) {
    if (e->tables[d] == self)
      return enc_fail(e, L, TIDE_EENCODE,
                      "cannot encode a cycle (the table contains itself)");
  }
  if (e->depth >= TIDE_CBOR_MAX_DEPTH)
    return enc_fail(e, L, TIDE_EENCODE, "nesting deeper than %d levels",
                    TIDE_CBOR_MAX_DEPTH);
  if (!lua_checkstack(L, ARRAY_BLOCK + 8))
    return enc_fail(e, L, TIDE_ENOMEM, "out of Lua stack");
  lua_pushnil(L);
  while (lua_next(L, t)) {
    n++;
    lua_pop(L, 1);
  }
  e->tables[e->depth++] = self;
  if ((rc = encode_array(e, L, t, n)) == 1) rc = encode_map(e, L, t, n);
  e->depth--;
  return rc;
}

/* tag 27 [name, payload]: the payload is the value at idx. */
static int encode_typed(tide_CborEnc *e, lua_State *L, const char *name,
                        size_t len, int idx) {
  int rc;
  if ((rc = tide_cbor_put_head(&e->out, MAJOR_TAG, TIDE_CBOR_TAG_TYPED)) != 0 ||
      (rc = tide_cbor_put_head(&e->out, MAJOR_ARRAY, 2)) != 0 ||
      (rc = tide_cbor_put_head(&e->out, MAJOR_TEXT, len)) != 0 ||
      (rc = tide_buf_append(&e->out, name, len)) != 0)
    return rc;
  return idx ? encode_value(e, L, idx) : 0;
}

/* A value whose metatable defines __tide_key encodes as its type name and
** the key that metamethod returns. Leaves the stack as it found it. */
static int encode_keyed(tide_CborEnc *e, lua_State *L, int idx) {
  const char *name = "userdata";
  size_t len;
  int rc;
  int kind = luaL_getmetafield(L, idx, "__name");
  if (kind != LUA_TSTRING) {
    if (kind != LUA_TNIL) lua_pop(L, 1);
    lua_pushstring(L, name);
  }
  name = lua_tolstring(L, -1, &len);
  luaL_getmetafield(L, idx, "__tide_key");
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    rc = enc_fail(e, L, TIDE_EENCODE,
                  "its __tide_key metamethod failed: %s",
                  lua_tostring(L, -1));
    lua_pop(L, 2);
    return rc;
  }
  if (lua_type(L, -1) == LUA_TNIL) {
    lua_pop(L, 2);
    return enc_fail(e, L, TIDE_EENCODE,
                    "its __tide_key metamethod returned nil");
  }
  rc = encode_typed(e, L, name, len, lua_absindex(L, -1));
  lua_pop(L, 2);
  return rc;
}

static int encode_value(tide_CborEnc *e, lua_State *L, int idx) {
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    return tide_buf_push(&e->out, 0xf6);
  case LUA_TBOOLEAN:
    return tide_buf_push(&e->out, lua_toboolean(L, idx) ? 0xf5 : 0xf4);
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) {
      lua_Integer i = lua_tointeger(L, idx);
      if (i >= 0) return tide_cbor_put_head(&e->out, MAJOR_UINT, (uint64_t)i);
      return tide_cbor_put_head(&e->out, MAJOR_NINT, ~(uint64_t)i);
    }
    return tide_cbor_put_float(&e->out, lua_tonumber(L, idx));
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    return tide_cbor_put_string(&e->out, s, len);
  }
  case LUA_TTABLE: {
    int kind;
    if (!lua_getmetatable(L, idx)) return encode_table(e, L, idx);
    lua_getfield(L, -1, "__tide_key");
    kind = lua_type(L, -1);
    lua_pop(L, 1);
    if (kind != LUA_TNIL) {
      lua_pop(L, 1);
      return encode_keyed(e, L, idx);
    }
    lua_getfield(L, -1, "__tide_record");
    if (lua_type(L, -1) == LUA_TSTRING) {
      size_t len;
      const char *name = lua_tolstring(L, -1, &len);
      int rc = encode_typed(e, L, name, len, 0);
      if (rc == 0) rc = encode_table(e, L, idx);
      lua_pop(L, 2);
      return rc;
    }
    lua_pop(L, 2);
    return encode_table(e, L, idx);
  }
  case LUA_TUSERDATA:
    if (luaL_getmetafield(L, idx, "__tide_key") != LUA_TNIL) {
      lua_pop(L, 1);
      return encode_keyed(e, L, idx);
    }
    return enc_fail(e, L, TIDE_EENCODE,
                    "cannot encode a userdata (it has no __tide_key)");
  default:
    return enc_fail(e, L, TIDE_EENCODE, "cannot encode a %s",
                    luaL_typename(L, idx));
  }
}

int tide_cbor_encode(tide_CborEnc *e, lua_State *L, int idx) {
  size_t mark = e->out.len;
  int rc;
  idx = lua_absindex(L, idx);
  e->depth = 0;
  e->err[0] = '\0';
  e->scratch.len = 0;
  rc = encode_value(e, L, idx);
  if (rc == 0 && e->out.len - mark > TIDE_CBOR_MAX_SIZE)
    rc = enc_fail(e, L, TIDE_EENCODE, "encoding larger than %zu bytes",
                  TIDE_CBOR_MAX_SIZE);
  if (rc == TIDE_ENOMEM && e->err[0] == '\0')
    snprintf(e->err, sizeof e->err, "%s: out of memory", e->root);
  if (rc != 0) e->out.len = mark;
  return rc;
}

/* ---- Decoder --------------------------------------------------------- */

typedef struct {
  lua_State *L;
  const uint8_t *start, *p, *end;
  int depth;
  char *err;
  size_t errlen;
} Decoder;

static int dec_fail(Decoder *d, const uint8_t *at, const char *msg) {
  snprintf(d->err, d->errlen, "malformed value at byte %zu: %s",
           (size_t)(at - d->start), msg);
  return TIDE_EDECODE;
}

/* Reads an item's head: its major type, additional info and argument,
** rejecting heads longer than needed. */
static int read_head(Decoder *d, int *major, int *info, uint64_t *arg) {
  const uint8_t *at = d->p;
  size_t n, i;
  uint64_t v = 0;
  if (d->p >= d->end) return dec_fail(d, at, "unexpected end of input");
  *major = *d->p >> 5;
  *info = *d->p & 31;
  d->p++;
  if (*info < 24) {
    *arg = (uint64_t)*info;
    return 0;
  }
  if (*info > 27) {
    return dec_fail(d, at, *info == 31 ? "indefinite length is not canonical"
                                       : "reserved additional information");
  }
  n = (size_t)1 << (*info - 24);
  if ((size_t)(d->end - d->p) < n)
    return dec_fail(d, at, "unexpected end of input");
  for (i = 0; i < n; i++) v = v << 8 | d->p[i];
  d->p += n;
  *arg = v;
  if (*major == MAJOR_SIMPLE) return 0; /* floats: checked by value */
  if ((n == 1 && v < 24) || (n == 2 && v <= 0xff) ||
      (n == 4 && v <= 0xffff) || (n == 8 && v <= 0xffffffffu))
    return dec_fail(d, at, "argument not in its shortest form");
  return 0;
}

static int decode_item(Decoder *d);

static int decode_float(Decoder *d, const uint8_t *at, int info,
                        uint64_t arg) {
  double v;
  if (info == 25) {
    if ((arg & 0x7c00) == 0x7c00 && (arg & 0x3ff) && arg != 0x7e00)
      return dec_fail(d, at, "NaN not in its canonical form");
    v = half_to_double((uint16_t)arg);
  } else if (info == 26) {
    uint32_t u = (uint32_t)arg;
    float f;
    uint16_t half;
    memcpy(&f, &u, 4);
    if (f != f || half_exact(f, &half))
      return dec_fail(d, at, "float not in its shortest form");
    v = f;
  } else if (info == 27) {
    float f;
    memcpy(&v, &arg, 8);
    if (v != v || float_exact(v, &f))
      return dec_fail(d, at, "float not in its shortest form");
  } else {
    return dec_fail(d, at, "simple values other than true, false and null "
                           "are not used");
  }
  lua_pushnumber(d->L, v);
  return 0;
}

static int decode_string(Decoder *d, const uint8_t *at, int major,
                         uint64_t len) {
  int valid;
  if (len > (uint64_t)(d->end - d->p))
    return dec_fail(d, at, "string longer than the input");
  valid = tide_utf8_valid(d->p, (size_t)len);
  if (major == MAJOR_TEXT && !valid)
    return dec_fail(d, at, "text string is not valid UTF-8");
  if (major == MAJOR_BYTES && valid)
    return dec_fail(d, at, "byte string that is valid UTF-8 is not canonical");
  lua_pushlstring(d->L, (const char *)d->p, (size_t)len);
  d->p += len;
  return 0;
}

/* Decodes an item that may not be null (an array element, a map key or
** value): a nil cannot be stored in a Lua table. */
static int decode_non_null(Decoder *d) {
  if (d->p < d->end && *d->p == 0xf6)
    return dec_fail(d, d->p, "null inside an array or map");
  return decode_item(d);
}

static int decode_array(Decoder *d, const uint8_t *at, uint64_t n) {
  uint64_t i;
  int rc;
  if (n > (uint64_t)(d->end - d->p))
    return dec_fail(d, at, "array longer than the input");
  lua_createtable(d->L, (int)(n < 0x7fffffff ? n : 0), 0);
  for (i = 1; i <= n; i++) {
    if ((rc = decode_non_null(d)) != 0) return lua_pop(d->L, 1), rc;
    lua_rawseti(d->L, -2, (lua_Integer)i);
  }
  return 0;
}

static int decode_map(Decoder *d, const uint8_t *at, uint64_t n) {
  const uint8_t *prev = NULL;
  size_t prev_len = 0;
  uint64_t i, in_range = 0;
  int rc;
  if (n > (uint64_t)(d->end - d->p) / 2)
    return dec_fail(d, at, "map longer than the input");
  if (n == 0) return dec_fail(d, at, "an empty table is an empty array");
  lua_createtable(d->L, 0, (int)(n < 0x7fffffff ? n : 0));
  for (i = 0; i < n; i++) {
    const uint8_t *key = d->p;
    size_t key_len, common;
    if ((rc = decode_non_null(d)) != 0) return lua_pop(d->L, 1), rc;
    key_len = (size_t)(d->p - key);
    common = key_len < prev_len ? key_len : prev_len;
    if (prev && (memcmp(prev, key, common) > 0 ||
                 (memcmp(prev, key, common) == 0 && key_len <= prev_len))) {
      lua_pop(d->L, 2);
      return dec_fail(d, key, "map keys not in canonical order");
    }
    if (lua_type(d->L, -1) == LUA_TNUMBER && !lua_isinteger(d->L, -1)) {
      double k = lua_tonumber(d->L, -1);
      if (k != k || (k == floor(k) && fabs(k) < 0x1p63)) {
        lua_pop(d->L, 2);
        return dec_fail(d, key, "float key is NaN or has an integer value");
      }
    }
    if (lua_isinteger(d->L, -1) && lua_tointeger(d->L, -1) >= 1 &&
        (uint64_t)lua_tointeger(d->L, -1) <= n)
      in_range++;
    prev = key;
    prev_len = key_len;
    if ((rc = decode_non_null(d)) != 0) return lua_pop(d->L, 2), rc;
    lua_rawset(d->L, -3);
  }
  if (in_range == n) {
    lua_pop(d->L, 1);
    return dec_fail(d, at, "a map with keys 1..n is an array");
  }
  return 0;
}

static int decode_typed(Decoder *d, const uint8_t *at, uint64_t tag) {
  int major, info, rc;
  uint64_t arg;
  const uint8_t *name_at;
  if (tag != TIDE_CBOR_TAG_TYPED) return dec_fail(d, at, "unknown tag");
  if ((rc = read_head(d, &major, &info, &arg)) != 0) return rc;
  if (major != MAJOR_ARRAY || arg != 2)
    return dec_fail(d, at, "tag 27 content is not [name, fields]");
  name_at = d->p;
  if ((rc = read_head(d, &major, &info, &arg)) != 0) return rc;
  if (major != MAJOR_TEXT) return dec_fail(d, name_at, "type name not text");
  if ((rc = decode_string(d, name_at, major, arg)) != 0) return rc;
  if (memchr(lua_tostring(d->L, -1), 0, (size_t)arg) != NULL)
    return lua_pop(d->L, 1), dec_fail(d, name_at, "type name holds a NUL");
  if (d->p >= d->end || (*d->p >> 5 != MAJOR_ARRAY && *d->p >> 5 != MAJOR_MAP))
    return lua_pop(d->L, 1), dec_fail(d, d->p, "record fields not a table");
  if ((rc = decode_item(d)) != 0) return lua_pop(d->L, 1), rc;
  tide_cbor_record_metatable(d->L, lua_tostring(d->L, -2));
  lua_setmetatable(d->L, -2);
  lua_remove(d->L, -2);
  return 0;
}

static int decode_item(Decoder *d) {
  const uint8_t *at = d->p;
  int major, info, rc;
  uint64_t arg;
  if ((rc = read_head(d, &major, &info, &arg)) != 0) return rc;
  if (major >= MAJOR_ARRAY && major <= MAJOR_TAG) {
    if (d->depth >= TIDE_CBOR_MAX_DEPTH)
      return dec_fail(d, at, "nesting too deep");
    if (!lua_checkstack(d->L, 4)) return dec_fail(d, at, "out of Lua stack");
  }
  switch (major) {
  case MAJOR_UINT:
    if (arg > (uint64_t)LUA_MAXINTEGER)
      return dec_fail(d, at, "integer out of range");
    lua_pushinteger(d->L, (lua_Integer)arg);
    return 0;
  case MAJOR_NINT:
    if (arg > (uint64_t)LUA_MAXINTEGER)
      return dec_fail(d, at, "integer out of range");
    lua_pushinteger(d->L, -(lua_Integer)arg - 1);
    return 0;
  case MAJOR_BYTES:
  case MAJOR_TEXT:
    return decode_string(d, at, major, arg);
  case MAJOR_SIMPLE:
    if (info == 20 || info == 21) {
      lua_pushboolean(d->L, info == 21);
      return 0;
    }
    if (info == 22) {
      lua_pushnil(d->L);
      return 0;
    }
    return decode_float(d, at, info, arg);
  default:
    d->depth++;
    rc = major == MAJOR_ARRAY ? decode_array(d, at, arg)
       : major == MAJOR_MAP   ? decode_map(d, at, arg)
                              : decode_typed(d, at, arg);
    d->depth--;
    return rc;
  }
}

int tide_cbor_decode(lua_State *L, const uint8_t *data, size_t len,
                     char *err, size_t errlen) {
  Decoder d;
  int rc;
  d.L = L;
  d.start = d.p = data;
  d.end = data + len;
  d.depth = 0;
  d.err = err;
  d.errlen = errlen;
  if (len > TIDE_CBOR_MAX_SIZE)
    return dec_fail(&d, data, "input larger than the size limit");
  if ((rc = decode_item(&d)) != 0) return rc;
  if (d.p != d.end) {
    lua_pop(L, 1);
    return dec_fail(&d, d.p, "trailing bytes after the value");
  }
  return 0;
}

void tide_cbor_record_metatable(lua_State *L, const char *name) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &record_types_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &record_types_key);
  }
  if (lua_getfield(L, -1, name) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushstring(L, name);
    lua_setfield(L, -2, "__tide_record");
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, name);
  }
  lua_remove(L, -2);
}
