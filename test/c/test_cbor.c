/* C tests of the canonical encoding, UTF-8 checks and fingerprints. */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "cbor.h"
#include "check.h"
#include "fingerprint.h"
#include "utf8.h"

static void hex(const uint8_t *p, size_t n, char *out) {
  size_t i;
  for (i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", p[i]);
  out[2 * n] = '\0';
}

/* Encodes the result of a Lua expression; returns its hex or the error. */
static void encode_expr(const char *expr, char *out, size_t outlen) {
  lua_State *L = luaL_newstate();
  tide_CborEnc e;
  char src[512];
  luaL_openlibs(L);
  snprintf(src, sizeof src, "return %s", expr);
  if (luaL_dostring(L, src) != LUA_OK) {
    snprintf(out, outlen, "lua: %s", lua_tostring(L, -1));
    lua_close(L);
    return;
  }
  tide_cbor_enc_init(&e, NULL, NULL);
  if (tide_cbor_encode(&e, L, -1) == 0 && e.out.len * 2 < outlen)
    hex(e.out.data, e.out.len, out);
  else
    snprintf(out, outlen, "error: %.200s", e.err);
  tide_cbor_enc_close(&e);
  lua_close(L);
}

static void test_encodes_canonically(void) {
  static const char *cases[][2] = {
    {"0", "00"}, {"24", "1818"}, {"-1", "20"}, {"1.0", "f93c00"},
    {"0/0", "f97e00"}, {"-0.0", "f98000"}, {"1e300", "fb7e37e43c8800759c"},
    {"'a'", "6161"}, {"'\\xff'", "41ff"}, {"{}", "80"},
    {"{b=1, a=2}", "a2616102616201"}, {"{1, {2}}", "82018102"},
    {"math.mininteger", "3b7fffffffffffffff"}, {"true", "f5"},
    /* arrays: floats written directly, integers and integral floats kept
    ** apart, keys 1..n only */
    {"{0.5, 2, 2.0, 1e300, 0.1}",
     "85f93800 02 f94000 fb7e37e43c8800759c fb3fb999999999999a"},
    {"{[1] = 'a', [3] = 'c'}", "a2016161036163"},
    {"{1.5, 2.5, x = 1}", "a301f93e0002f94100617801"},
    {"{n = 2, 'a', {0.5}}", "a3 016161 0281f93800 616e02"},
    {"(function() local t = {} for i = 1, 40 do t[i] = i + 0.5 end"
     " t[20] = nil return t end)()", "<map 39>"},
  };
  char out[2048];
  size_t i;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char want[256];
    const char *w = cases[i][1];
    size_t j = 0;
    encode_expr(cases[i][0], out, sizeof out);
    if (strcmp(w, "<map 39>") == 0) { /* a map of 39 entries: b8 27 ... */
      CHECK(strncmp(out, "b827", 4) == 0);
      continue;
    }
    for (; *w && j + 1 < sizeof want; w++)
      if (*w != ' ') want[j++] = *w;
    want[j] = '\0';
    if (strcmp(out, want) != 0)
      fprintf(stderr, "  %s -> %s, expected %s\n", cases[i][0], out,
              want);
    CHECK(strcmp(out, want) == 0);
  }
}

static void test_encode_errors_name_the_path(void) {
  char out[256];
  encode_expr("{a = {1, {f = print}}}", out, sizeof out);
  CHECK(strcmp(out, "error: value.a[2].f: cannot encode a function") == 0);
  /* An element that cannot be encoded, in an array and in a table with a
  ** hole after it (a map): both name its index. */
  encode_expr("{0.5, print, 1.5}", out, sizeof out);
  CHECK(strcmp(out, "error: value[2]: cannot encode a function") == 0);
  encode_expr("{0.5, print, 1.5, [5] = 2}", out, sizeof out);
  CHECK(strcmp(out, "error: value[2]: cannot encode a function") == 0);
  encode_expr("{[{}] = 1, [print] = 2}", out, sizeof out);
  CHECK(strcmp(out, "error: value[<function>]: cannot encode a function") == 0);
}

