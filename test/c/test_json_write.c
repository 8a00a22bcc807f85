/* C tests of the JSON writer: the text of each kind of value, the order
** of keys, metatables that say more, and failures that name the field. */
#include <math.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "check.h"
#include "json_write.h"

static lua_State *L;

/* Writes the value the Lua expression expr gives; returns the text, or
** "ERR <where>: <err>". */
static const char *write_expr(const char *expr, int flags) {
  static char text[1024];
  tide_Buf out;
  tide_JsonWriter w;
  char chunk[512];
  int rc;
  snprintf(chunk, sizeof chunk, "return %s", expr);
  if (luaL_dostring(L, chunk) != LUA_OK) {
    snprintf(text, sizeof text, "LUA %s", lua_tostring(L, -1));
    lua_settop(L, 0);
    return text;
  }
  tide_buf_init(&out, NULL, NULL);
  tide_json_init(&w, &out, flags, NULL, NULL);
  rc = tide_json_write(&w, L, -1);
  if (rc == 0)
    snprintf(text, sizeof text, "%.*s", (int)out.len, (const char *)out.data);
  else
    snprintf(text, sizeof text, "ERR %s: %s", w.where, w.err);
  CHECK_EQ_INT(lua_gettop(L), 1); /* the writer leaves the stack as is */
  lua_settop(L, 0);
  tide_json_close(&w);
  tide_buf_close(&out);
  return text;
}

#define EXPECT(expr, want) EXPECT_F(expr, 0, want)
#define EXPECT_F(expr, flags, want)                                       \
  do {                                                                    \
    const char *got_ = write_expr((expr), (flags));                       \
    if (strcmp(got_, (want)) != 0) {                                      \
      fprintf(stderr, "  %s:%d: %s -> %s, expected %s\n", __FILE__,       \
              __LINE__, (expr), got_, (want));                            \
      check_failures_in_test++;                                           \
    }                                                                     \
  } while (0)

static void test_scalars(void) {
  EXPECT("nil", "null");
  EXPECT("true", "true");
  EXPECT("false", "false");
  EXPECT("42", "42");
  EXPECT("-7", "-7");
  EXPECT("math.mininteger", "-9223372036854775808");
  EXPECT("1.0", "1.0");
  EXPECT("-0.0", "-0.0");
  EXPECT("2.5", "2.5");
  EXPECT("0.1 + 0.2", "0.30000000000000004");
  EXPECT("1e300", "1e+300");
  EXPECT("2^53", "9007199254740992.0");
  EXPECT("1e-7", "1e-07");
}

