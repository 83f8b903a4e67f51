-- pool:request / pool:submit with envelope (their 5th argument): a 2xx write
-- envelope with success true and an object in result_data comes back as its
-- result_data text alone (status, data, nil, true); every other answer, and
-- every call without envelope, comes back exactly as before.

local H = require "core_helper"

-- Every result of a call, and how many there were (LuaJIT has no table.pack).
local function pack(...) return { n = select("#", ...), ... } end

local OK = '{"success":true,"result_text":"Updated","result_data":{"id":"1234","city":"Toronto","n":[1,2.5e3]}}'
local OK_DATA = '{"id":"1234","city":"Toronto","n":[1,2.5e3]}'

-- Answers the Lua side does not take at once: status and body the server sends.
local NOT_QUALIFYING = {
  { "a 4xx with a success envelope", 422, OK },
  { "a 500", 500, OK },
  { "success false", 200, '{"success":false,"result_text":"No","result_data":{"id":"1"}}' },
  { "success as the string \"true\"", 200, '{"success":"true","result_data":{"id":"1"}}' },
  { "success 1", 200, '{"success":1,"result_data":{"id":"1"}}' },
  { "success missing", 200, '{"result_data":{"id":"1"}}' },
  { "result_data an array", 200, '{"success":true,"result_data":[{"id":"1"}]}' },
  { "result_data a string", 200, '{"success":true,"result_data":"{}"}' },
  { "result_data null", 200, '{"success":true,"result_data":null}' },
  { "result_data missing", 200, '{"success":true,"result_text":"Updated"}' },
  { "invalid JSON (truncated)", 200, '{"success":true,"result_data":{"id":"1"}' },
  { "invalid JSON (text after it)", 200, OK .. "x" },
  { "a lone surrogate escape inside result_data", 200, '{"success":true,"result_data":{"id":"\\ud800"}}' },
  { "a JSON array", 200, '[{"success":true,"result_data":{}}]' },
  { "an empty body", 200, "" },
}

