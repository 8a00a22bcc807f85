local fs = require "tide.fs"
local helpers = require "test.spec.helpers"
local q = helpers.q

-- The message of an error raised by f(...), without a position prefix.
local function err_of(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok)
  return (tostring(err):gsub("^[^:]+:%d+: ", ""))
end

-- Relative paths the walk lists, joined by spaces.
local function listed(src, on_error)
  local out = {}
  for path, file in src:items(on_error) do
    assert.are.equal(path, file.path)
    out[#out + 1] = path
  end
  return table.concat(out, " ")
end

local function tree(dir, files)
  for name, content in pairs(files) do
    helpers.write(dir .. "/" .. name, content)
  end
  return dir
end

-- Files under dir (relative), sorted, joined by spaces; folders end in /.
local function contents(dir)
  local out = helpers.run("cd " .. q(dir) .. " && find . -mindepth 1 | sort")
  local names = {}
  for line in out:gmatch("[^\n]+") do
    local name = line:sub(3)
    local p = io.popen("test -d " .. q(dir .. "/" .. name) .. " && echo d")
    if p:read("l") == "d" then name = name .. "/" end
    p:close()
    names[#names + 1] = name
  end
  return table.concat(names, " ")
end

describe("tide.fs", function()
  after_each(helpers.cleanup)

  describe("fs.walk", function()
    it("is a source with a project-relative dir and its options", function()
      local src = fs.walk("docs", { include = { "**/*.md" },
                                    exclude = { "drafts" }, live = true })
      assert.are.equal("fs.walk", src.kind)
      assert.are.equal("docs", src.dir)
      assert.are.same({ "**/*.md" }, src.include)
      assert.are.same({ "drafts" }, src.exclude)
      assert.is_false(src.follow_symlinks)
      assert.is_true(src.live)
      assert.are.equal("function", type(src.items))
      local plain = fs.walk("/a/./b/../c/")
      assert.are.equal("/a/c", plain.dir)
      assert.is_nil(plain.include)
      assert.is_nil(plain.exclude)
      -- Watched in live mode unless it says otherwise.
      assert.is_true(plain.live)
      assert.is_false(fs.walk("x", { live = false }).live)
    end)

    it("keeps a copy of the pattern lists", function()
      local include = { "*.md" }
      local src = fs.walk("x", { include = include })
      include[1] = "*.txt"
      assert.are.same({ "*.md" }, src.include)
    end)

    it("rejects misuse with a message for the caller", function()
      local function walk_here()
        local src = fs.walk(42)
        return src
      end
      local ok, err = pcall(walk_here)
      assert.is_false(ok)
      assert.matches("fs_spec.lua:%d+: fs.walk: dir must be a non%-empty "
        .. "string, got number", err)
      assert.are.equal('fs.walk: dir must be a non-empty string, got ""',
                       err_of(fs.walk, ""))
      assert.are.equal("fs.walk: unknown option recursive (expected "
        .. "include, exclude, follow_symlinks or live)",
        err_of(fs.walk, "d", { recursive = true }))
      assert.are.equal("fs.walk: options must be a table, got string",
                       err_of(fs.walk, "d", "*.md"))
      assert.are.equal("fs.walk: include must be a list of glob strings, "
        .. "got string", err_of(fs.walk, "d", { include = "*.md" }))
      assert.are.equal("fs.walk: include must not be empty (leave it out "
        .. "to list every file)", err_of(fs.walk, "d", { include = {} }))
      assert.are.equal("fs.walk: exclude[2] must be a string, got number",
                       err_of(fs.walk, "d", { exclude = { "a", 2 } }))
      assert.are.equal("fs.walk: follow_symlinks must be a boolean, got "
        .. "string", err_of(fs.walk, "d", { follow_symlinks = "yes" }))
      assert.are.equal([[fs.walk: include: bad pattern "docs/[ab": ]]
        .. "unclosed '['", err_of(fs.walk, "d", { include = { "docs/[ab" } }))
      assert.are.equal([[fs.walk: exclude: bad pattern "!": empty pattern]],
                       err_of(fs.walk, "d", { exclude = { "!" } }))
    end)

    it("lists regular files sorted by name within each directory", function()
      local dir = tree(helpers.tmpdir(), {
        ["b.md"] = "b", ["a/z.md"] = "z", ["a/b.md"] = "b", ["A.md"] = "A",
        ["c/d/e.txt"] = "e", ["a.md"] = "a", ["a-b.md"] = "ab",
      })
      os.execute("mkdir " .. q(dir .. "/empty"))
      assert.are.equal("A.md a/b.md a/z.md a-b.md a.md b.md c/d/e.txt",
                       listed(fs.walk(dir)))
    end)

    it("gives each file its path, stat fields and the shared metatable",
       function()
      local dir = tree(helpers.tmpdir(), { ["sub/f.txt"] = "hello world" })
      local n = 0
      for path, f in fs.walk(dir):items() do
        n = n + 1
        assert.are.equal("sub/f.txt", path)
        assert.are.equal(dir, f.dir)
        assert.are.equal(dir .. "/sub/f.txt", f.abs)
        assert.are.equal(11, f.size)
        assert.are.equal("integer", math.type(f.mtime_ns))
        assert.are.equal("float", math.type(f.mtime))
        assert.is_true(math.abs(f.mtime - f.mtime_ns / 1e9) < 1e-6)
        assert.is_true(math.abs(f.mtime - os.time()) < 60)
        local ino = helpers.run("stat -c %i " .. q(f.abs))
        assert.are.equal(tonumber(ino), f.inode)
        assert.are.equal(fs.File, getmetatable(f))
        assert.are.equal("hello world", f:bytes())
      end
      assert.are.equal(1, n)
    end)

    it("selects with include and exclude globs, last match winning",
       function()
      local dir = tree(helpers.tmpdir(), {
        ["a.md"] = "", ["a/x.md"] = "", ["b/y.md"] = "", ["b/y.txt"] = "",
        ["docs/d.md"] = "", ["docs/sub/e.md"] = "", ["docs/sub/e.txt"] = "",
        ["drafts/f.md"] = "", ["build/out.o"] = "", ["build/keep/k.md"] = "",
      })
      assert.are.equal("a/x.md a.md b/y.md build/keep/k.md docs/d.md "
        .. "docs/sub/e.md drafts/f.md",
        listed(fs.walk(dir, { include = { "**/*.md" } })))
      assert.are.equal("docs/d.md docs/sub/e.md",
        listed(fs.walk(dir, { include = { "docs/**/*.md" } })))
      assert.are.equal("a.md",
        listed(fs.walk(dir, { include = { "*.md" } })))
      assert.are.equal("a/x.md a.md b/y.md b/y.txt build/keep/k.md",
        listed(fs.walk(dir, { exclude = { "docs", "drafts/", "build",
                                          "!build/keep/**" } })))
      assert.are.equal("a/x.md a.md b/y.md build/keep/k.md docs/d.md "
        .. "docs/sub/e.md", listed(fs.walk(dir, {
          include = { "**/*.md", "!drafts/**" } })))
      assert.are.equal("b/y.txt docs/sub/e.txt", listed(fs.walk(dir, {
        include = { "**/*.txt", "**/*.md" }, exclude = { "**/*.md" } })))
    end)

    it("answers whether a path would be listed", function()
      local src = fs.walk("d", { include = { "**/*.md" },
                                 exclude = { "build", "!build/keep/**" } })
      assert.is_true(src:selects("a/b.md"))
      assert.is_false(src:selects("a/b.txt"))
      assert.is_false(src:selects("build/x.md"))
      assert.is_true(src:selects("build/keep/x.md"))
    end)

    it("skips symbolic links unless asked to follow them", function()
      local dir = tree(helpers.tmpdir(), { ["a/f.md"] = "12345",
                                           ["b.md"] = "b" })
      os.execute(("cd %s && ln -s b.md l.md && ln -s a ld && ln -s .. a/up "
        .. "&& ln -s nowhere dangling"):format(q(dir)))
      assert.are.equal("a/f.md b.md", listed(fs.walk(dir)))
      local src = fs.walk(dir, { follow_symlinks = true })
      assert.is_true(src.follow_symlinks)
      assert.are.equal("a/f.md b.md l.md ld/f.md", listed(src))
    end)

    it("raises naming the dir when it does not exist", function()
      local dir = helpers.tmpdir() .. "/missing"
      local src = fs.walk(dir)
      local ok, err = pcall(src.items, src)
      assert.is_false(ok)
      assert.are.equal("fs.walk: " .. dir .. ": no such file or directory",
                       err)
    end)

    it("never lists the state store or the run's own targets, and a run "
       .. "over them finds the last one's result", function()
      local dir = tree(helpers.tmpdir(), { ["a.md"] = "alpha" })
      helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
local fs = require "tide.fs"
local sqlite = require "tide.sqlite"
local Doc = tide.record("Doc", { { "path", "string", key = true },
                                 { "size", "integer" } })
local put = tide.fn("put", { memo = true }, function(file, docs, site)
  docs:row(Doc { path = file.path, size = file.size })
  site:file(file.path .. ".txt", file:text())
end)
return tide.app("own", function()
  local docs = sqlite.table { db = "out/docs.db", name = "docs", schema = Doc }
  -- A `!` of the user's does not list them again.
  tide.mount_each(put, fs.walk(".", { exclude = { "*.tmp", "!.tide/**",
                                                  "!out/**", "!site/**" } }),
                  docs, fs.dir("site"))
end)
]])
      local function update()
        local out, err, code = helpers.run(("cd %s && %s update pipeline.lua "
          .. "--json"):format(q(dir), helpers.tide))
        assert.are.equal(0, code, err)
        return require("cjson").decode(out).components
      end
      assert.are.equal(2, update().added)
      local again = update()
      assert.are.same({ 0, 0, 2 }, { again.added, again.reprocessed,
                                     again.unchanged })
      assert.are.equal("a.md.txt pipeline.lua.txt", contents(dir .. "/site"))
      -- A folder target declared in the component, below the walk, and a
      -- store named through "..": left out from the first run on.
      dir = tree(helpers.tmpdir(), { ["a.md"] = "alpha", ["sub/x"] = "" })
      helpers.write(dir .. "/pipeline.lua", [[
local tide = require "tide"
local fs = require "tide.fs"
local put = tide.fn("put", function(file)
  fs.dir("site"):file(file.path .. ".txt", file:text())
end)
return tide.app("own", function()
  tide.mount_each(put, fs.walk(".", { include = { "**/*.md", "*.db*",
                                                  "**/*.txt" } }))
end)
]])
      local function update_at(db)
        local out, err, code = helpers.run(("cd %s && %s update pipeline.lua "
          .. "--json --db %s"):format(q(dir), helpers.tide, db))
        assert.are.equal(0, code, err)
        return require("cjson").decode(out).components
      end
      assert.are.equal(1, update_at("sub/../st.db").added)
      again = update_at("sub/../st.db")
      assert.are.same({ 0, 1, 0 }, { again.added, again.reprocessed,
                                     again.deleted })
      assert.are.equal("a.md.txt", contents(dir .. "/site"))
    end)

    it("reports an unreadable directory, or hands it to on_error",
       function()
      -- Run as an unprivileged user so permissions apply even to root.
      local dir = tree(helpers.tmpdir(), { ["a.md"] = "", ["locked/x.md"] = "",
                                           ["z.md"] = "" })
      os.execute("chmod 755 " .. q(dir) .. " && chmod 000 "
        .. q(dir .. "/locked"))
      local script = helpers.write(helpers.tmpdir() .. "/s.lua", [[
local fs = require "tide.fs"
local dir = ...
local src = fs.walk(dir)
print(select(2, pcall(src.items, src)))
local seen = {}
for path in src:items(function(p, m) seen[#seen + 1] = p .. ": " .. m end) do
  seen[#seen + 1] = path
end
print(table.concat(seen, ", "))
local n = 0
for _ in fs.walk(dir, { exclude = { "locked" } }):items() do n = n + 1 end
print(n)
]])
      os.execute("chmod 755 " .. q(script:match("^(.*)/")))
      local drop = helpers.run("id -u") == "0\n"
        and "setpriv --reuid=65534 --regid=65534 --clear-groups " or ""
      local out, err, code = helpers.run(drop .. q(helpers.tide) .. " run "
        .. q(script) .. " " .. q(dir))
      assert.are.equal("", err)
      assert.are.equal(0, code)
      -- The walk happens when items() is called, so on_error runs first.
      assert.are.equal("fs.walk: " .. dir .. "/locked: permission denied\n"
        .. "locked: permission denied, a.md, z.md\n2\n", out)
    end)

    it("rejects an on_error that is not a function", function()
      local src = fs.walk(helpers.tmpdir())
      assert.are.equal("fs.walk: on_error must be a function",
                       err_of(src.items, src, "log"))
    end)
  end)

  describe("file objects", function()
    local function only_file(dir)
      local _, f = fs.walk(dir):items()()
      return f
    end

    it("read raw bytes and UTF-8 text", function()
      local dir = helpers.tmpdir()
      helpers.write(dir .. "/t.txt", "\239\187\191caf\195\169\r\nline\255\n")
      local f = only_file(dir)
      assert.are.equal("\239\187\191caf\195\169\r\nline\255\n", f:bytes())
      assert.are.equal("caf\195\169\r\nline\239\191\189\n", f:text())
      assert.are.equal("", (function()
        helpers.write(dir .. "/t.txt", "")
        return f:text()
      end)())
    end)

    it("text of valid UTF-8 is the same string", function()
      local dir = helpers.tmpdir()
      helpers.write(dir .. "/t.md",
                    "# Title\n\nna\195\175ve \240\159\152\128\n")
      local f = only_file(dir)
      assert.are.equal(f:bytes(), f:text())
      -- Valid text after a byte order mark: the text after the mark.
      helpers.write(dir .. "/t.md", "\239\187\191caf\195\169\n")
      assert.are.equal("caf\195\169\n", f:text())
    end)

    it("raise naming the path and the reason when the file is gone",
       function()
      local dir = tree(helpers.tmpdir(), { ["gone.md"] = "x" })
      local f = only_file(dir)
      os.remove(f.abs)
      local ok, err = pcall(f.bytes, f)
      assert.is_false(ok)
      assert.are.equal(f.abs .. ": no such file or directory", err)
      ok, err = pcall(f.text, f)
      assert.are.equal(f.abs .. ": no such file or directory", err)
    end)

    it("raise with the reason in words, whatever it is", function()
      local dir = tree(helpers.tmpdir(), { ["loop.md"] = "x" })
      local f = only_file(dir)
      os.execute(("cd %s && rm loop.md && ln -s loop.md loop.md")
        :format(q(dir)))
      local ok, err = pcall(f.bytes, f)
      assert.is_false(ok)
      assert.are.equal(f.abs .. ": too many levels of symbolic links", err)
    end)
  end)

  describe("core.errno_text", function()
    local core = require "tide.core"

    it("describes an errno value in lowercase words", function()
      assert.are.equal("permission denied", core.errno_text(13))   -- EACCES
      assert.are.equal("no such file or directory", core.errno_text(2))
      assert.are.equal("too many levels of symbolic links",
                       core.errno_text(40))                        -- ELOOP
      assert.are.equal("input/output error", core.errno_text(5))  -- EIO
      assert.are.equal("unknown error 123456", core.errno_text(123456))
    end)

    it("rejects what is not an errno value", function()
      assert.matches("^bad argument #1 to '[%w.]*errno_text' %(number "
                     .. "expected", err_of(core.errno_text, "x"))
      assert.matches("^bad argument #1 to '[%w.]*errno_text' %(not an "
                     .. "errno value%)$", err_of(core.errno_text, -1))
    end)
  end)

  describe("fs.dir_target", function()
    local t = fs.dir_target

    local function spec_for(dir)
      return { dir = dir, given = "out" }
    end

    it("names the folder by its path", function()
      local spec = spec_for("/abs/out")
      assert.are.equal("fs.dir", t.name)
      assert.are.equal("/abs/out", t.identity(spec))
      assert.are.equal("out", t.short_name(spec))
    end)

    it("creates the folder on setup and keeps what is in it", function()
      local root = helpers.tmpdir()
      local spec = spec_for(root .. "/a/b/out")
      assert.is_true(t.setup(spec, nil))
      assert.are.equal("a/ a/b/ a/b/out/", contents(root))
      helpers.write(spec.dir .. "/mine.txt", "x")
      assert.is_true(t.setup(spec, spec))
      assert.are.equal("x", helpers.read(spec.dir .. "/mine.txt"))
    end)

    it("writes files atomically, creating their folders", function()
      local root = helpers.tmpdir()
      local spec = spec_for(root .. "/out")
      t.setup(spec)
      t.apply(spec, {
        { key = "a.txt", value = "A" },
        { key = "x/y/z.txt", value = "Z" },
        { key = "empty", value = "" },
      })
      assert.are.equal("a.txt empty x/ x/y/ x/y/z.txt", contents(spec.dir))
      assert.are.equal("A", helpers.read(spec.dir .. "/a.txt"))
      assert.are.equal("Z", helpers.read(spec.dir .. "/x/y/z.txt"))
      assert.are.equal("", helpers.read(spec.dir .. "/empty"))
      t.apply(spec, { { key = "a.txt", value = "A2" } })
      assert.are.equal("A2", helpers.read(spec.dir .. "/a.txt"))
      -- no temporary file left behind
      assert.are.equal("a.txt empty x/ x/y/ x/y/z.txt", contents(spec.dir))
    end)

    it("deletes files and the folders left empty, nothing else", function()
      local root = helpers.tmpdir()
      local spec = spec_for(root .. "/out")
      t.setup(spec)
      t.apply(spec, {
        { key = "keep.txt", value = "k" },
        { key = "x/y/z.txt", value = "Z" },
        { key = "x/w.txt", value = "W" },
        { key = "u/v/gone.txt", value = "G" },
        { key = "m/n.txt", value = "N" },
      })
      helpers.write(spec.dir .. "/m/user.txt", "not tide's")
      t.apply(spec, {
        { key = "x/y/z.txt" }, { key = "u/v/gone.txt" }, { key = "m/n.txt" },
      })
      assert.are.equal("keep.txt m/ m/user.txt x/ x/w.txt", contents(spec.dir))
      t.apply(spec, { { key = "x/w.txt" }, { key = "keep.txt" } })
      assert.are.equal("m/ m/user.txt", contents(spec.dir))
      -- replaying a batch is harmless
      t.apply(spec, { { key = "x/w.txt" }, { key = "keep.txt" } })
      assert.are.equal("m/ m/user.txt", contents(spec.dir))
    end)

    it("never removes the folder itself on apply, only on drop when empty",
       function()
      local root = helpers.tmpdir()
      local spec = spec_for(root .. "/out")
      t.setup(spec)
      t.apply(spec, { { key = "d/a.txt", value = "a" } })
      t.apply(spec, { { key = "d/a.txt" } })
      assert.are.equal("out/", contents(root))
      helpers.write(spec.dir .. "/user.txt", "u")
      t.drop(spec)
      assert.are.equal("out/ out/user.txt", contents(root))
      os.remove(spec.dir .. "/user.txt")
      t.drop(spec)
      assert.are.equal("", contents(root))
      t.drop(spec) -- already gone
    end)

    it("rejects names that leave the folder, before writing anything",
       function()
      local root = helpers.tmpdir()
      local spec = spec_for(root .. "/out")
      t.setup(spec)
      local cases = {
        ["../x"] = [[fs.dir: file name "../x" has a '..' segment; names ]]
          .. "must stay inside the folder",
        ["a/../../x"] = [[fs.dir: file name "a/../../x" has a '..' ]]
          .. "segment; names must stay inside the folder",
        ["/etc/passwd"] = [[fs.dir: file name "/etc/passwd" is absolute; ]]
          .. "names are relative to the folder",
        ["a//b"] = [[fs.dir: file name "a//b" has an empty or '.' segment]],
        ["./a"] = [[fs.dir: file name "./a" has an empty or '.' segment]],
        ["a/"] = [[fs.dir: file name "a/" has an empty or '.' segment]],
        [""] = [[fs.dir: file name "" is empty]],
      }
      for name, message in pairs(cases) do
        assert.are.equal(message, err_of(t.apply, spec, {
          { key = "first.txt", value = "1" }, { key = name, value = "x" } }))
      end
      assert.are.equal("fs.dir: content of a.txt must be a string, got "
        .. "number", err_of(t.apply, spec, { { key = "a.txt", value = 1 } }))
      assert.are.equal("", contents(spec.dir))
    end)

    it("raises naming the path when a write fails", function()
      local root = helpers.tmpdir()
      local spec = spec_for(root .. "/out")
      t.setup(spec)
      helpers.write(spec.dir .. "/plain", "p")
      assert.are.equal("fs.dir: " .. spec.dir .. "/plain/f.txt: not a "
        .. "directory", err_of(t.apply, spec,
          { { key = "plain/f.txt", value = "x" } }))
    end)
  end)

  describe("fs.dir", function()
    it("rejects a dir that is not a string", function()
      local ok, err = pcall(function()
        local h = fs.dir(nil)
        return h
      end)
      assert.is_false(ok)
      assert.matches("fs_spec.lua:%d+: fs.dir: dir must be a non%-empty "
        .. "string, got nil", err)
    end)

    it("handles validate file names and contents, then declare", function()
      local declared = {}
      local target = { declare = function(_, k, v)
        declared[#declared + 1] = k .. "=" .. v
      end }
      local h = setmetatable({ target = target, spec = { dir = "/o" } },
                             fs.Dir)
      h:file("a/b.txt", "x")
      assert.are.same({ "a/b.txt=x" }, declared)
      local ok, err = pcall(function() h:file("../b", "x") end)
      assert.is_false(ok)
      assert.matches([[fs_spec.lua:%d+: fs.dir: file name "../b" has a]], err)
      assert.are.equal("fs.dir: content of a.txt must be a string, got nil",
                       err_of(h.file, h, "a.txt"))
      assert.are.equal("fs.dir: file name must be a string, got number",
                       err_of(h.file, h, 3, "x"))
      assert.are.same({ "a/b.txt=x" }, declared)
      assert.are.equal("/o", getmetatable(h).__tide_key(h))
    end)
  end)
end)
