local tide = require "tide"
local helpers = require "test.spec.helpers"
local hex, unhex = helpers.hex, helpers.unhex
local encode, decode = tide.cbor.encode, tide.cbor.decode

describe("tide.cbor", function()
  it("encodes RFC 8949 appendix A examples exactly", function()
    local cases = {
      { 0, "00" }, { 1, "01" }, { 23, "17" }, { 24, "1818" },
      { 100, "1864" }, { 1000, "1903e8" }, { 1000000, "1a000f4240" },
      { 1000000000000, "1b000000e8d4a51000" }, { -1, "20" }, { -10, "29" },
      { -100, "3863" }, { -1000, "3903e7" },
      { math.maxinteger, "1b7fffffffffffffff" },
      { math.mininteger, "3b7fffffffffffffff" },
      { 0.0, "f90000" }, { -0.0, "f98000" }, { 1.0, "f93c00" },
      { 1.1, "fb3ff199999999999a" }, { 1.5, "f93e00" },
      { 65504.0, "f97bff" }, { 100000.0, "fa47c35000" },
      { 3.4028234663852886e+38, "fa7f7fffff" },
      { 1.0e+300, "fb7e37e43c8800759c" },
      { 5.960464477539063e-8, "f90001" }, { 0.00006103515625, "f90400" },
      { -4.0, "f9c400" }, { -4.1, "fbc010666666666666" },
      { math.huge, "f97c00" }, { -math.huge, "f9fc00" },
      { false, "f4" }, { true, "f5" }, { "", "60" }, { "a", "6161" },
      { "IETF", "6449455446" }, { "\u{fc}", "62c3bc" },
      { "\u{6c34}", "63e6b0b4" }, { {}, "80" }, { { 1, 2, 3 }, "83010203" },
      { { 1, { 2, 3 }, { 4, 5 } }, "8301820203820405" },
      { { a = 1, b = { 2, 3 } }, "a26161016162820203" },
      { { "a", { b = "c" } }, "826161a161626163" },
    }
    for _, c in ipairs(cases) do
      assert.are.equal(c[2], hex(encode(c[1])), tostring(c[1]))
    end
    assert.are.equal("f6", hex(encode(nil)))
  end)

  it("keeps integers and floats distinct and round-trips the subtype", function()
    assert.are_not.equal(encode(1), encode(1.0))
    assert.are.equal("integer", math.type(decode(encode(1))))
    assert.are.equal("float", math.type(decode(encode(1.0))))
    assert.are.equal("float", math.type(decode(encode(2.0 ^ 63))))
    assert.are.equal(math.mininteger, decode(encode(math.mininteger)))
  end)

  it("encodes NaN one way and keeps the sign of zero", function()
    local nan = 0 / 0
    assert.are.equal("f97e00", hex(encode(nan)))
    assert.are.equal("f97e00", hex(encode(-nan)))
    local z = decode(encode(-0.0))
    assert.are.equal(-math.huge, 1 / z)
    assert.is_true(decode(encode(nan)) ~= decode(encode(nan)))
  end)

  it("uses text strings for UTF-8 and byte strings for other bytes", function()
    assert.are.equal("41ff", hex(encode("\xff")))
    assert.are.equal("\xff", decode(encode("\xff")))
    assert.are.equal("62c3bc", hex(encode("\xc3\xbc")))
    -- an overlong form and a surrogate are not UTF-8
    assert.are.equal("42c0af", hex(encode("\xc0\xaf")))
    assert.are.equal("43eda080", hex(encode("\xed\xa0\x80")))
  end)

  it("sorts map keys by their encoded bytes", function()
    local t = { b = 1, a = 2, [10] = 3, aa = 4, [-1] = 5 }
    -- 0a < 20 < 6161 ("a") < 6162 ("b") < 626161 ("aa")
    assert.are.equal("a50a03200561610261620162616104", hex(encode(t)))
  end)

  it("gives one encoding whatever the insertion order", function()
    local keys = {}
    for i = 1, 200 do keys[i] = "key" .. i end
    local a, b = {}, {}
    for i = 1, #keys do a[keys[i]] = i end
    for i = #keys, 1, -1 do b[keys[i]] = i end
    b.extra = true
    b.extra = nil
    assert.are.equal(encode(a), encode(b))
    assert.are.equal(encode({ 1, 2 }), encode({ [1] = 1, [2] = 2 }))
    local c = {}
    c[2] = 2; c[1] = 1
    assert.are.equal("820102", hex(encode(c)))
  end)

  it("treats only keys 1..n as an array", function()
    assert.are.equal("a10201", hex(encode({ [2] = 1 })))
    assert.are.equal("a201010303", hex(encode({ [1] = 1, [3] = 3 })))
    assert.are.equal("a200010101", hex(encode({ [0] = 1, [1] = 1 })))
  end)

  it("round-trips nested values", function()
    local v = { name = "doc", sizes = { 1, 2.5, -3 }, meta = { ok = true,
      nested = { { x = 1 }, { y = "\xff\xfe" } } }, [7] = "seven" }
    assert.are.same(v, decode(encode(v)))
    assert.are.equal(encode(v), encode(decode(encode(v))))
  end)

  describe("errors name the path inside the value", function()
    local function err_of(v, root)
      local ok, err = pcall(encode, v, root)
      assert.is_false(ok)
      return err
    end

    it("for functions, threads and userdata", function()
      assert.are.equal("value.sections[2].fn: cannot encode a function",
        err_of({ sections = { {}, { fn = print } } }))
      assert.are.equal("value[1]: cannot encode a thread",
        err_of({ coroutine.create(print) }))
      assert.are.equal("value.out: cannot encode a userdata (it has no "
        .. "__tide_key)", err_of({ out = io.stdout }))
      assert.are.equal("argument 2[\"a key\"]: cannot encode a function",
        err_of({ ["a key"] = print }, "argument 2"))
    end)

    it("for cycles", function()
      local t = { child = {} }
      t.child.parent = t
      assert.are.equal("value.child.parent: cannot encode a cycle (the "
        .. "table contains itself)", err_of(t))
      local shared = { 1 }
      assert.are.equal("8281018101",
        hex(encode({ shared, shared })))
    end)

    it("for nesting deeper than the limit", function()
      local deep = {}
      local t = deep
      for _ = 1, 200 do t[1] = {}; t = t[1] end
      local err = err_of(deep)
      assert.matches("nesting deeper than 128 levels$", err)
      assert.are.equal("value[1][1][1][1][1]...[1][1][1][1][1]: nesting "
        .. "deeper than 128 levels", err)
    end)
  end)

  it("encodes a value with __tide_key as its type name and key", function()
    local handle = setmetatable({ secret = {} }, {
      __name = "tide.fs.dir",
      __tide_key = function() return "out/docs" end,
    })
    assert.are.equal("d81b826b746964652e66732e64697268" .. "6f75742f646f6373",
      hex(encode(handle)))
    local failing = setmetatable({}, { __tide_key = function() error("no") end })
    local ok, err = pcall(encode, { h = failing })
    assert.is_false(ok)
    assert.matches("^value.h: its __tide_key metamethod failed: .*no$", err)
  end)

  it("tags records with their type name and decodes them typed", function()
    local Point = tide.record("Point", { { "x", "integer" }, { "y", "integer" } })
    local p = Point { x = 1, y = 2 }
    assert.are.equal("d81b8265506f696e74a2617801617902", hex(encode(p)))
    local back = decode(encode(p))
    assert.are.equal(getmetatable(p), getmetatable(back))
    assert.are.same({ x = 1, y = 2 }, setmetatable(back, nil))
  end)

  describe("the decoder", function()
    local function rejects(h, why)
      local v, err = decode(unhex(h))
      assert.is_nil(v, h)
      assert.matches(why, err, 1, true)
    end

    it("returns nil and a message for malformed input", function()
      rejects("", "unexpected end of input")
      rejects("1801", "argument not in its shortest form")
      rejects("190017", "argument not in its shortest form")
      rejects("9fff", "indefinite length is not canonical")
      rejects("1c", "reserved additional information")
      rejects("0101", "trailing bytes after the value")
      rejects("c100", "unknown tag")
      rejects("81f6", "null inside an array or map")
      rejects("f7", "simple values other than true, false and null")
      rejects("1bffffffffffffffff", "integer out of range")
      rejects("3b8000000000000000", "integer out of range")
      rejects("5bffffffffffffffff", "string longer than the input")
      rejects("9bffffffffffffffff", "array longer than the input")
      rejects("bbffffffffffffffff", "map longer than the input")
    end)

    it("rejects every truncation of a valid encoding", function()
      local s = encode({ a = { 1, 2.5, "x" }, b = { c = true } })
      for n = 0, #s - 1 do
        local v, err = decode(s:sub(1, n))
        assert.is_nil(v)
        assert.is_string(err)
      end
    end)

    it("rejects non-canonical forms", function()
      rejects("a2616201616101", "map keys not in canonical order")
      rejects("a2616101616102", "map keys not in canonical order")
      rejects("a10102", "a map with keys 1..n is an array")
      rejects("a0", "an empty table is an empty array")
      rejects("61ff", "text string is not valid UTF-8")
      rejects("4161", "byte string that is valid UTF-8 is not canonical")
      rejects("f97e01", "NaN not in its canonical form")
      rejects("fa3f800000", "float not in its shortest form")
      rejects("fb3ff0000000000000", "float not in its shortest form")
    end)

    it("bounds nesting depth", function()
      rejects(("81"):rep(200) .. "00", "nesting too deep")
      assert.is_table(decode(unhex(("81"):rep(100) .. "00")))
    end)

    it("rejects a float key with an integer value, accepts others", function()
      rejects("a1f93c0001", "float key is NaN or has an integer value")
      assert.are.same({ [1.5] = 1 }, decode(unhex("a1f93e0001")))
    end)
  end)
end)