describe("pool:request with envelope", function()
  local rig = H.echo_rig{ tls = false }
  lazy_setup(rig.start)
  lazy_teardown(rig.stop)

  it("returns status, result_data's exact text, nil, true for a qualifying answer", function()
    local r = pack(rig.pool:request("POST", "/reply/200", OK, nil, true))
    assert.are.equal(4, r.n)
    assert.are.equal(200, r[1])
    assert.are.equal(OK_DATA, r[2])
    assert.is_nil(r[3])
    assert.is_true(r[4])
  end)

  it("takes any 2xx, whitespace in the document and a truthy non-boolean envelope", function()
    local spaced = ' {\n "success" : true ,\t"result_data" : { "a" : [ 1 , "\\u00e9\\ud83d\\ude00" ] } }\r\n'
    local status, data, headers, env = rig.pool:request("PUT", "/reply/201", spaced, nil, 1)
    assert.are.equal(201, status)
    assert.are.equal('{ "a" : [ 1 , "\\u00e9\\ud83d\\ude00" ] }', data)
    assert.is_nil(headers)
    assert.is_true(env)
  end)

  it("takes the last of duplicate members, as cjson does", function()
    local body = '{"success":false,"result_data":[],"success":true,"result_data":{"b":2}}'
    local status, data, _, env = rig.pool:request("POST", "/reply/200", body, nil, true)
    assert.are.equal(200, status)
    assert.are.equal('{"b":2}', data)
    assert.is_true(env)
  end)

  for _, case in ipairs(NOT_QUALIFYING) do
    it("returns status, body, headers as before for " .. case[1], function()
      local r = pack(rig.pool:request("POST", "/reply/" .. case[2], case[3], nil, true))
      assert.are.equal(3, r.n)
      assert.are.equal(case[2], r[1])
      assert.are.equal(case[3], r[2])
      assert.is_table(r[3])
      assert.are.equal("application/json", r[3]["content-type"])
    end)
  end

  it("returns nil, err as before for a network failure", function()
    local p = H.pool("http://127.0.0.1:" .. H.closed_port())
    local r = pack(p:request("POST", "/reply/200", OK, nil, true))
    p:close()
    assert.are.equal(2, r.n)
    assert.is_nil(r[1])
    H.check_err(r[2])
    assert.are.equal("network", r[2].kind)
  end)

  it("changes nothing without envelope (absent, nil or false)", function()
    for _, envelope in ipairs{ "absent", "nil", "false" } do
      local results
      if envelope == "absent" then
        results = pack(rig.pool:request("POST", "/reply/200", OK, nil))
      else
        results = pack(rig.pool:request("POST", "/reply/200", OK, nil, envelope == "false" and false or nil))
      end
      assert.are.equal(3, results.n, envelope)
      assert.are.equal(200, results[1])
      assert.are.equal(OK, results[2])
      assert.are.equal("application/json", results[3]["content-type"])
    end
  end)

  it("keeps a request's envelope to itself (a recycled request forgets it)", function()
    assert.are.equal(OK_DATA, select(2, rig.pool:request("POST", "/reply/200", OK, nil, true)))
    assert.are.equal(OK, select(2, rig.pool:request("POST", "/reply/200", OK)))
    assert.are.equal(OK_DATA, select(2, rig.pool:request("POST", "/reply/200", OK, nil, true)))
  end)

  it("keeps the caller's headers working beside it", function()
    local status, data, _, env = rig.pool:request("POST", "/reply/200", OK, { ["X-Trace"] = "1" }, true)
    assert.are.equal(200, status)
    assert.are.equal(OK_DATA, data)
    assert.is_true(env)
  end)

  describe("through submit, perform and finished", function()
    -- Submits (method, body, envelope) triples and returns what finished() gave for each, in order.
    local function run(calls)
      local ids = {}
      for i, c in ipairs(calls) do
        ids[i] = rig.pool:submit("POST", "/reply/" .. c[1], c[2], nil, c[3])
      end
      local got, deadline = {}, H.core.now() + 20000
      local left = #calls
      while left > 0 and H.core.now() < deadline do
        rig.pool:perform(50)
        for _ = 1, #calls do
          local r = pack(rig.pool:finished())
          if r[1] == nil then break end
          got[r[1]] = r
          left = left - 1
        end
      end
      local out = {}
      for i, id in ipairs(ids) do out[i] = assert(got[id], "no result for call " .. i) end
      return out
    end

    it("returns id, status, result_data, nil, true for a qualifying answer", function()
      local r = run{ { 200, OK, true } }[1]
      assert.are.equal(5, r.n)
      assert.are.equal(200, r[2])
      assert.are.equal(OK_DATA, r[3])
      assert.is_nil(r[4])
      assert.is_true(r[5])
    end)

    it("returns id, status, body, headers for every other answer, and without envelope", function()
      local calls = {}
      for i, case in ipairs(NOT_QUALIFYING) do calls[i] = { case[2], case[3], true } end
      calls[#calls + 1] = { 200, OK, nil }
      calls[#calls + 1] = { 200, OK, false }
      for i, r in ipairs(run(calls)) do
        assert.are.equal(4, r.n, "call " .. i)
        assert.are.equal(calls[i][1], r[2], "call " .. i)
        assert.are.equal(calls[i][2], r[3], "call " .. i)
        assert.is_table(r[4], "call " .. i)
      end
    end)

    it("returns id, nil, err for a network failure", function()
      local p = H.pool("http://127.0.0.1:" .. H.closed_port())
      p:submit("POST", "/reply/200", OK, nil, true)
      local r
      for _ = 1, 200 do
        p:perform(50)
        r = pack(p:finished())
        if r[1] then break end
      end
      p:close()
      assert.are.equal(3, r.n)
      assert.is_nil(r[2])
      H.check_err(r[3])
    end)
  end)
end)
