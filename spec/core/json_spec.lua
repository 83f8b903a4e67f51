-- core.json_encode against lua-cjson's decoder: what it must produce, and
-- every kind of input it must refuse (naming where, as a path).

local H = require "core_helper"
local core, cjson = H.core, H.cjson
local encode = core.json_encode

local function encode_error(value)
  local ok, err = pcall(encode, value)
  assert.is_false(ok, "expected json_encode to raise, it returned " .. tostring(err))
  return tostring(err)
end

-- Deep equality through cjson's view: null is cjson.null, numbers by value.
local function same(a, b, path)
  path = path or "$"
  if type(a) ~= type(b) then
    return false, path .. ": " .. type(a) .. " vs " .. type(b)
  end
  if type(a) ~= "table" then
    if a == b then return true end
    return false, path .. ": " .. tostring(a) .. " vs " .. tostring(b)
  end
  for k, v in pairs(a) do
    local ok, why = same(v, b[k], path .. "[" .. tostring(k) .. "]")
    if not ok then return false, why end
  end
  for k in pairs(b) do
    if a[k] == nil then return false, path .. ": extra key " .. tostring(k) end
  end
  return true
end

local function round_trip(value)
  local text = encode(value)
  assert.is_string(text)
  local ok, decoded = pcall(cjson.decode, text)
  assert.is_true(ok, "cjson cannot decode: " .. text:sub(1, 200))
  local equal, why = same(value, decoded)
  assert.is_true(equal, tostring(why) .. " in " .. text:sub(1, 200))
  return text
end

