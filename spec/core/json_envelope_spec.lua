-- core.json_envelope: the one statement of the write-envelope rule (a 2xx
-- answer is a successful write when it is valid JSON, `success` is exactly
-- true and `result_data` an object), shared by the pool's envelope argument
-- and Client:outcome.
local core = require "envoke.core"
local envoke = require "envoke"
local H = require "core_helper"

-- Every result of a call, and how many there were (LuaJIT has no table.pack).
local function pack(...) return { n = select("#", ...), ... } end

local OK = '{"success":true,"result_text":"Updated","result_data":{"id":"1234","city":"Toronto","n":[1,2.5e3]}}'
local OK_DATA = '{"id":"1234","city":"Toronto","n":[1,2.5e3]}'

-- name, body, then what json_envelope returns.
local CASES = {
  { "a successful write", OK, OK_DATA },
  { "whitespace everywhere", ' {\n "success" : true ,\t"result_data" : { "a" : [ 1 ] } }\r\n', '{ "a" : [ 1 ] }' },
  { "the last of duplicates", '{"success":false,"result_data":[],"success":true,"result_data":{"b":2}}', '{"b":2}' },
  { "member names spelled with escapes", '{"succ\\u0065ss":true,"result\\u005fdata":{}}', "{}" },
  { "success false", '{"success":false,"result_text":"No","result_data":{"id":"1"}}', nil, "false" },
  { "success false without result_data", '{"success":false}', nil, "false" },
  { "success missing", '{"result_data":{"id":"1"}}', nil, "success", nil },
  { "success as the string \"true\"", '{"success":"true","result_data":{}}', nil, "success", '"true"' },
  { "success 1", '{"success":1,"result_data":{}}', nil, "success", "1" },
  { "success null", '{"success":null,"result_data":{}}', nil, "success", "null" },
  { "success an object", '{"success":{"a":true},"result_data":{}}', nil, "success", '{"a":true}' },
  { "result_data missing", '{"success":true,"result_text":"Updated"}', nil, "result_data", nil },
  { "result_data an array", '{"success":true,"result_data":[{"id":"1"}]}', nil, "result_data", '[{"id":"1"}]' },
  { "result_data a string", '{"success":true,"result_data":"{}"}', nil, "result_data", '"{}"' },
  { "result_data null", '{"success":true,"result_data":null}', nil, "result_data", "null" },
  { "truncated JSON", '{"success":true,"result_data":{"id":"1"}', nil, "invalid",
    "invalid JSON at byte 41: unexpected end of text" },
  { "text after the document", OK .. "x", nil, "invalid",
    "invalid JSON at byte 100: unexpected text after the document" },
  { "a lone surrogate escape", '{"success":true,"result_data":{"id":"\\ud800"}}', nil, "invalid",
    "invalid JSON at byte 38: lone UTF-16 surrogate in a \\u escape (not a character)" },
  { "a JSON array", '[{"success":true,"result_data":{}}]', nil, "invalid", "not a JSON object" },
  { "an empty body", "", nil, "invalid", "not a JSON object" },
}

-- The rule as client.lua wrote it with json_members before json_envelope
-- existed: what json_envelope must agree with, case by case.
local function members_rule(text)
  local valid, success, data = core.json_members(text, "success", "result_data")
  if not valid then return nil, "invalid", success end
  if success == "true" then
    if data and data:byte(1) == 123 then return data end
    return nil, "result_data", data
  end
  if success == "false" then return nil, "false" end
  return nil, "success", success
end