static void test_decode_roundtrip_and_rejects(void) {
  lua_State *L = luaL_newstate();
  tide_CborEnc e;
  char err[160];
  static const uint8_t map[] = {0xa2, 0x61, 0x61, 0x01, 0x61, 0x62, 0x02};
  static const uint8_t unsorted[] = {0xa2, 0x61, 0x62, 0x01, 0x61, 0x61, 0x02};
  static const uint8_t long_head[] = {0x18, 0x05};
  tide_cbor_enc_init(&e, NULL, NULL);
  CHECK_EQ_INT(tide_cbor_decode(L, map, sizeof map, err, sizeof err), 0);
  CHECK_EQ_INT(lua_gettop(L), 1);
  CHECK_EQ_INT(tide_cbor_encode(&e, L, -1), 0);
  CHECK(e.out.len == sizeof map && memcmp(e.out.data, map, sizeof map) == 0);
  lua_settop(L, 0);
  CHECK_EQ_INT(tide_cbor_decode(L, unsorted, sizeof unsorted, err,
                                sizeof err), TIDE_EDECODE);
  CHECK_STR_CONTAINS(err, "at byte 4: map keys not in canonical order");
  CHECK_EQ_INT(lua_gettop(L), 0);
  CHECK_EQ_INT(tide_cbor_decode(L, long_head, 2, err, sizeof err),
               TIDE_EDECODE);
  CHECK_STR_CONTAINS(err, "not in its shortest form");
  tide_cbor_enc_close(&e);
  lua_close(L);
}

/* An allocator that fails once `budget` allocations have been made. */
static int budget;
static void *failing_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  if (budget-- <= 0) return NULL;
  return realloc(ptr, nsize);
}

static void test_out_of_memory_is_an_error(void) {
  lua_State *L = luaL_newstate();
  tide_CborEnc e;
  CHECK_EQ_INT(luaL_dostring(L, "local t = {} for i = 1, 1000 do "
                                "t['k'..i] = i end return t"), LUA_OK);
  budget = 1;
  tide_cbor_enc_init(&e, failing_alloc, NULL);
  CHECK_EQ_INT(tide_cbor_encode(&e, L, -1), TIDE_ENOMEM);
  CHECK_STR_CONTAINS(e.err, "out of memory");
  CHECK_EQ_INT(lua_gettop(L), 1);
  /* With memory again, the same encoder works. */
  budget = 1000;
  CHECK_EQ_INT(tide_cbor_encode(&e, L, -1), 0);
  CHECK(e.out.len > 1000);
  tide_cbor_enc_close(&e);
  lua_close(L);
}

static void test_utf8(void) {
  CHECK(tide_utf8_valid((const uint8_t *)"h\xc3\xa9llo", 6));
  CHECK(tide_utf8_valid((const uint8_t *)"\xf0\x9f\x98\x80", 4));
  CHECK(!tide_utf8_valid((const uint8_t *)"\xc0\xaf", 2));     /* overlong */
  CHECK(!tide_utf8_valid((const uint8_t *)"\xed\xa0\x80", 3)); /* surrogate */
  CHECK(!tide_utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4));
  CHECK(!tide_utf8_valid((const uint8_t *)"\xe2\x82", 2));     /* truncated */
  CHECK_EQ_INT(tide_utf8_seqlen((const uint8_t *)"\xe2\x82\xac", 3), 3);
  /* The first bad byte's position, before, inside and after ASCII runs
  ** long enough to be skipped a word at a time. */
  CHECK_EQ_INT(tide_utf8_invalid_at((const uint8_t *)"", 0), 0);
  CHECK_EQ_INT(tide_utf8_invalid_at((const uint8_t *)"\xff", 1), 1);
  CHECK_EQ_INT(tide_utf8_invalid_at((const uint8_t *)"abcdefgh\xff", 9), 9);
  CHECK_EQ_INT(tide_utf8_invalid_at((const uint8_t *)"abcdefg\xffhijklmnop",
                                    16), 8);
  CHECK_EQ_INT(tide_utf8_invalid_at(
    (const uint8_t *)"abcdefghijklmnop\xc3\xa9qrstuvwx\xed\xa0\x80", 29), 27);
  CHECK_EQ_INT(tide_utf8_invalid_at(
    (const uint8_t *)"abc\xc3\xa9" "defghijklmnopqrstuvw", 25), 0);
  CHECK_EQ_INT(tide_utf8_invalid_at((const uint8_t *)"abcdefghij\xe2\x82",
                                    12), 11);
}

static void test_fingerprints(void) {
  tide_Fp fp;
  char hexfp[33], err[256];
  tide_fp_bytes(&fp, "abc", 3);
  tide_fp_hex(&fp, hexfp);
  CHECK(strcmp(hexfp, "cf4ab791c62b8d2b2109c90275287816") == 0);
  CHECK_EQ_INT(tide_fp_file(&fp, "/nonexistent", err, sizeof err),
               TIDE_EIO);
  CHECK(strcmp(err, "/nonexistent: no such file or directory") == 0);
}

int main(void) {
  static const CheckTest tests[] = {
    {"encodes canonically", test_encodes_canonically},
    {"encode errors name the path", test_encode_errors_name_the_path},
    {"decode round trip and rejects", test_decode_roundtrip_and_rejects},
    {"out of memory is an error", test_out_of_memory_is_an_error},
    {"utf8", test_utf8},
    {"fingerprints", test_fingerprints},
    {NULL, NULL},
  };
  return check_run("cbor", tests);
}
