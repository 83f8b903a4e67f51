-- core.json_members: validates a whole JSON document without building tables
-- and hands back the raw text of named top-level members.
local core = require "envoke.core"
local cjson = require "cjson"

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
