/* C tests of JSON Lines in C: reading a file a line at a time, and a line
** read into the canonical encoding of the Lua value json.lua makes of it
** (compared with the encoder's bytes for that value written in Lua), or
** left to Lua. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "cbor.h"
#include "check.h"
#include "jsonl.h"

static char dir[64];

static void hex(const uint8_t *p, size_t n, char *out) {
  size_t i;
  for (i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", p[i]);
  out[2 * n] = '\0';
}

/* The encoder's bytes, as hex, for the value of a Lua expression. */
static void encode_expr(const char *expr, char *out, size_t outlen) {
  lua_State *L = luaL_newstate();
  tide_CborEnc e;
  char src[1024];
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

/* Lines the reader takes: the line, its key by field "id", and the Lua
** value json.lua makes of it. */
static const struct {
  const char *line, *key, *lua;
} taken[] = {
  {"{\"id\":\"a\",\"n\":1}", "a", "{ id = 'a', n = 1 }"},
  {" \t{\"id\" : 7 , \"x\":[1, 2.5, true, false] }\r", "7",
   "{ id = 7, x = { 1, 2.5, true, false } }"},
  /* Integral floats within 2^53 are integers; others stay floats. */
  {"{\"id\":1e3,\"a\":-0,\"b\":7.0,\"c\":1e300,\"d\":9007199254740993,"
   "\"e\":-2.5e-3,\"f\":12345678901234567890}",
   "1000",
   "{ id = 1000, a = 0, b = 7, c = 1e300, d = 9007199254740992,"
   " e = -2.5e-3, f = 12345678901234567890.0 }"},
  /* Null fields are left out, everywhere; an object of nulls is {}. */
  {"{\"id\":\"k\",\"gone\":null,\"o\":{\"x\":null},\"e\":{},\"l\":[]}", "k",
   "{ id = 'k', o = {}, e = {}, l = {} }"},
  /* Escapes, surrogate pairs, raw UTF-8 and bytes that are not. */
  {"{\"id\":\"\\u00e9\\n\\\"\\/\\\\\",\"s\":\"\\ud83d\\ude00\",\"r\":\"\xc3\xa9\","
   "\"b\":\"\xff\",\"z\":\"\\u0000\"}",
   "\xc3\xa9\n\"/\\",
   "{ id = '\\u{e9}\\n\"/\\\\', s = '\\u{1F600}', r = '\\u{e9}',"
   " b = '\\xff', z = '\\0' }"},
  /* Keys sort by their encoding: shorter first. */
  {"{\"bb\":1,\"a\":2,\"id\":\"x\",\"c\":{\"zz\":1,\"y\":[{\"q\":1}]}}", "x",
   "{ bb = 1, a = 2, id = 'x', c = { zz = 1, y = { { q = 1 } } } }"},
  {"{\"id\":-42}", "-42", "{ id = -42 }"},
};

/* Lines left to Lua: errors there, or what the reader does not mimic. */
static const char *const others[] = {
  "[1]", "\"x\"", "{\"id\":1", "{\"id\":1} x", "{\"id\":1,}",
  "{\"id\":\"a\",\"id\":\"b\"}", "{\"id\":\"a\",\"l\":[1,null]}",
  "{\"n\":1}", "{\"id\":\"\"}", "{\"id\":1.5}", "{\"id\":true}",
  "{\"id\":null}", "{\"id\":[1]}", "{\"id\":01}", "{\"id\":+1}",
  "{\"id\":0x10}", "{\"id\":1.}", "{\"id\":.5}", "{\"id\":1e}",
  "{\"id\":\"a\",\"x\":1e400}", "{\"id\":\"a\",\"x\":NaN}",
  "{\"id\":\"a\",\"x\":\"\\ude00\"}", "{\"id\":\"a\",\"x\":\"\\ud83d\"}",
  "{\"id\":\"a\",\"x\":\"\\q\"}", "{\"id\":\"a\",\"x\":tru}",
  "\v{\"id\":\"a\"}", "{'id':'a'}", "{}", " { } ",
};

static void test_reads_as_lua(void) {
  tide_JsonlValue v;
  size_t i;
  char got[2048], want[2048];
  tide_jsonl_value_init(&v, NULL, NULL);
  for (i = 0; i < sizeof taken / sizeof taken[0]; i++) {
    int rc = tide_jsonl_read(&v, taken[i].line, strlen(taken[i].line), "id",
                             2);
    CHECK_EQ_INT(rc, 1);
    if (rc != 1) {
      fprintf(stderr, "  not taken: %s\n", taken[i].line);
      continue;
    }
    hex(v.out.data, v.out.len, got);
    encode_expr(taken[i].lua, want, sizeof want);
    if (strcmp(got, want) != 0)
      fprintf(stderr, "  %s\n    got  %s\n    want %s\n", taken[i].line, got,
              want);
    CHECK(strcmp(got, want) == 0);
    CHECK(v.key.len == strlen(taken[i].key) &&
          memcmp(v.key.data, taken[i].key, v.key.len) == 0);
  }
  for (i = 0; i < sizeof others / sizeof others[0]; i++) {
    int rc = tide_jsonl_read(&v, others[i], strlen(others[i]), "id", 2);
    if (rc != 0) fprintf(stderr, "  taken: %s\n", others[i]);
    CHECK_EQ_INT(rc, 0);
  }
  /* Another key field; a NUL byte anywhere is left to Lua. */
  CHECK_EQ_INT(tide_jsonl_read(&v, "{\"sku\":\"p\",\"id\":1.5}", 20, "sku",
                               3), 1);
  CHECK(v.key.len == 1 && v.key.data[0] == 'p');
  CHECK_EQ_INT(tide_jsonl_read(&v, "{\"id\":\"a\0\"}", 10, "id", 2), 0);
  tide_jsonl_value_close(&v);
}

static void test_nesting(void) {
  tide_JsonlValue v;
  char line[512];
  size_t n = 0;
  int depth;
  tide_jsonl_value_init(&v, NULL, NULL);
  /* {"id":1,"x":[[...]]} nested to depth d, the top object counting. */
  for (depth = TIDE_JSONL_MAX_DEPTH; depth <= TIDE_JSONL_MAX_DEPTH + 1;
       depth++) {
    int i;
    n = (size_t)snprintf(line, sizeof line, "{\"id\":1,\"x\":");
    for (i = 1; i < depth; i++) line[n++] = '[';
    for (i = 1; i < depth; i++) line[n++] = ']';
    line[n++] = '}';
    CHECK_EQ_INT(tide_jsonl_read(&v, line, n, "id", 2),
                 depth <= TIDE_JSONL_MAX_DEPTH ? 1 : 0);
  }
  tide_jsonl_value_close(&v);
}

/* The lines of a file holding content, joined with "|". */
static void lines_of(const char *content, size_t len, char *out,
                     size_t outlen) {
  char path[128];
  FILE *f;
  tide_JsonlFile file;
  const char *line;
  size_t n, at = 0;
  snprintf(path, sizeof path, "%s/f.jsonl", dir);
  f = fopen(path, "wb");
  fwrite(content, 1, len, f);
  fclose(f);
  CHECK_EQ_INT(tide_jsonl_open(&file, path, NULL, NULL), 0);
  out[0] = '\0';
  while (tide_jsonl_next(&file, &line, &n) == 1 && at + n + 2 < outlen) {
    memcpy(out + at, line, n);
    at += n;
    out[at++] = '|';
    out[at] = '\0';
  }
  tide_jsonl_close(&file);
}

static void test_lines(void) {
  char got[256], path[128];
  tide_JsonlFile file;
  static char big[200001];
  size_t i;
  const char *line;
  size_t n, count = 0;
  lines_of("a\nb\n", 4, got, sizeof got);
  CHECK(strcmp(got, "a|b|") == 0);
  lines_of("a\n\nb", 4, got, sizeof got);
  CHECK(strcmp(got, "a||b|") == 0);
  lines_of("", 0, got, sizeof got);
  CHECK(strcmp(got, "") == 0);
  lines_of("\n", 1, got, sizeof got);
  CHECK(strcmp(got, "|") == 0);
  /* A byte order mark is skipped at the start only; CR stays. */
  lines_of("\xef\xbb\xbf{}\r\n\xef\xbb\xbf", 10, got, sizeof got);
  CHECK(strcmp(got, "{}\r|\xef\xbb\xbf|") == 0);
  lines_of("\xef\xbb", 2, got, sizeof got);
  CHECK(strcmp(got, "\xef\xbb|") == 0);
  /* Lines across reads (64 KiB each), one longer than a read. */
  for (i = 0; i < sizeof big - 1; i++) big[i] = i % 1000 == 999 ? '\n' : 'x';
  memset(big + 100000, 'y', 80000); /* lines 101..180 become one */
  snprintf(path, sizeof path, "%s/f.jsonl", dir);
  {
    FILE *f = fopen(path, "wb");
    fwrite(big, 1, sizeof big - 1, f);
    fwrite("end", 1, 3, f);
    fclose(f);
  }
  CHECK_EQ_INT(tide_jsonl_open(&file, path, NULL, NULL), 0);
  while (tide_jsonl_next(&file, &line, &n) == 1) {
    count++;
    if (count == 101) CHECK_EQ_INT(n, 80999);
    else if (count == 121) CHECK(n == 3 && memcmp(line, "end", 3) == 0);
    else CHECK_EQ_INT(n, 999);
  }
  CHECK_EQ_INT(count, 121);
  tide_jsonl_close(&file);
  /* A missing file, in tide_file_read's words. */
  snprintf(path, sizeof path, "%s/missing.jsonl", dir);
  CHECK_EQ_INT(tide_jsonl_open(&file, path, NULL, NULL), TIDE_ENOTFOUND);
  CHECK_STR_CONTAINS(file.err, "missing.jsonl: no such file or directory");
  tide_jsonl_close(&file);
}

int main(void) {
  static const CheckTest tests[] = {
    {"a line read as json.lua reads it", test_reads_as_lua},
    {"nesting", test_nesting},
    {"lines of a file", test_lines},
    {NULL, NULL},
  };
  char path[128];
  int rc;
  snprintf(dir, sizeof dir, "/tmp/tide-jsonl-XXXXXX");
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    return 2;
  }
  rc = check_run("jsonl", tests);
  snprintf(path, sizeof path, "%s/f.jsonl", dir);
  remove(path);
  rmdir(dir);
  return rc;
}
