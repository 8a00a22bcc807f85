-- tide.fs: the files under a directory as a source (fs.walk) and a folder
-- as a target (fs.dir). Walking, globs and file I/O are C (tide.core); this
-- module validates and shapes.
--
-- fs.walk(dir, { include, exclude, follow_symlinks, live }) is a source:
-- src:items([on_error]) iterates relpath, file over the regular files
-- under dir, sorted by name within each directory. include and exclude
-- are lists of globs matched against the relative, `/`-separated path:
-- `*` (not across `/`), `**` (whole segments, zero or more; one or more as
-- the last segment), `?`, `[a-z]`, `[!a-z]`, `\` escapes, a trailing `/`
-- for directories only. A file is listed when some include pattern (all
-- files when there is no include list) matches its path and no exclude
-- pattern matches it or one of its parent directories; in either list a
-- later `!pattern` takes back what earlier patterns matched (the last
-- matching pattern wins, as in .gitignore), so exclude = { "build",
-- "!build/docs/**" } keeps build/docs. Directories nothing could be listed
-- from are never opened. The patterns are compiled once, by fs.walk (a bad
-- pattern is an error there), and serve every listing and every live
-- event of that walk (walk:globs() hands the sets to C). Symbolic links are skipped unless
-- follow_symlinks is set (then a cycle is entered once). A directory that
-- cannot be read raises an error naming it, or is passed to
-- on_error(relpath, message) and skipped when a handler is given.
--
-- A file is a plain table with the shared metatable fs.File: .path
-- (relative), .dir (the walked directory as fs.project_path gives it),
-- .abs (dir/path), .size, .mtime
-- (seconds, a float), .mtime_ns, .inode, and :bytes() and :text()
-- (UTF-8: a byte order mark dropped, each invalid byte replaced by U+FFFD,
-- line ends kept). Both take an optional { decompress = true }: a file
-- that starts with the gzip magic number is decompressed (zlib, in C:
-- gunzip.h; concatenated members read whole; at most 1 GiB of output),
-- any other file is returned as it is; corrupt or truncated gzip data
-- raises an error naming the file.
--
-- fs.dir(dir) is a folder target: handle:file(name, content) declares the
-- file dir/name. fs.dir_target is its target type (see tide.target_type):
-- writes are atomic (temporary file, fsync, rename), parent folders are
-- created, deleted files' folders are removed once empty, and nothing is
-- ever deleted but the files named in the changes and empty folders.
--
-- Misuse raises error(msg, 2); failures at run time (a missing dir, an
-- unreadable file, a write that fails) raise error(msg, 0) with a message
-- naming the path and the reason, since they happen inside the engine.
local core = require "tide.core"
local sched = require "tide.sched"

local type, error, pairs, ipairs, setmetatable, tostring, require =
  type, error, pairs, ipairs, setmetatable, tostring, require
local fmt = string.format
local sort, concat = table.sort, table.concat
local cbor_encode, cbor_decode = core.cbor_encode, core.cbor_decode
local fs_glob, fs_walk, fs_selects, fs_read, fs_mkdir =
  core.fs_glob, core.fs_walk, core.fs_selects, core.fs_read, core.fs_mkdir
local fs_apply, fs_remove, fs_rmdir, fs_abspath, utf8_clean =
  core.fs_apply, core.fs_remove, core.fs_rmdir, core.fs_abspath,
  core.utf8_clean
local fingerprint_bytes = core.fingerprint_bytes
local read_file = core.read_file
local gunzip, is_gzip = core.gunzip, core.is_gzip

local fs = {}

-- ---- Files ----

local File = { __name = "tide.fs.File" }
File.__index = File

-- Files at least this large are read (and fingerprinted) on libuv's
-- thread pool: inside a component the others run meanwhile.
local LARGE_FILE = core.large_file

-- A file the walk did not read (file._walk == true: its component runs
-- whatever its content) is fingerprinted from the bytes read here, the
-- fingerprint kept in the same field, so that a run reads it once (see
-- the walk fast path, index_walk.h). The walk's read-ahead (readahead.h)
-- may have read it already, on its thread: its bytes and their
-- fingerprint are then in _content and _content_fp.
local function read(file)
  local unread = file._walk == true
  local content = file._content
  if content then
    -- Taken once: the File does not keep the bytes alive while its
    -- component's batch is written; a second read reads the file.
    file._content = nil
    if unread then file._walk = file._content_fp end
    return content
  end
  if (file.size or 0) >= LARGE_FILE then
    local s, fp = read_file(file.abs, unread)
    if not s then error(fp, 0) end
    if unread then file._walk = fp end
    return s
  end
  local s, err = fs_read(file.abs)
  if not s then error(err, 0) end
  if unread then file._walk = fingerprint_bytes(s) end
  return s
end

-- Whether the options of file:bytes or file:text (a table) ask to
-- decompress; raises at the caller's caller on a bad option.
local function decompress(opts, method)
  if type(opts) ~= "table" then
    error(fmt("file:%s: options must be a table, got %s", method,
              type(opts)), 3)
  end
  for k, v in pairs(opts) do
    if k ~= "decompress" then
      error(fmt("file:%s: unknown option %s (expected decompress)", method,
                tostring(k)), 3)
    end
    if type(v) ~= "boolean" then
      error(fmt("file:%s: decompress must be a boolean, got %s", method,
                type(v)), 3)
    end
  end
  return opts.decompress
end

-- The bytes, decompressed when they are gzip data.
local function inflate(file, s)
  if not is_gzip(s) then return s end
  local out, err = gunzip(s, file.abs)
  if not out then error(err, 0) end
  return out
end

-- file.text() for file:text(), a Lua slip said as such, not as a nil
-- indexed inside tide. [level: the method's caller]
local function check_file(self, method)
  if getmetatable(self) ~= File then
    error(fmt("file:%s: call it with a colon (file:%s()), not a dot",
              method, method), 3)
  end
end

-- The raw bytes of the file ({ decompress = true }: see above).
function File:bytes(opts)
  check_file(self, "bytes")
  if opts == nil then return read(self) end
  if decompress(opts, "bytes") then return inflate(self, read(self)) end
  return read(self)
end

-- The content as UTF-8 text ({ decompress = true }: see above).
function File:text(opts)
  check_file(self, "text")
  if opts == nil then return utf8_clean(read(self)) end
  if decompress(opts, "text") then
    return utf8_clean(inflate(self, read(self)))
  end
  return utf8_clean(read(self))
end

File.__tostring = function(f) return "file " .. f.abs end

-- As a memo argument a file counts by its path and its content, so a
-- touched but identical file is still a hit; inside a run the content
-- fingerprint comes from the run's file states.
File.__tide_key = function(file)
  local frame = sched.current_frame()
  if frame then return { file.abs, frame.run:file_fp(file) } end
  local fp, err = core.fingerprint_file(file.abs, "raw")
  if not fp then error(err, 0) end
  return { file.abs, fp }
end

fs.File = File

-- ---- fs.walk ----

local Walk = { __name = "tide.fs.walk" }
Walk.__index = Walk

-- A copy of a pattern list, or nil and why it is not one.
local function pattern_list(what, list)
  if list == nil then return nil end
  if type(list) ~= "table" then
    return nil, fmt("%s must be a list of glob strings, got %s", what,
                    type(list))
  end
  if #list == 0 and what == "include" then
    return nil, "include must not be empty (leave it out to list every file)"
  end
  local copy = {}
  for i = 1, #list do
    if type(list[i]) ~= "string" then
      return nil, fmt("%s[%d] must be a string, got %s", what, i,
                      type(list[i]))
    end
    copy[i] = list[i]
  end
  for k in pairs(list) do
    if copy[k] == nil then
      return nil, fmt("%s must be a list of glob strings (has key %s)", what,
                      tostring(k))
    end
  end
  return copy
end

-- The compiled set of a list (nil for none), or nil and the message.
local function compile(what, list)
  if list == nil then return nil end
  local set, err = fs_glob(list)
  if not set then return nil, what .. ": " .. err end
  return set
end

-- The compiled include and exclude sets of each walk: compiled once, when
-- the walk is made, and kept beside it rather than in it, since a walk is
-- plain data (a memo argument encodes it, a worker state gets a copy). A
-- copy compiles its own on first use.
local compiled = setmetatable({}, { __mode = "k" })

local function walk_globs(walk)
  local sets = compiled[walk]
  if not sets then
    local inc, err = compile("include", walk.include)
    if err then error("fs.walk: " .. err, 0) end
    local exc
    exc, err = compile("exclude", walk.exclude)
    if err then error("fs.walk: " .. err, 0) end
    sets = { inc or false, exc or false }
    compiled[walk] = sets
  end
  return sets[1] or nil, sets[2] or nil
end

-- A walk never lists what tide itself writes below its folder (the run's
-- own_paths: the state store and the files SQLite keeps beside it, the
-- targets' databases and folders): read back as input, they would differ
-- at every run, which would then never find the last one's result, and
-- in live mode each cycle's writes would start the next. They join the
-- walk's exclude patterns after the user's (the last pattern that
-- matches decides, so no `!` pattern lists them again).
local function escape_glob(path) return (path:gsub("[^%w/._-]", "\\%0")) end

local function own_excludes(walk, run)
  local root, rel = walk.abs .. "/", {}
  for _, path in ipairs(run:own_paths()) do
    if path:sub(1, #root) == root then
      rel[#rel + 1] = escape_glob(path:sub(#root + 1))
    end
  end
  if #rel == 0 then return nil end
  local key = concat(rel, "\0")
  local kept = run.own_globs[walk]
  if kept and kept.key == key then return kept.set end
  local list = {}
  for i, p in ipairs(walk.exclude or {}) do list[i] = p end
  for _, p in ipairs(rel) do list[#list + 1] = p end
  -- A path no pattern can name (never, from fs_abspath) leaves the
  -- walk's own patterns as they are.
  local set = compile("exclude", list)
  run.own_globs[walk] = { key = key, set = set }
  return set
end

-- The walk's include and exclude sets in a run (tide's own files left
-- out), or, without one, as the walk was made.
local function globs(walk, run)
  local inc, exc = walk_globs(walk)
  if run then exc = own_excludes(walk, run) or exc end
  return inc, exc
end

local walk_options = { include = true, exclude = true,
                       follow_symlinks = true, live = true }

function fs.walk(dir, opts)
  if type(dir) ~= "string" or dir == "" then
    error(fmt("fs.walk: dir must be a non-empty string, got %s",
              type(dir) == "string" and '""' or type(dir)), 2)
  end
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    error(fmt("fs.walk: options must be a table, got %s", type(opts)), 2)
  end
  for k in pairs(opts) do
    if not walk_options[k] then
      error(fmt("fs.walk: unknown option %s (expected include, exclude, "
        .. "follow_symlinks or live)", tostring(k)), 2)
    end
  end
  for _, k in ipairs { "follow_symlinks", "live" } do
    if opts[k] ~= nil and type(opts[k]) ~= "boolean" then
      error(fmt("fs.walk: %s must be a boolean, got %s", k, type(opts[k])),
            2)
    end
  end
  local include, err = pattern_list("include", opts.include)
  if err then error("fs.walk: " .. err, 2) end
  local exclude
  exclude, err = pattern_list("exclude", opts.exclude)
  if err then error("fs.walk: " .. err, 2) end
  local inc, exc
  inc, err = compile("include", include)
  if err then error("fs.walk: " .. err, 2) end
  exc, err = compile("exclude", exclude)
  if err then error("fs.walk: " .. err, 2) end
  local abs
  abs, err = fs_abspath(dir)
  if not abs then error("fs.walk: " .. err, 2) end
  local walk = setmetatable({
    kind = "fs.walk", dir = fs.project_path(abs), abs = abs,
    include = include, exclude = exclude,
    follow_symlinks = opts.follow_symlinks or false,
    live = opts.live ~= false,
  }, Walk)
  compiled[walk] = { inc or false, exc or false }
  return walk
end

-- The walk's compiled include and exclude sets (nil for none) in a run,
-- for C functions that walk: core.fs_walk, core.fs_selects, index:walk.
Walk.globs = globs

-- A walk listed inside a component is watched in live mode (live.lua),
-- unless it says live = false: before it is walked, so that nothing
-- changes unseen between the walk and the watch.
function Walk:listed()
  local frame = sched.current_frame()
  if not frame then return end
  local run = frame.run
  run.walked[self.abs] = self
  local at = run.walks_at[self.abs]
  if not at then
    at = {}
    run.walks_at[self.abs] = at
  end
  at[self:dependency_key()] = self
  local watch_folder = run.opts.watch_folder
  if watch_folder and self.live then
    watch_folder(self.abs, self.follow_symlinks)
  end
  require("tide.deps").walk_listed(sched.current(), self)
end

-- What a memoized component that listed the walk depends on (engine's
-- walk_listed): the walk, as a key fs.walk_of makes it again from.
function Walk:dependency_key()
  return cbor_encode({ self.dir, self.include or false,
                       self.exclude or false, self.follow_symlinks,
                       self.live })
end

-- The walk a dependency key was made from.
function fs.walk_of(key)
  local spec = cbor_decode(key)
  return fs.walk(spec[1], { include = spec[2] or nil,
                            exclude = spec[3] or nil,
                            follow_symlinks = spec[4], live = spec[5] })
end

-- The fingerprint of what the walk lists now: each file's path, size and
-- modification time, and the parts it could not read; false when the
-- folder cannot be walked at all.
function Walk:listing_fp(run)
  local inc, exc = globs(self, run)
  local files, errors = fs_walk(self.dir, inc, exc, self.follow_symlinks,
                                File)
  if not files then return false end
  local parts = {}
  for i, f in ipairs(files) do
    parts[i] = fmt("%s\0%d\0%d", f.path, f.size, f.mtime_ns)
  end
  for _, e in ipairs(errors or {}) do
    parts[#parts + 1] = "!" .. e.path .. "\0" .. e.message
  end
  return core.fingerprint(concat(parts, "\n"))
end

-- Iterates relpath, file in walk order. The walk happens here, at once.
function Walk:items(on_error)
  if getmetatable(self) ~= Walk then
    error("fs.walk: call items with a colon (walk:items()), not a dot", 2)
  end
  if on_error ~= nil and type(on_error) ~= "function" then
    error("fs.walk: on_error must be a function", 2)
  end
  self:listed()
  local frame = sched.current_frame()
  local inc, exc = globs(self, frame and frame.run)
  local files, errors = fs_walk(self.dir, inc, exc, self.follow_symlinks,
                                File)
  if not files then error("fs.walk: " .. errors, 0) end
  if errors then
    for _, e in ipairs(errors) do
      if not on_error then
        error(fmt("fs.walk: %s/%s: %s", self.dir, e.path, e.message), 0)
      end
      on_error(e.path, e.message)
    end
  end
  local i = 0
  return function()
    i = i + 1
    local f = files[i]
    if f then return f.path, f end
  end
end

-- Whether the walk's exclude patterns leave relpath out (and what is
-- under it): an event there starts no cycle in live mode.
function Walk:excludes(relpath)
  local _, exc = walk_globs(self)
  return exc ~= nil and not fs_selects(nil, exc, relpath)
end

-- Whether the walk lists a file at relpath (when it exists): for file
-- events in live mode.
function Walk:selects(relpath)
  if type(relpath) ~= "string" then
    error("fs.walk: selects expects a relative path string", 2)
  end
  local inc, exc = globs(self)
  return fs_selects(inc, exc, relpath)
end

fs.Walk = Walk

-- How sources and targets record a path: relative to the folder the run
-- started in (the pipeline's folder for the CLI) when it is inside it, so
-- that a moved or copied project keeps its state and its memo entries;
-- absolute otherwise.
function fs.project_path(abs)
  local base = fs_abspath(".")
  if not base or base == "/" then return abs end
  if abs == base then return "." end
  if abs:sub(1, #base + 1) == base .. "/" then return abs:sub(#base + 2) end
  return abs
end

-- ---- fs.dir ----

-- Why name cannot be a file name inside a folder, or nil.
local function bad_name(name)
  if type(name) ~= "string" then
    return fmt("file name must be a string, got %s", type(name))
  end
  if name == "" then return 'file name "" is empty' end
  if name:find("\0", 1, true) then
    return fmt("file name %q contains a NUL byte", name)
  end
  if name:sub(1, 1) == "/" then
    return fmt("file name %q is absolute; names are relative to the folder",
               name)
  end
  for seg in (name .. "/"):gmatch("([^/]*)/") do
    if seg == ".." then
      return fmt("file name %q has a '..' segment; names must stay inside "
        .. "the folder", name)
    end
    if seg == "" or seg == "." then
      return fmt("file name %q has an empty or '.' segment", name)
    end
  end
  return nil
end

local function must(ok, err)
  if ok == nil then error("fs.dir: " .. err, 0) end
  return ok
end

local dir_target = { name = "fs.dir" }

function dir_target.identity(spec) return spec.dir end

function dir_target.short_name(spec) return spec.given end

-- Whether the folder is still there.
function dir_target.exists(spec)
  local f = io.open(spec.dir)
  if f then f:close() end
  return f ~= nil
end

-- Creates the folder; the files already in it stay. Returns how many
-- folders it made, counted from the folder up (target.lua).
function dir_target.setup(spec)
  return true, must(fs_mkdir(spec.dir))
end

function dir_target.folder(spec) return spec.dir end

-- What a walk over a folder holding it must not list (fs.walk).
function dir_target.own_files(spec) return { spec.dir } end

local function depth(rel)
  local _, n = rel:gsub("/", "")
  return n
end

-- Applies { key = name, value = content or nil } changes, makes the
-- renames and removals durable (one fsync per folder touched), then removes
-- the folders that deletions left empty, deepest first. Idempotent: a file
-- already gone is fine. The batch runs on libuv's thread pool (each write
-- waits for its fsync): inside a component the others run meanwhile.
function dir_target.apply(spec, changes)
  local root = spec.dir
  for _, c in ipairs(changes) do
    local why = bad_name(c.key)
    if why then error("fs.dir: " .. why, 0) end
    if c.value ~= nil and type(c.value) ~= "string" then
      error(fmt("fs.dir: content of %s must be a string, got %s", c.key,
                type(c.value)), 0)
    end
  end
  local steps, syncs, sync_at, emptied = {}, {}, {}, {}
  for i, c in ipairs(changes) do
    local parent = c.key:match("^(.*)/[^/]*$")
    local folder = parent and root .. "/" .. parent or root
    local at = sync_at[folder]
    if not at then
      at = #syncs + 1
      syncs[at], sync_at[folder] = folder, at
    end
    if c.value == nil then
      local d = parent
      while d and not emptied[d] do
        emptied[d] = true
        d = d:match("^(.*)/[^/]*$")
      end
    end
    steps[i] = { root .. "/" .. c.key, c.value or false, at }
  end
  local list = {}
  for d in pairs(emptied) do list[#list + 1] = d end
  sort(list, function(a, b)
    local da, db = depth(a), depth(b)
    if da ~= db then return da > db end
    return a < b
  end)
  for i, d in ipairs(list) do list[i] = root .. "/" .. d end
  must(fs_apply(steps, syncs, list))
end

-- Compares the folder with the files tide says it holds (expected: a list
-- of { key = name, value = content }). Files tide did not write are the
-- user's, never drift: extra is always empty.
function dir_target.verify(spec, expected)
  local missing, changed = {}, {}
  for _, e in ipairs(expected) do
    local content = fs_read(spec.dir .. "/" .. e.key)
    if content == nil then
      missing[#missing + 1] = e.key
    elseif content ~= e.value then
      changed[#changed + 1] = e.key
    end
  end
  return { missing = missing, changed = changed, extra = {} }
end

-- Removes the folder if it is empty (the engine deleted its files first).
function dir_target.drop(spec)
  must(fs_rmdir(spec.dir))
end

-- After a crash: the temporary files of writes that never reached their
-- rename are removed (a write is a temporary file, fsync, rename).
local temps -- the set of temporary files' names, compiled on first use

function dir_target.recover(spec)
  temps = temps or compile("include", { "**/.tide-tmp-*" })
  local files = fs_walk(spec.dir, temps, nil, false, File)
  for _, f in ipairs(files or {}) do must(fs_remove(f.abs)) end
end

fs.dir_target = dir_target

local Dir = { __name = "tide.fs.dir" }
Dir.__index = Dir

-- A handle counts by its identity (the folder) as a memo argument.
function Dir.__tide_key(self) return dir_target.identity(self.spec) end

-- Declares the file `name` (relative, `/`-separated) with content.
function Dir:file(name, content)
  if getmetatable(self) ~= Dir then
    error("fs.dir: call file with a colon (d:file(name, content)), not a "
          .. "dot", 2)
  end
  local why = bad_name(name)
  if why then error("fs.dir: " .. why, 2) end
  if type(content) ~= "string" then
    error(fmt("fs.dir: content of %s must be a string, got %s", name,
              type(content)), 2)
  end
  return self.target:declare(name, content)
end

fs.Dir = Dir

function fs.dir(dir)
  if type(dir) ~= "string" or dir == "" then
    error(fmt("fs.dir: dir must be a non-empty string, got %s",
              type(dir) == "string" and '""' or type(dir)), 2)
  end
  local abs, err = fs_abspath(dir)
  if not abs then error("fs.dir: " .. err, 2) end
  local spec = { dir = fs.project_path(abs), given = dir }
  local engine = require "tide.engine"
  return setmetatable({ target = engine.declare_target(dir_target, spec),
                        spec = spec }, Dir)
end

return fs