describe("core.json_envelope", function()
  for _, case in ipairs(CASES) do
    it("answers " .. (case[3] and "result_data's text" or case[4]) .. " for " .. case[1], function()
      local r = pack(core.json_envelope(case[2]))
      if case[3] then
        assert.are.equal(1, r.n)
        assert.are.equal(case[3], r[1])
      else
        assert.are.equal(case[4] == "false" and 2 or 3, r.n)
        assert.is_nil(r[1])
        assert.are.equal(case[4], r[2])
        assert.are.equal(case[5], r[3])
      end
    end)
  end

  it("gives json_members' message for text that is not one JSON object", function()
    for _, text in ipairs{ "", "   ", "null", '{"a":01}', '{"a":"\1"}', '{"success":true', ("["):rep(200) } do
      local _, verdict, message = core.json_envelope(text)
      assert.are.equal("invalid", verdict)
      assert.are.equal(select(2, core.json_members(text, "success")), message)
    end
  end)

  it("agrees with the rule written over json_members on mutated envelopes", function()
    local seeds = {}
    for i, case in ipairs(CASES) do seeds[i] = case[2] end
    local alphabet = { "{", "}", "[", "]", '"', ",", ":", " ", "t", "f", "0", "\\", "true", "false", "null",
                       '"success"', '"result_data"', "{}", "[]", "\255" }
    local state = 12345 -- a fixed linear congruential sequence: the same documents every run
    local function rand(n)
      state = (state * 1103515245 + 12345) % 2147483648
      return state % n + 1
    end
    for _ = 1, 20000 do
      local text = seeds[rand(#seeds)]
      for _ = 1, rand(3) do
        local at = rand(#text + 1) - 1
        local cut = rand(3) - 1
        text = text:sub(1, at) .. (rand(2) == 1 and alphabet[rand(#alphabet)] or "") .. text:sub(at + 1 + cut)
      end
      local want, got = pack(members_rule(text)), pack(core.json_envelope(text))
      for k = 1, 3 do assert.are.equal(want[k], got[k], ("value %d for %q"):format(k, text)) end
    end
  end)

  it("raises at the caller's line for a value that is not a string", function()
    for _, v in ipairs{ {}, true } do
      H.contains(H.raises(core.json_envelope, v), "bad argument #1")
    end
    H.contains(H.raises(core.json_envelope), "bad argument #1")
  end)
end)

describe("core.json_envelope and pool:request's envelope argument", function()
  local rig = H.echo_rig{ tls = false }
  lazy_setup(rig.start)
  lazy_teardown(rig.stop)

  it("agree on every body: the pool takes exactly the answers json_envelope takes", function()
    for _, case in ipairs(CASES) do
      local data = core.json_envelope(case[2])
      local r = pack(rig.pool:request("POST", "/reply/200", case[2], nil, true))
      assert.are.equal(200, r[1], case[1])
      if data then
        assert.are.equal(4, r.n, case[1])
        assert.are.equal(data, r[2], case[1])
        assert.is_true(r[4], case[1])
      else
        assert.are.equal(3, r.n, case[1])
        assert.are.equal(case[2], r[2], case[1])
      end
    end
  end)
end)

describe("Client:outcome on a write's 2xx answer", function()
  -- No request is sent: outcome only reads what a transport answered.
  local client = envoke.new{ api_id = "id", api_key = "key", base_url = "http://127.0.0.1:9", retries = 0 }

  it("returns result_data's text for a successful write", function()
    local r = pack(client:outcome(200, OK, nil, true))
    assert.are.equal(1, r.n)
    assert.are.equal(OK_DATA, r[1])
  end)

  it("says what is wrong with every other answer, as before json_envelope", function()
    local messages = {
      ['{"success":1,"result_data":{}}'] = "the answer's 'success' is 1, not true or false",
      ['{"success":"true","result_data":{}}'] = "the answer's 'success' is \"true\", not true or false",
      ['{"result_data":{}}'] = "the answer's 'success' is missing, not true or false",
      ['{"success":true,"result_data":[]}'] = "the answer has no contact in result_data",
      ['{"success":true}'] = "the answer has no contact in result_data",
      [OK .. "x"] = "the response is not JSON: invalid JSON at byte 100: unexpected text after the document",
      [""] = "the response is not JSON: not a JSON object",
    }
    for body, message in pairs(messages) do
      local data, err = client:outcome(201, body, nil, true)
      assert.is_nil(data, body)
      assert.are.equal("protocol", err.kind, body)
      assert.are.equal(message, err.message, body)
      assert.are.equal(201, err.status, body)
    end
  end)

  it("hands success false to the server's error", function()
    local data, err = client:outcome(200, '{"success":false,"result_text":"No","result_data":{"id":"1"}}', nil, true)
    assert.is_nil(data)
    assert.are_not.equal("protocol", err.kind)
    assert.are.equal(200, err.status)
  end)
end)
