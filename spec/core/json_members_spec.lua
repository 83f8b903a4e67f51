-- core.json_members: validates a whole JSON document without building tables
-- and hands back the raw text of named top-level members.
local core = require "envoke.core"
local cjson = require "cjson"
local H = require "core_helper"

describe("json_members", function()
  it("returns true and the raw text of each named member, nil where absent", function()
    local doc = '{"success":true,"result_text":"Updated","result_data":{"id":7,"tags":["a","b"],"x":null}}'
    local ok, success, data, missing = core.json_members(doc, "success", "result_data", "nope")
    assert.is_true(ok)
    assert.are.equal("true", success)
    assert.are.same({ id = 7, tags = { "a", "b" }, x = cjson.null }, cjson.decode(data))
    assert.is_nil(missing)
  end)

  it("keeps strings, escapes and numbers byte for byte", function()
    local ok, v = core.json_members(' { "a" : "\\u00e9\\n\\"é" , "b" : -1.5e+3 } ', "a")
    assert.is_true(ok)
    assert.are.equal('"\\u00e9\\n\\"é"', v)
    assert.are.equal("-1.5e+3", select(2, core.json_members('{"b":-1.5e+3}', "b")))
  end)

  it("agrees with cjson on every document the encoder writes", function()
    local values = { {}, { a = { 1, 2, { b = "c" } } }, { s = ("x"):rep(1000) }, { u = "é漢字🎉" },
                     { n = -0.5, i = 12345678901, t = true, f = false, z = core.null }, { e = core.empty_array } }
    for _, v in ipairs(values) do
      local text = core.json_encode({ member = v })
      local ok, raw = core.json_members(text, "member")
      assert.is_true(ok, text)
      assert.are.same(cjson.decode(text).member, cjson.decode(raw))
    end
  end)

  local bad = {
    ["an unterminated object"] = '{"a":1',
    ["trailing garbage"] = '{"a":1} x',
    ["a leading zero"] = '{"a":01}',
    ["a control character in a string"] = '{"a":"\1"}',
    ["a bad escape"] = '{"a":"\\x"}',
    ["a short \\u escape"] = '{"a":"\\u12"}',
    ["invalid UTF-8"] = '{"a":"\255"}',
    ["a truncated literal"] = '{"a":tru}',
    ["a missing colon"] = '{"a" 1}',
    ["a trailing comma"] = '{"a":1,}',
    ["a bare word"] = '{"a":nan}',
    ["an empty document"] = "",
    ["nesting deeper than 100"] = '{"a":' .. ("["):rep(101) .. ("]"):rep(101) .. "}",
  }
  for what, text in pairs(bad) do
    it("refuses " .. what, function()
      local ok, msg = core.json_members(text, "a")
      assert.is_nil(ok)
      assert.is_string(msg)
    end)
  end

  it("refuses a document that is not an object", function()
    assert.are.same({ nil, "not a JSON object" }, { core.json_members("[1,2]", "a") })
  end)

  it("takes 1 to 8 member names", function()
    assert.has_error(function() core.json_members("{}") end)
    assert.has_error(function() core.json_members("{}", "1", "2", "3", "4", "5", "6", "7", "8", "9") end)
  end)
end)