static void test_strings(void) {
  EXPECT("'plain'", "\"plain\"");
  EXPECT("'q\"b\\\\s/'", "\"q\\\"b\\\\s/\"");
  EXPECT("'\\n\\r\\t\\b\\f\\1\\31\\127'",
         "\"\\n\\r\\t\\b\\f\\u0001\\u001f\x7f\"");
  EXPECT("'\\0'", "\"\\u0000\"");
  EXPECT("'caf\\u{e9} \\u{20ac} \\u{1f600}'",
         "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  /* Each byte that starts no valid sequence becomes U+FFFD. */
  EXPECT("'a\\255b'", "\"a\\ufffdb\"");
  EXPECT("'c\\226\\130.txt'", "\"c\\ufffd\\ufffd.txt\"");
  EXPECT("'\\192\\128'", "\"\\ufffd\\ufffd\""); /* overlong NUL */
  EXPECT("'\\237\\160\\128'", "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate */
}

static void test_tables(void) {
  EXPECT("{}", "{}");
  EXPECT("{ 1, 'two', { 3 } }", "[1,\"two\",[3]]");
  EXPECT("{ b = 1, a = 2, [\"\"] = 3 }", "{\"\":3,\"a\":2,\"b\":1}");
  /* Not 1..n: an object with the integers in decimal, sorted as text. */
  EXPECT("{ [1] = 'a', [3] = 'c' }", "{\"1\":\"a\",\"3\":\"c\"}");
  EXPECT("{ [10] = 1, [9] = 2, [-1] = 3 }",
         "{\"-1\":3,\"10\":1,\"9\":2}");
  EXPECT("{ 1, x = 2 }", "{\"1\":1,\"x\":2}");
  EXPECT("{ [1] = 'int', ['1'] = 'str' }",
         "{\"1\":\"str\",\"1\":\"int\"}");
  /* Equal values, equal text, whatever order the table was built in. */
  EXPECT("(function() local t = {} for i = 50, 1, -1 do t['k'..i] = i end "
         "return { a = t.k1, b = t.k50 } end)()", "{\"a\":1,\"b\":50}");
  EXPECT("setmetatable({ a = 1 }, { __index = function() return 9 end })",
         "{\"a\":1}");
}

static void test_metatables(void) {
  EXPECT("setmetatable({}, { __jsontype = 'array' })", "[]");
  EXPECT("setmetatable({ 1, 2 }, { __jsontype = 'object' })",
         "{\"1\":1,\"2\":2}");
  EXPECT("setmetatable({ b = 2, z = 1, a = 3 }, "
         "{ __jsonorder = { 'z', 'missing', 'b' } })",
         "{\"z\":1,\"missing\":null,\"b\":2,\"a\":3}");
  /* Every key ordered: nothing left to sort. */
  EXPECT("setmetatable({ z = 1 }, { __jsonorder = { 'z' } })",
         "{\"z\":1}");
  EXPECT("setmetatable({ 5 }, { __jsonorder = { 'n' } })",
         "{\"n\":null,\"1\":5}");
  EXPECT("setmetatable({}, { __jsonorder = { true } })",
         "ERR : __jsonorder lists a boolean");
}

static void test_failures(void) {
  EXPECT("0/0", "ERR : expected a finite number, got NaN");
  EXPECT("{ n = { 1, math.huge } }",
         "ERR .n[2]: expected a finite number, got inf");
  EXPECT("{ ['odd key'] = -math.huge }",
         "ERR [\"odd key\"]: expected a finite number, got -inf");
  EXPECT_F("{ 1, 0/0, math.huge }", TIDE_JSON_NONFINITE_NULL,
           "[1,null,null]");
  EXPECT("{ f = print }", "ERR .f: expected json, got function");
  EXPECT("{ { co = coroutine.create(print) } }",
         "ERR [1].co: expected json, got thread");
  EXPECT("{ a = { [true] = 1 } }", "ERR .a: expected json, got a boolean key");
  EXPECT("{ [1.5] = 1 }", "ERR : expected json, got a float key");
  EXPECT("(function() local t = {} t.self = t return t end)()",
         "ERR .self.self.self.self.self....self.self.self.self.self: json "
         "nested too deeply (a cycle?)");
}

static int push_null(lua_State *l) {
  lua_pushlightuserdata(l, NULL);
  return 1;
}

static void test_null(void) {
  lua_register(L, "null", push_null);
  EXPECT("{ a = null() }", "{\"a\":null}");
  EXPECT("{ null(), 2 }", "[null,2]");
}

static void test_pieces(void) {
  tide_Buf b;
  tide_buf_init(&b, NULL, NULL);
  CHECK_EQ_INT(tide_json_put_string(&b, "a\0b", 3), 0);
  CHECK_EQ_INT(tide_json_put_integer(&b, -5), 0);
  CHECK_EQ_INT(tide_json_put_float(&b, 3.0), 0);
  CHECK_EQ_INT(tide_json_put_float(&b, 1.0 / 3), 0);
  CHECK(b.len == strlen("\"a\\u0000b\"-53.00.3333333333333333") &&
        memcmp(b.data, "\"a\\u0000b\"-53.00.3333333333333333", b.len) == 0);
  tide_buf_close(&b);
}

int main(void) {
  static const CheckTest tests[] = {
    {"scalars", test_scalars},
    {"strings, escapes and invalid UTF-8", test_strings},
    {"arrays and objects", test_tables},
    {"metatables: __jsontype, __jsonorder", test_metatables},
    {"failures name the field", test_failures},
    {"json.null", test_null},
    {"pieces", test_pieces},
    {NULL, NULL},
  };
  int rc;
  L = luaL_newstate();
  luaL_openlibs(L);
  rc = check_run("json_write", tests);
  lua_close(L);
  return rc;
}
