-- A first look at tide's foundation: records, canonical values and the
-- fingerprints tide uses to see what changed. Run: tide run main.lua
local tide = require "tide"

local Chunk = tide.record("Chunk", {
  { "id", "string", key = true },
  { "file", "string" },
  { "line", "integer" },
  { "text", "string" },
})

local chunk = Chunk { id = "intro.md#1", file = "intro.md", line = 1,
                      text = "tide keeps targets equal to transform(sources)." }
print("a record:", chunk.id, chunk.line)
print("its canonical encoding:", #tide.cbor.encode(chunk), "bytes")
print("its fingerprint:", tide.fingerprint(chunk))
print("schema fingerprint of Chunk:", Chunk.fingerprint)

local ok, err = pcall(Chunk, { id = "x", file = "f", line = "one", text = "" })
print("a bad record:", ok, err)

-- 1 and 1.0 are different values; the order a table was built in is not.
print("fingerprint(1)   ", tide.fingerprint(1))
print("fingerprint(1.0) ", tide.fingerprint(1.0))
print("same table, two insertion orders:",
      tide.fingerprint({ a = 1, b = 2 }) == tide.fingerprint({ b = 2, a = 1 }))

-- Logic fingerprints follow code through helpers, and ignore comments.
local function load_fn(src) return assert(load(src))() end
local v1 = load_fn [[
local function shout(s) return s:upper() end
return function(doc) return shout(doc) end]]
local v2 = load_fn [[
-- the same code with a comment and a blank line

local function shout(s) return s:upper() end
return function(doc) return shout(doc) end]]
local v3 = load_fn [[
local function shout(s) return s:upper() .. "!" end
return function(doc) return shout(doc) end]]
print("logic, original:         ", tide.logic_fingerprint(v1))
print("logic, comment added:    ", tide.logic_fingerprint(v2))
print("logic, helper edited:    ", tide.logic_fingerprint(v3))