-- The scanner and lua-cjson (which decodes the answers later) must agree:
-- whatever json_members accepts, cjson accepts too, with equal members.
-- Otherwise a save reports success and the first field read raises.
describe("json_members and cjson", function()
  local safe = require "cjson.safe"

  -- json_members' verdict, cjson's verdict, and both views of each member.
  local function verdicts(text, ...)
    local r = { core.json_members(text, ...) }
    local decoded = safe.decode(text)
    return r, decoded
  end

  local function refused(text, problem)
    local ok, msg = core.json_members(text, "a")
    assert.is_nil(ok, "json_members accepted " .. text)
    assert.is_string(msg)
    if problem then H.contains(msg, problem) end
    return msg
  end

  describe("lone UTF-16 surrogates (cjson refuses them)", function()
    local cases = {
      ["a high surrogate alone"] = { '{"a":"\\ud800"}', 7 },
      ["a low surrogate alone"] = { '{"a":"\\udc00"}', 7 },
      ["a high surrogate before a plain character"] = { '{"a":"\\uD800x"}', 7 },
      ["a high surrogate before another high one"] = { '{"a":"\\ud800\\ud800"}', 7 },
      ["a high surrogate before a non-surrogate escape"] = { '{"a":"\\ud800\\u0041"}', 7 },
      ["a high surrogate before another escape"] = { '{"a":"\\ud800\\n"}', 7 },
      ["a low surrogate first"] = { '{"a":"\\udc00\\ud800"}', 7 },
      ["a high surrogate at the end of the string"] = { '{"a":"x\\udbff"}', 8 },
      ["a high surrogate at the end of the text"] = { '{"a":"\\ud800', 7 },
      ["a lone surrogate in a key"] = { '{"\\udfff":1}', 3 },
      ["a lone surrogate deep inside"] = { '{"b":[{"c":"\\ud834"}]}', 13 },
    }
    for what, case in pairs(cases) do
      it("refuses " .. what .. ", naming it and where", function()
        local text, at = case[1], case[2]
        assert.is_nil(safe.decode(text), "cjson accepts " .. text)
        local msg = refused(text, "surrogate")
        H.contains(msg, "byte " .. at)
      end)
    end

    it("accepts surrogate pairs, in either case, as cjson does", function()
      for _, text in ipairs{ '{"a":"\\ud83d\\ude00"}', '{"a":"\\uD83D\\uDE00x"}', '{"a":"\\udbff\\udfff"}' } do
        local ok, raw = core.json_members(text, "a")
        assert.is_true(ok, text)
        assert.are.equal(safe.decode(text).a, safe.decode(raw))
      end
    end)
  end)

  it("finds members whose names are spelled with escapes, as cjson does", function()
    local text = '{"success":true,"result\\u005fdata":{"id":1}}'
    local ok, success, data = core.json_members(text, "success", "result_data")
    assert.is_true(ok)
    assert.are.equal("true", success)
    assert.are.same(safe.decode(text).result_data, safe.decode(data))
    local ok2, v = core.json_members('{"\\u00e9\\ud83d\\ude00\\n":2}', "é😀\n")
    assert.is_true(ok2)
    assert.are.equal("2", v)
    assert.is_nil(select(2, core.json_members('{"a\\u0000":1}', "a")))
  end)

  it("takes the last of duplicate members, as cjson does, however the name is spelled", function()
    for _, text in ipairs{ '{"a":1,"a":2}', '{"a":1,"\\u0061":2}', '{"\\u0061":1,"a":2}' } do
      local r, decoded = verdicts(text, "a")
      assert.are.same({ true, "2" }, r)
      assert.are.equal(2, decoded.a)
    end
  end)

  it("answers every name asked for, even a name asked twice", function()
    assert.are.same({ true, "1", "1" }, { core.json_members('{"a":1}', "a", "a") })
  end)

  it("compares whole names, NUL bytes included", function()
    assert.are.same({ true, "2" }, { core.json_members('{"a":1,"a\\u0000b":2}', "a\0b") })
    assert.are.same({ true, "1" }, { core.json_members('{"a":1,"a\\u0000b":2}', "a") })
  end)

  it("names the problem and its position in every refusal", function()
    local cases = {
      { '{"a":"x', "byte 8", "unterminated string" },
      { '{"a":"\1"}', "byte 7", "control character" },
      { '{"a":"\255"}', "byte 7", "invalid UTF-8" },
      { '{"a":"\\x"}', "byte 7", "escape" },
      { '{"a":"\\u12"}', "byte 7", "escape" },
      { '{"a":01}', "byte 7", "number" },
      { '{"a":1.}', "byte 8", "number" },
      { '{"a":tru}', "byte 6", "value" },
      { '{"a" 1}', "byte 6", "':'" },
      { '{"a":1,}', "byte 8", "string" },
      { '{"a":1 "b":2}', "byte 8", "','" },
      { '{"a":1} x', "byte 9", "after" },
      { '{"a":' .. ("["):rep(101) .. ("]"):rep(101) .. "}", "byte 105", "deep" },
    }
    for _, case in ipairs(cases) do
      local msg = refused(case[1])
      H.contains(msg, case[2])
      H.contains(msg, case[3])
    end
  end)

  it("refuses raw control characters, NUL included, in strings and everywhere else", function()
    for b = 0, 31 do
      local c = string.char(b)
      refused('{"a":"' .. c .. '"}', "control character")
      if c ~= "\t" and c ~= "\n" and c ~= "\r" then
        refused('{' .. c .. '"a":1}')
        refused('{"a":1}' .. c)
        assert.is_nil(safe.decode('{' .. c .. '"a":1}'))
      end
    end
  end)

  -- Where json_members is stricter than cjson, it refuses text that is not
  -- JSON (RFC 8259): a server that sends it gets a protocol error at the call,
  -- which is what such an answer deserves. The danger is only the other way
  -- round (accepted here, refused when read), which cannot happen.
  describe("refuses what cjson lets through but JSON forbids", function()
    local lax = {
      ["raw control characters in strings"] = { '{"a":"\1"}', '{"a":"\t"}', '{"a":"x\ny"}' },
      ["invalid UTF-8 in strings"] = { '{"a":"\255"}', '{"a":"\192\175"}', '{"a":"\237\160\128"}',
                                       '{"a":"\244\144\128\128"}', '{"\200":1}' },
      ["numbers JSON does not have"] = { '{"a":01}', '{"a":-01}', '{"a":0x10}', '{"a":+1}', '{"a":1.}',
                                         '{"a":-.5}', '{"a":1.e5}', '{"a":inf}', '{"a":-Infinity}',
                                         '{"a":nan}', '{"a":0.}' },
      ["text after a NUL byte that ends the document"] = { '{"a":1}\0', '{"a":1}\0garbage' },
      ["nesting from 101 to 1000 levels"] = { '{"a":' .. ("["):rep(101) .. ("]"):rep(101) .. "}",
                                               '{"a":' .. ("["):rep(999) .. ("]"):rep(999) .. "}" },
    }
    for what, texts in pairs(lax) do
      it(what, function()
        for _, text in ipairs(texts) do
          assert.is_not_nil(safe.decode(text), "cjson no longer accepts " .. text)
          refused(text)
        end
      end)
    end

    it("and documents that are not objects (its contract: an envelope is one)", function()
      for _, text in ipairs{ "[1]", '"a"', "1", "null", "true" } do
        assert.is_not_nil(safe.decode(text))
        assert.are.same({ nil, "not a JSON object" }, { core.json_members(text, "a") })
      end
    end)
  end)

  it("agrees with cjson on every document both accept, member by member", function()
    local texts = {
      '{"a":1e999,"b":-0,"c":1E+2,"d":0.5e-3}', '{"a":"\\u0000\\/\\b\\f\\n\\r\\t\\"\\\\"}',
      ' \t\r\n{ "a" : [ ] , "b" : { } , "c" : [ null , true , false ] } \n',
      '{"a":"é漢字🎉","b":"\\u00e9\\u6f22\\ud83c\\udf89"}', '{"b":{"a":1},"a":{"a":{"a":[]}}}',
    }
    for _, text in ipairs(texts) do
      local decoded = assert(safe.decode(text), text)
      local r = { core.json_members(text, "a", "b", "c", "d") }
      assert.is_true(r[1], text)
      for i, name in ipairs{ "a", "b", "c", "d" } do
        if decoded[name] == nil then
          assert.is_nil(r[i + 1])
        else
          assert.are.same(decoded[name], safe.decode(r[i + 1]))
        end
      end
    end
  end)
end)