-- UTF-8 encoding of one code point (no validation: used to build inputs).
local function utf8_char(cp)
  if cp < 0x80 then return string.char(cp) end
  if cp < 0x800 then
    return string.char(0xC0 + math.floor(cp / 0x40), 0x80 + cp % 0x40)
  end
  if cp < 0x10000 then
    return string.char(0xE0 + math.floor(cp / 0x1000), 0x80 + math.floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
  end
  return string.char(0xF0 + math.floor(cp / 0x40000), 0x80 + math.floor(cp / 0x1000) % 0x40,
    0x80 + math.floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
end

-- JSON's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
local function is_json_number(s)
  local rest = s:gsub("^%-", "")
  local int = rest:match("^%d+")
  if not int or (#int > 1 and int:sub(1, 1) == "0") then return false end
  rest = rest:sub(#int + 1)
  local frac = rest:match("^%.%d+")
  if frac then rest = rest:sub(#frac + 1) end
  local exp = rest:match("^[eE][+-]?%d+")
  if exp then rest = rest:sub(#exp + 1) end
  return rest == ""
end

local function rand_int(lo, hi)
  return lo + math.floor(core.random() * (hi - lo + 1))
end

describe("json_encode", function()
  describe("scalars", function()
    it("encodes booleans and null", function()
      assert.are.equal("true", encode(true))
      assert.are.equal("false", encode(false))
      assert.are.equal("null", encode(core.null))
      assert.are.equal("null", encode(cjson.null))
    end)

    it("encodes strings", function()
      assert.are.equal('"abc"', encode("abc"))
      assert.are.equal('""', encode(""))
    end)
  end)

  describe("numbers", function()
    it("prints integral values below 2^53 without a decimal point", function()
      local cases = {
        [0] = "0", [1] = "1", [-1] = "-1", [42] = "42", [-123456789] = "-123456789",
        [2 ^ 31] = "2147483648", [2 ^ 52] = "4503599627370496",
        [2 ^ 53 - 1] = "9007199254740991", [-(2 ^ 53 - 1)] = "-9007199254740991",
      }
      for value, text in pairs(cases) do
        assert.are.equal(text, encode(value))
        assert.are.equal(text, encode(value + 0.0))   -- integral floats too
      end
      assert.are.equal("3", encode(3.0))
      assert.are.equal("-7", encode(-7.0))
    end)

    it("prints random integral floats below 2^53 as integers", function()
      for _ = 1, 1000 do
        local v = math.floor(core.random() * 2 ^ 53) * (core.random() < 0.5 and -1 or 1)
        local text = encode(v)
        assert.is_falsy(text:find("[.eE]"), "integral " .. string.format("%.17g", v) .. " printed as " .. text)
        assert.are.equal(v, tonumber(text))
      end
    end)

    it("round-trips other floats exactly, as valid JSON numbers", function()
      local values = { 0.5, -0.5, 0.1, 1 / 3, -2.5, math.pi, 1e300, -1e300, 2.5e-300, 5e-324,
        2.2250738585072014e-308, 1.7976931348623157e308, 1e21, 2 ^ 53 + 2, 2 ^ 60, 123456789.123,
        1e-7, 1e16 + 0.0, 0.1 + 0.2 }
      for _, v in ipairs(values) do
        local text = encode(v)
        assert.is_true(is_json_number(text), "not a JSON number: " .. text)
        assert.are.equal(v, tonumber(text), "lost precision: " .. string.format("%.17g", v) .. " -> " .. text)
        assert.are.equal(v, cjson.decode("[" .. text .. "]")[1])
      end
    end)

    it("round-trips 2000 random doubles of every magnitude", function()
      for _ = 1, 2000 do
        local v = (core.random() * 2 - 1) * 2 ^ rand_int(-1000, 1000)
        local text = encode(v)
        assert.is_true(is_json_number(text), "not a JSON number: " .. text)
        assert.are.equal(v, tonumber(text), string.format("%.17g", v) .. " -> " .. text)
      end
    end)

    it("encodes -0 as a number equal to zero", function()
      local text = encode(-0.0)
      assert.is_true(is_json_number(text), text)
      assert.are.equal(0, tonumber(text))
    end)

    if math.type then   -- Lua 5.3+: the integer subtype
      it("prints 64-bit integers exactly, including the extremes", function()
        assert.are.equal("9223372036854775807", encode(math.maxinteger))
        assert.are.equal("-9223372036854775808", encode(math.mininteger))
        assert.are.equal("9007199254740993", encode(9007199254740993))
        assert.are.equal("[1,2,3]", encode({ 1, 2, 3 }):gsub("%s", ""))
      end)

      it("prints 1000 random 64-bit integers exactly", function()
        for _ = 1, 1000 do
          local v = string.unpack("<i8", core.random_bytes(8))
          assert.are.equal(string.format("%d", v), encode(v))
        end
      end)
    end

    it("refuses NaN and infinities, naming where", function()
      for _, bad in ipairs{ 0 / 0, math.huge, -math.huge } do
        H.contains(encode_error(bad), "$")
        H.contains(encode_error({ a = { 1, bad } }), "$.a[2]")
        H.contains(encode_error({ 1, 2, { x = bad } }), "$[3].x")
      end
    end)
  end)

  describe("strings", function()
    it("escapes every control character below 0x20", function()
      local short = { [8] = "\\b", [9] = "\\t", [10] = "\\n", [12] = "\\f", [13] = "\\r" }
      for c = 0, 31 do
        local expected = short[c] or string.format("\\u%04x", c)
        local text = encode(string.char(c))
        assert.are.equal('"' .. expected .. '"', text:lower(), "char " .. c)
        assert.are.equal(string.char(c), cjson.decode(text))
      end
    end)

    it("escapes the quote and the backslash", function()
      assert.are.equal([["\""]], encode('"'))
      assert.are.equal([["\\"]], encode("\\"))
      assert.are.equal([["a\"b\\c"]], encode('a"b\\c'))
    end)

    it("passes printable ASCII and DEL through raw", function()
      for c = 32, 127 do
        local ch = string.char(c)
        if ch ~= '"' and ch ~= "\\" then
          assert.are.equal('"' .. ch .. '"', encode(ch), "char " .. c)
        end
      end
    end)

    it("keeps NUL and other controls inside longer strings", function()
      local s = "a\0b\1c\31d\n\r\t"
      round_trip(s)
      assert.is_falsy(encode(s):find("[%z\1-\31]"), "raw control char in output")
    end)

    it("passes valid UTF-8 through raw, at every sequence length and boundary", function()
      local code_points = { 0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFFFD, 0xFFFF, 0x10000, 0x1F600, 0x10FFFF,
        0xE9, 0x20AC, 0x4E2D }
      for _, cp in ipairs(code_points) do
        local ch = utf8_char(cp)
        assert.are.equal('"' .. ch .. '"', encode(ch), string.format("U+%04X", cp))
      end
      local mixed = "h\195\169llo \226\130\172 \240\159\152\128 \228\184\173\230\150\135"
      assert.are.equal('"' .. mixed .. '"', encode(mixed))
    end)

    it("round-trips 300 random strings of random code points", function()
      for _ = 1, 300 do
        local parts = {}
        for i = 1, rand_int(0, 40) do
          local class = rand_int(1, 5)
          local cp
          if class == 1 then cp = rand_int(0, 0x7F)
          elseif class == 2 then cp = rand_int(0x80, 0x7FF)
          elseif class == 3 then cp = rand_int(0x800, 0xD7FF)
          elseif class == 4 then cp = rand_int(0xE000, 0xFFFF)
          else cp = rand_int(0x10000, 0x10FFFF) end
          parts[i] = utf8_char(cp)
        end
        round_trip(table.concat(parts))
      end
    end)

    it("round-trips a 1 MiB string", function()
      local s = ("0123456789abcdef\n\"\\\195\169"):rep(65536)
      round_trip(s)
    end)

    -- Bad sequences, each preceded by "abc" so it starts at byte 4.
    local invalid = {
      { "lone continuation byte", "\128" },
      { "continuation 0xBF", "\191" },
      { "overlong 2-byte (C0)", "\192\175" },
      { "overlong 2-byte (C1)", "\193\191" },
      { "overlong 3-byte", "\224\128\175" },
      { "overlong 3-byte U+07FF", "\224\159\191" },
      { "overlong 4-byte", "\240\128\128\175" },
      { "overlong 4-byte U+FFFF", "\240\143\191\191" },
      { "surrogate U+D800", "\237\160\128" },
      { "surrogate U+DBFF", "\237\175\191" },
      { "surrogate U+DC00", "\237\176\128" },
      { "surrogate U+DFFF", "\237\191\191" },
      { "CESU-8 surrogate pair", "\237\160\189\237\184\128" },
      { "above U+10FFFF (F4 90)", "\244\144\128\128" },
      { "lead byte F5", "\245\128\128\128" },
      { "5-byte form", "\248\136\128\128\128" },
      { "6-byte form", "\252\132\128\128\128\128" },
      { "byte FE", "\254" },
      { "byte FF", "\255" },
      { "truncated 2-byte at the end", "\195" },
      { "truncated 3-byte at the end", "\226\130" },
      { "truncated 4-byte at the end", "\240\159\152" },
      { "2-byte lead before ASCII", "\195A" },
      { "3-byte lead, one continuation, then ASCII", "\226\130A" },
      { "4-byte lead, two continuations, then space", "\240\159\152 " },
      { "lead followed by another lead", "\195\195\169" },
    }
    for _, case in ipairs(invalid) do
      local name, bad = case[1], case[2]
      it("refuses invalid UTF-8: " .. name .. ", naming the byte and the path", function()
        local msg = encode_error("abc" .. bad .. "xyz")
        H.contains(msg, "invalid UTF-8 at byte ")
        H.contains(msg, "$")
        local n = tonumber(msg:match("invalid UTF%-8 at byte (%d+)"))
        -- 1-based, like Lua's string positions: the sequence starts at byte 4.
        assert.is_true(n and n >= 4 and n <= 3 + #bad,
          "byte " .. tostring(n) .. " is not inside the bad sequence (bytes 4.." .. 3 + #bad .. ")")
        local nested = encode_error({ list = { "fine", { text = "abc" .. bad } } })
        H.contains(nested, "invalid UTF-8")
        H.contains(nested, "$.list[2].text")
      end)
    end

    it("names the first bad byte exactly when the lead byte itself is invalid", function()
      for _, bad in ipairs{ "\128", "\192\175", "\245\128\128\128", "\255" } do
        H.contains(encode_error("abc" .. bad), "invalid UTF-8 at byte 4")
        H.contains(encode_error(bad), "invalid UTF-8 at byte 1")
      end
    end)

    it("refuses invalid UTF-8 in an object key", function()
      H.contains(encode_error({ ["k\255"] = 1 }), "invalid UTF-8")
      H.contains(encode_error({ a = { ["\237\160\128"] = true } }), "invalid UTF-8")
    end)
  end)

  describe("tables", function()
    it("encodes arrays (keys exactly 1..n) and objects", function()
      assert.are.equal("[1,2,3]", (encode({ 1, 2, 3 }):gsub("%s", "")))
      assert.are.equal('["a"]', (encode({ "a" }):gsub("%s", "")))
      assert.are.same({ a = 1, b = "x" }, cjson.decode(encode({ a = 1, b = "x" })))
      assert.are.equal('{"1":true}', (encode({ ["1"] = true }):gsub("%s", "")))
    end)

    it("encodes an empty table as {}, unless it carries array_mt", function()
      assert.are.equal("{}", encode({}))
      assert.are.equal("[]", encode(setmetatable({}, core.array_mt)))
      assert.are.equal("[1,2]", (encode(setmetatable({ 1, 2 }, core.array_mt)):gsub("%s", "")))
    end)

    it("encodes empty_array as [] and null as null, nested too", function()
      assert.are.equal("[]", encode(core.empty_array))
      local text = encode({ a = core.empty_array, b = core.null, c = { core.null, cjson.null } })
      local decoded = cjson.decode(text)
      assert.are.equal(cjson.null, decoded.b)
      assert.are.same({ cjson.null, cjson.null }, decoded.c)
      assert.is_truthy(text:find('"a":%[%]'), text)
    end)

    it("escapes object keys", function()
      round_trip({ ['quote"back\\slash'] = 1, ["new\nline\0nul"] = 2, ["\226\130\172"] = 3, [""] = 4 })
    end)

    it("allows the same table twice when there is no cycle", function()
      local shared = { 1, 2 }
      assert.are.same({ { 1, 2 }, { 1, 2 } }, cjson.decode(encode({ shared, shared })))
      assert.are.same({ a = { 1, 2 }, b = { 1, 2 } }, cjson.decode(encode({ a = shared, b = shared })))
    end)

    -- json.h promises the encoder never runs Lua code (fuzz/json_encode.c checks it too).
    it("reads tables raw: no metamethod runs", function()
      local calls = 0
      local mt = {}
      for _, event in ipairs{ "__index", "__newindex", "__len", "__pairs", "__ipairs", "__tostring",
                              "__eq", "__lt", "__le", "__concat", "__call" } do
        mt[event] = function() calls = calls + 1; error("metamethod ran") end
      end
      local inner = setmetatable({ 1, 2 }, mt)
      local text = encode(setmetatable({ a = inner, b = { inner } }, mt))
      assert.are.same({ a = { 1, 2 }, b = { { 1, 2 } } }, cjson.decode(text))
      assert.are.equal(0, calls)
    end)

    it("round-trips large arrays and objects", function()
      local array, object = {}, {}
      for i = 1, 100000 do array[i] = i * 3 end
      for i = 1, 2000 do object["key" .. i] = { i, tostring(i) } end
      round_trip(array)
      round_trip(object)
    end)

    it("round-trips 300 random nested values", function()
      local function random_string()
        local parts = {}
        for i = 1, rand_int(0, 8) do
          local pick = rand_int(1, 4)
          if pick == 1 then parts[i] = string.char(rand_int(0, 31))
          elseif pick == 2 then parts[i] = ({ '"', "\\", "/", " " })[rand_int(1, 4)]
          elseif pick == 3 then parts[i] = utf8_char(rand_int(0x80, 0xD7FF))
          else parts[i] = string.char(rand_int(0x61, 0x7A)) end
        end
        return table.concat(parts)
      end
      local function random_value(depth)
        local pick = rand_int(1, depth > 4 and 5 or 7)
        if pick == 1 then return core.random() < 0.5
        elseif pick == 2 then return rand_int(-1000000, 1000000)
        elseif pick == 3 then return (core.random() - 0.5) * 10 ^ rand_int(-20, 20)
        elseif pick == 4 then return random_string()
        elseif pick == 5 then return core.null
        elseif pick == 6 then
          local t = {}
          for i = 1, rand_int(1, 5) do t[i] = random_value(depth + 1) end
          return t
        else
          local t = {}
          for _ = 1, rand_int(1, 5) do t[random_string() .. "k"] = random_value(depth + 1) end
          return t
        end
      end
      for _ = 1, 300 do
        local value = random_value(0)
        if value == core.null then value = { value } end
        round_trip(value)
      end
    end)

    it("accepts 100 levels of nesting and refuses 101", function()
      local function nested(depth, as_object)
        local t = { "leaf" }
        for _ = 2, depth do t = as_object and { k = t } or { t } end
        return t
      end
      for _, as_object in ipairs{ false, true } do
        local text = encode(nested(100, as_object))
        assert.is_string(text)
        assert.is_true(pcall(cjson.decode, text))
        H.contains(encode_error(nested(101, as_object)), "nested too deep")
      end
      H.contains(encode_error(nested(100000)), "nested too deep")
    end)

    it("refuses cycles, naming where", function()
      local t = {}
      t[1] = t
      local msg = encode_error(t)
      H.contains(msg, "cycle")
      H.contains(msg, "$[1]")
      local o = { a = { b = {} } }
      o.a.b.c = o
      msg = encode_error(o)
      H.contains(msg, "cycle")
      H.contains(msg, "$.a.b.c")
      local self = {}
      self.self = self
      H.contains(encode_error({ list = { 1, self } }), "cycle")
    end)

    it("refuses sparse arrays", function()
      H.contains(encode_error({ 1, nil, 3 }), "$")
      H.contains(encode_error({ [2] = "x" }), "$")
      H.contains(encode_error({ [0] = "x" }), "$")
      H.contains(encode_error({ [-1] = "x" }), "$")
      H.contains(encode_error({ a = { [1] = 1, [3] = 3 } }), "$.a")
      H.contains(encode_error({ a = { [1] = 1, [1000] = 3 } }), "$.a")
    end)

    it("refuses tables mixing integer and string keys", function()
      H.contains(encode_error({ 1, 2, x = 3 }), "$")
      H.contains(encode_error({ ok = { "a", b = "c" } }), "$.ok")
    end)

    it("refuses non-string, non-sequence keys", function()
      H.contains(encode_error({ [1.5] = 1 }), "$")
      H.contains(encode_error({ [true] = 1 }), "$")
      H.contains(encode_error({ [{}] = 1 }), "$")
      H.contains(encode_error({ a = { [print] = 1 } }), "$.a")
    end)

    it("refuses functions, userdata and coroutines, naming where", function()
      local co = coroutine.create(function() end)
      H.contains(encode_error(print), "$")
      H.contains(encode_error({ f = print }), "$.f")
      H.contains(encode_error({ u = io.stdout }), "$.u")
      H.contains(encode_error({ list = { 1, co } }), "$.list[2]")
      H.contains(encode_error({ ["odd key"] = { function() end } }), '$["odd key"][1]')
    end)

    it("keeps working after a refusal (no state left behind)", function()
      local t = {}
      t.t = t
      encode_error(t)
      encode_error({ bad = 0 / 0 })
      assert.are.same({ ok = true }, cjson.decode(encode({ ok = true })))
      local shared = {}
      assert.is_string(encode({ shared, shared }))
    end)
  end)
end)

describe("core.json_encode under finalizers", function()
  it("gives every caller its own result when a finalizer encodes during an encode", function()
    -- A finalizer may run at any allocation the encoder makes or while it pushes
    -- its result; one that encodes too must not write into the same buffer.
    local newproxy = rawget(_G, "newproxy")
    local function garbage(fn)
      if newproxy then
        local u = newproxy(true)
        getmetatable(u).__gc = fn
        return u
      end
      return setmetatable({}, { __gc = fn })
    end
    local budget, ran = 3000, 0
    local function arm()
      garbage(function()
        if budget > 0 then
          budget, ran = budget - 1, ran + 1
          core.json_encode({ string.rep("y", 30000) })
          arm()
        end
      end)
    end
    local pause, stepmul = collectgarbage("setpause", 0), collectgarbage("setstepmul", 1000)
    for _ = 1, 20 do arm() end
    local want = core.json_encode({ string.rep("x", 1000) })
    local bad, calls = 0, 0
    -- Until finalizers have run a while (a full suite's larger heap makes cycles longer).
    while ran < 200 and calls < 5000 do
      calls = calls + 1
      local _ = string.rep("-", 2000 + (calls * 7919) % 200000)
      if core.json_encode({ string.rep("x", 1000) }) ~= want then bad = bad + 1 end
    end
    budget = 0
    collectgarbage("setpause", pause)
    collectgarbage("setstepmul", stepmul)
    collectgarbage()
    assert.is_true(ran > 0, "no finalizer ran")
    assert.are.equal(0, bad)
  end)
end)
