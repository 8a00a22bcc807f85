local tide = require "tide"
local helpers = require "test.spec.helpers"

describe("tide.fingerprint", function()
  after_each(helpers.cleanup)

  it("is BLAKE2b-128 of the canonical encoding, as 32 lowercase hex", function()
    local dir = helpers.tmpdir()
    for _, v in ipairs { 1, "a", { a = { 1, 2.5 }, b = true }, 1.0 } do
      local path = helpers.write(dir .. "/enc", tide.cbor.encode(v))
      local fp = tide.fingerprint(v)
      assert.matches("^[0-9a-f]+$", fp)
      assert.are.equal(32, #fp)
      assert.are.equal(helpers.b2sum(path), fp)
    end
    -- the encoding of the integer 1 is the single byte 01
    assert.are.equal("4a9e6f9b8d43f6ad008f8c291929dee2", tide.fingerprint(1))
  end)

  it("does not depend on insertion order or on how a sequence was built", function()
    local a, b = {}, {}
    for i = 1, 100 do a["k" .. i] = { i, tostring(i) } end
    for i = 100, 1, -1 do b["k" .. i] = { i, tostring(i) } end
    assert.are.equal(tide.fingerprint(a), tide.fingerprint(b))
    assert.are.equal(tide.fingerprint({ 1, 2 }),
                     tide.fingerprint({ [1] = 1, [2] = 2 }))
  end)

  it("tells apart values that differ only in type", function()
    local fp = tide.fingerprint
    assert.are_not.equal(fp(1), fp(1.0))
    assert.are_not.equal(fp("1"), fp(1))
    assert.are_not.equal(fp("\1"), fp(1))
    assert.are_not.equal(fp({ "a" }), fp("a"))
    assert.are_not.equal(fp(true), fp("true"))
    assert.are_not.equal(fp({}), fp(""))
    local R = tide.record("R1", { { "a", "integer" } })
    assert.are_not.equal(fp(R { a = 1 }), fp({ a = 1 }))
  end)

  it("raises with the path for values it cannot encode", function()
    local ok, err = pcall(tide.fingerprint, { list = { 1, print } })
    assert.is_false(ok)
    assert.are.equal("value.list[2]: cannot encode a function", err)
  end)

  describe("fingerprint_file", function()
    it("streams a file's bytes through BLAKE2b-128", function()
      local dir = helpers.tmpdir()
      local small = helpers.write(dir .. "/small.txt", "hello\n")
      assert.are.equal(helpers.b2sum(small), tide.fingerprint_file(small))
      local big = {}
      for i = 1, 40000 do big[i] = ("line %d of a file\n"):format(i) end
      local path = helpers.write(dir .. "/big.txt", table.concat(big))
      assert.are.equal(helpers.b2sum(path), tide.fingerprint_file(path))
      local empty = helpers.write(dir .. "/empty", "")
      assert.are.equal(helpers.b2sum(empty), tide.fingerprint_file(empty))
    end)

    it("returns nil and a message naming the path on failure", function()
      local fp, err = tide.fingerprint_file("/nonexistent/file.txt")
      assert.is_nil(fp)
      assert.are.equal("/nonexistent/file.txt: no such file or directory", err)
    end)

    it("raises on a path holding a NUL byte: misuse, not a failure",
       function()
      local ok, err = pcall(tide.fingerprint_file, "/etc/hostname\0x")
      assert.is_false(ok)
      assert.matches("path contains a NUL byte", err, 1, true)
    end)
  end)
end)