-- What the issue was about: a write whose answer holds a lone surrogate used
-- to "succeed", and then reading a field raised. Now the call itself fails.
describe("a write answered with a lone surrogate", function()
  local envoke = require "envoke"
  local srv

  local function hex(s)
    return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
  end

  setup(function()
    -- Answers /answer/HEX/... with the bytes HEX spells, as a JSON 200.
    srv = require("sandbox.nginx").start{ server = [[
      location /answer/ {
        content_by_lua_block {
          local h = ngx.var.uri:match("^/answer/(%x+)/")
          ngx.header["Content-Type"] = "application/json"
          ngx.print((h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end)))
        }
      }
    ]] }
  end)

  teardown(function()
    if srv then srv:stop() end
  end)

  local function save_answered(body)
    local client = envoke.new{ base_url = srv.url .. "/answer/" .. hex(body), api_id = "id", api_key = "key",
                               retries = 0 }
    local c = client:contact{ id = 7 }:set("city", "Toronto")
    local saved, err = c:save()
    client:close()
    return saved, err, c
  end

  it("returns a protocol error instead of a contact that raises when read", function()
    local saved, err = save_answered('{"success":true,"result_text":"Updated",'
      .. '"result_data":{"id":7,"city":"\\ud800"}}')
    assert.is_nil(saved)
    assert.are.equal("protocol", err.kind)
    H.contains(err.message, "surrogate")
  end)

  it("still succeeds with a surrogate pair", function()
    local saved, err, c = save_answered('{"success":true,"result_text":"Updated",'
      .. '"result_data":{"id":7,"city":"\\ud83d\\ude00"}}')
    assert.is_nil(err)
    assert.are.equal(c, saved)
    assert.are.equal("😀", c.city)
  end)
end)
