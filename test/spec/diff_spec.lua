-- The diff of a component's declared target states against the states it
-- owned (claims:diff in lclaims.c, which reconcile.submit calls), on a
-- real state store: which declared states it owned and must write again,
-- and which owned states it no longer declares.
local core = require "tide.core"
local helpers = require "test.spec.helpers"

local APPLIED, PENDING_UPSERT, UNKNOWN, RELEASED = 0, 1, 3, 4
local OWNER, OTHER = 7, 8

local function fp(value) return core.fingerprint_raw(value) end

-- A store with two containers holding the states that OWNER and OTHER own.
local function store_with(states)
  local dir = helpers.tmpdir()
  local store = assert(core.store_open(dir .. "/state.db", "write"))
  local app = store:app("diff", true)
  local a = store:container(app, "t", "a").id
  local b = store:container(app, "t", "b").id
  for _, s in ipairs(states(a, b)) do
    store:target_put(s[1], s[2], s[3], s[4], s[5])
  end
  store:flush()
  return store, a, b
end

local function declared(list)
  local out = {}
  for i, d in ipairs(list) do
    out[i] = { container = { id = d[1] }, kb = d[2], fp = d[3] }
  end
  return out
end

local function keys(left)
  local out = {}
  for _, row in ipairs(left or {}) do
    out[#out + 1] = ("%d:%s:%d"):format(row.container_id, row.key,
                                        row.pending)
  end
  table.sort(out)
  return table.concat(out, " ")
end

describe("a component's diff of declared against owned states", function()
  local store, a, b
  before_each(function()
    store, a, b = store_with(function(ca, cb)
      return {
        { ca, "k1", OWNER, fp("one"), APPLIED },
        { ca, "k2", OWNER, fp("two"), APPLIED },
        { ca, "k3", OWNER, fp("three"), UNKNOWN },
        { ca, "k4", OWNER, fp("four"), RELEASED },
        { cb, "k1", OWNER, fp("one"), PENDING_UPSERT },
        { cb, "gone", OWNER, fp("x"), APPLIED },
        { ca, "theirs", OTHER, fp("y"), APPLIED },
      }
    end)
  end)
  after_each(function() store:close() end)

  it("writes again only what changed or what the target may not hold",
     function()
    local d = declared {
      { b, "k1", fp("one") },     -- its upsert failed: pending
      { a, "k3", fp("three") },   -- a crash left it unknown
      { a, "k2", fp("TWO") },     -- its value changed
      { a, "k1", fp("one") },     -- the same
      { a, "k4", fp("four") },    -- released, still held by the target
      { a, "new", fp("new") },    -- never owned
      { a, "theirs", fp("y") },   -- another component's
    }
    local left = core.claims_new():diff(store, OWNER, d, false)
    assert.same({ true, true, true, true, true }, {
      d[1].owned, d[2].owned, d[3].owned, d[4].owned, d[5].owned })
    assert.same({ "updated", "updated", "updated" },
                { d[1].write, d[2].write, d[3].write })
    assert.is_nil(d[4].write)
    assert.is_nil(d[5].write)
    -- The caller looks up what the component did not own.
    assert.is_nil(d[6].owned)
    assert.is_nil(d[7].owned)
    assert.is_nil(d[6].write)
    assert.equal(b .. ":gone:0", keys(left))
  end)

  it("writes every owned state again in a full reprocess", function()
    local d = declared { { a, "k1", fp("one") }, { a, "k4", fp("four") } }
    local left = core.claims_new():diff(store, OWNER, d, true)
    assert.same({ "updated", "updated" }, { d[1].write, d[2].write })
    assert.equal(("%d:k2:0 %d:k3:3 %d:gone:0 %d:k1:1"):format(a, a, b, b),
                 keys(left))
  end)

  it("lets go of everything when nothing is declared, and of nothing when "
     .. "nothing was owned", function()
    local claims = core.claims_new()
    local left = claims:diff(store, OWNER, {}, false)
    assert.equal(6, #left)
    local row = left[1]
    assert.is_number(row.container_id)
    assert.is_string(row.key)
    assert.equal(16, #row.value_fp)
    local d = declared { { a, "k1", fp("one") } }
    assert.is_nil(claims:diff(store, 999, d, false))
    assert.is_nil(d[1].owned)
  end)

  it("matches keys by their bytes, NUL and length included, across many",
     function()
    store:close()
    local n = 300
    store, a = store_with(function(ca)
      local t = {}
      for i = 1, n do
        t[i] = { ca, "key\0" .. i, OWNER, fp(i), APPLIED }
      end
      t[#t + 1] = { ca, "key", OWNER, fp("short"), APPLIED }
      return t
    end)
    local list = {}
    for i = n, 1, -1 do
      list[#list + 1] = { a, "key\0" .. i, fp(i % 7 == 0 and -i or i) }
    end
    local d = declared(list)
    local left = core.claims_new():diff(store, OWNER, d, false)
    local writes = 0
    for _, e in ipairs(d) do
      assert.is_true(e.owned)
      if e.write then writes = writes + 1 end
    end
    assert.equal(n // 7, writes)
    assert.equal(a .. ":key:0", keys(left))
  end)
end)
