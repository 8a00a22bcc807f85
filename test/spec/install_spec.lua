-- `make install` (issue 10): the tide command, libtide.a, libtide.so, the
-- header, tide.pc and the Lua files, into a prefix; a C host built with
-- pkg-config against the installed shared library runs a pipeline through
-- the public C API (tide.h) and reads its counts.
local helpers = require "test.spec.helpers"

local q = helpers.q

local HOST = [[
#include <stdio.h>
#include <tide.h>

int main(int argc, char **argv) {
  tide_EngineOptions opts = {0};
  tide_Engine *e;
  tide_Stats st;
  int rc;
  opts.db = argv[2];
  opts.lua_dir = argv[3];
  if (argc != 4 || tide_engine_new(&e, &opts) != 0) return 3;
  if ((rc = tide_engine_load(e, argv[1])) != 0 ||
      (rc = tide_engine_update(e, 0)) != 0 ||
      (rc = tide_engine_stats(e, &st)) != 0) {
    fprintf(stderr, "%s: %s\n", tide_err_name(rc), tide_engine_errmsg(e));
    tide_engine_free(e);
    return 1;
  }
  printf("%s added %lld inserted %lld\n", tide_version(),
         (long long)st.components.added, (long long)st.targets.inserted);
  tide_engine_free(e);
  return 0;
}
]]

describe("make install", function()
  after_each(helpers.cleanup)

  it("installs a shared library and a tide.pc a C host builds against",
     function()
    local prefix = helpers.tmpdir() .. "/prefix"
    local _, err, code = helpers.run(("make -s -C %s install PREFIX=%s "
      .. "BUILD=%s"):format(q(helpers.root), q(prefix), q(helpers.build)))
    assert.are.equal(0, code, err)
    for _, f in ipairs { "bin/tide", "lib/libtide.a", "lib/libtide.so.0",
                         "lib/libtide.so", "lib/pkgconfig/tide.pc",
                         "include/tide.h", "share/lua/5.4/tide/init.lua",
                         "lib/tide_vec.so" } do
      assert.is_true(helpers.exists(prefix .. "/" .. f), f)
    end
    local dir = helpers.tmpdir()
    helpers.write(dir .. "/host.c", HOST)
    helpers.write(dir .. "/docs/a.txt", "alpha")
    helpers.write(dir .. "/docs/b.txt", "beta")
    helpers.write(dir .. "/pipeline.lua", ([[
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"
local Row = tide.record("Row", { { "path", "string", key = true },
                                 { "size", "integer" } })
local f = tide.fn("f", { memo = true }, function(file, out)
  out:row(Row { path = file.path, size = file.size })
end)
return tide.app("host", function()
  local out = sqlite.table { db = %q, name = "rows", schema = Row }
  tide.mount_each(f, fs.walk(%q), out)
end)
]]):format(dir .. "/out.db", dir .. "/docs"))
    local env = ("PKG_CONFIG_PATH=%s"):format(q(prefix .. "/lib/pkgconfig"))
    -- An ASan build's library links only into an instrumented program.
    local cc = os.getenv("TIDE_HOST_CC") or "cc"
    local _, cerr, ccode = helpers.run(("cd %s && %s %s -o host host.c "
      .. "$(%s pkg-config --cflags --libs tide)"):format(q(dir), env, cc, env))
    assert.are.equal(0, ccode, cerr)
    -- Linked against the shared library, not the archive.
    local ldd = helpers.run(("LD_LIBRARY_PATH=%s ldd %s/host"):format(
      q(prefix .. "/lib"), q(dir)))
    assert.matches("libtide%.so%.0 => " .. prefix:gsub("%p", "%%%0"), ldd)
    local out, rerr, rcode = helpers.run(("LD_LIBRARY_PATH=%s "
      .. "%s/host %s %s %s"):format(q(prefix .. "/lib"), q(dir),
                                    q(dir .. "/pipeline.lua"),
                      q(dir .. "/state.db"),
                      q(prefix .. "/share/lua/5.4")))
    assert.are.equal(0, rcode, rerr)
    assert.matches("^%d+%.%d+%.%d+ added 2 inserted 2\n$", out)
    -- The archive, as README says to link it: pkg-config --static alone
    -- still links libtide.so, which the linker prefers when both are
    -- there, and the host then does not start without LD_LIBRARY_PATH
    -- (clang, which make asan's host is built with, links both unless
    -- told to drop what is not used).
    _, cerr, ccode = helpers.run(("cd %s && %s %s -o host_static host.c "
      .. "%s -Wl,--as-needed $(%s pkg-config --static --cflags --libs "
      .. "tide)"):format(q(dir), env, cc, q(prefix .. "/lib/libtide.a"),
                         env))
    assert.are.equal(0, ccode, cerr)
    ldd = helpers.run(("ldd %s/host_static"):format(q(dir)))
    assert.is_nil(ldd:find("libtide", 1, true), ldd)
    out, rerr, rcode = helpers.run(("%s/host_static %s %s %s"):format(
      q(dir), q(dir .. "/pipeline.lua"), q(dir .. "/state.db"),
      q(prefix .. "/share/lua/5.4")))
    assert.are.equal(0, rcode, rerr)
    assert.matches("^%d+%.%d+%.%d+ added 0 inserted 0\n$", out)
  end)
end)
