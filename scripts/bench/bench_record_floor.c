/*
** Floors in C for context beside the record benchmark (bench_record.lua):
** what any record check that returns a copy costs through Lua's C API
** before it checks anything. Runs the benchmark's loops, with the record
** types' constructors replaced by a __call that copies its argument and
** checks nothing:
** - the 3 fields, by lua_next and lua_rawset into a table presized for
**   them, given a metatable; as a ratio to the plain table construction;
** - the same record around a 256-number vector, its numbers copied by
**   lua_rawgeti and lua_rawseti into a table presized for them; in
**   microseconds.
** CPU time, medians of 5 rounds. Usage: bench_record_floor
*/
#include <stdio.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

int main(void);

/* (type, value) -> a copy of value with the metatable upvalue 1; each
** table-valued field's 1..#field copied into a new table. No checks. */
static int copy_record(lua_State *L) {
  int v = 2, out;
  lua_settop(L, 2);
  lua_createtable(L, 0, 3);
  out = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, v)) {
    if (lua_type(L, -1) == LUA_TTABLE) {
      int src = lua_gettop(L), dst;
      lua_Integer n = (lua_Integer)lua_rawlen(L, src), i;
      lua_createtable(L, (int)n, 0);
      dst = lua_gettop(L);
      for (i = 1; i <= n; i++) {
        lua_rawgeti(L, src, i);
        lua_rawseti(L, dst, i);
      }
      lua_replace(L, src);
    }
    lua_pushvalue(L, -2);
    lua_rotate(L, -2, 1);
    lua_rawset(L, out);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_setmetatable(L, out);
  return 1;
}

static const char script[] =
  "local copy = ...\n"
  "local clock, fmt = os.clock, string.format\n"
  "local function median(f, n)\n"
  "  local t = {}\n"
  "  for round = 1, 5 do\n"
  "    local t0 = clock()\n"
  "    f(n)\n"
  "    t[round] = (clock() - t0) / n\n"
  "  end\n"
  "  table.sort(t)\n"
  "  return t[3]\n"
  "end\n"
  "local Doc = setmetatable({}, { __call = copy })\n"
  "local path, title = 'docs/guide/cli.md', 'The command line'\n"
  "local plain3 = median(function(n)\n"
  "  for i = 1, n do\n"
  "    local r = { path = path, title = title, size = i }\n"
  "    if r.size ~= i then error('unreachable') end\n"
  "  end\n"
  "end, 500000)\n"
  "local copy3 = median(function(n)\n"
  "  for i = 1, n do\n"
  "    local r = Doc { path = path, title = title, size = i }\n"
  "    if r.size ~= i then error('unreachable') end\n"
  "  end\n"
  "end, 500000)\n"
  "print(fmt('C floor, a copy of the 3 fields with a metatable and no check:'\n"
  "  .. ' %.0f ns, ratio %.2f to the plain table (%.0f ns)', copy3 * 1e9,\n"
  "  copy3 / plain3, plain3 * 1e9))\n"
  "local v = {}\n"
  "for i = 1, 256 do v[i] = (i % 17) / 17 - 0.5 end\n"
  "local copyv = median(function(n)\n"
  "  for _ = 1, n do\n"
  "    local r = Doc { id = path, embedding = v }\n"
  "    if r.id ~= path then error('unreachable') end\n"
  "  end\n"
  "end, 20000)\n"
  "print(fmt('C floor, a copy of the record and its 256 numbers with no'\n"
  "  .. ' check: %.2f us', copyv * 1e6))\n";

int main(void) {
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "bench_record_floor: cannot make a Lua state\n");
    return 1;
  }
  luaL_openlibs(L);
  if (luaL_loadbuffer(L, script, sizeof script - 1, "=bench_record_floor")
      != LUA_OK) {
    fprintf(stderr, "bench_record_floor: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return 1;
  }
  lua_newtable(L); /* the records' metatable */
  lua_pushcclosure(L, copy_record, 1);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    fprintf(stderr, "bench_record_floor: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return 1;
  }
  lua_close(L);
  return 0;
}
