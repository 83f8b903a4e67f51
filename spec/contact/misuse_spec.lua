-- Misuse raises at the caller's line (as luaL_argerror does), naming the
-- problem, before anything is sent; failures of the world never raise.
local envoke = require "envoke"
local core = require "envoke.core"

local THIS = "misuse_spec.lua"

describe("misuse", function()
  local client, sent
  before_each(function()
    sent = 0
    client = envoke.new{ transport = "in_process", logger = function(e)
      if e.event == "request" then sent = sent + 1 end
    end }
  end)

  -- Every case sits on one line: the error must name exactly that line.
  local cases = {}
  local function case(want, fn)
    cases[#cases + 1] = { want = want, fn = fn, line = debug.getinfo(2, "l").currentline }
  end
  local c -- a contact, made in the cases' before_each
  local cyclic = {}
  cyclic.a = cyclic

  case("'emial' is an unknown field", function() client:contact{ emial = "a@example.com" } end)
  case("'frist_name' is an unknown field", function() c.frist_name = "x" end)
  case("'frist_name' is an unknown field", function() c:set{ frist_name = "x" } end)
  case("'id' must be an integer", function() client:contact{ id = 0 } end)
  case("get: id must be an integer", function() client:get("abc") end)
  case("find takes exactly one of", function() client:find{ city = "x" } end)
  case("contacts: unknown option 'bogus'", function() client:contacts{ bogus = 1 } end)
  case("'concurrency' must be an integer", function() client:save_all({}, { concurrency = 0 }) end)
  case("the callback must be a function", function() client:get_async(1, 5) end)
  case("'Remove'", function() c:autoresponder("Seq", "Remove") end)
  case("option 'base_url' must start with http", function() envoke.new{ base_url = "ftp://x", api_id = "i",
    api_key = "k" } end)
  case("the callback must be a function", function() client:request_async("GET", "/v1/settings", nil, 5) end)
  case("unknown operator '$bogus'", function() client:list{ filter = { email = { ["$bogus"] = 1 } } } end)
  case("must not be empty or hold '[' or ']'", function() client:list{ filter = { ["email][$ne"] = "x" } } end)
  case("refers to itself", function() client:list{ filter = cyclic } end)
  case("'consent_expiry' is read-only", function() c:set("consent_expiry", "2030-01-01") end)
  case("needs a description", function() c:consent("Express") end)
  case("unknown consent option", function() c:consent("Express", "why", { force = true }) end)
  case("save: unknown option 'key'", function() c:save{ key = "email" } end)
  case("'keyfield' must be id, email or remote_id", function() c:upsert{ keyfield = "phone" } end)
  case("not valid UTF-8", function() c:interest("News\255", "Set") end)
  case("not valid UTF-8", function() c:autoresponder("\192\128", "Set") end)
  case("not valid UTF-8", function() c:custom_field("\237\160\128", "x") end)
  case("not valid UTF-8", function() c:set("interests", { "\244\144\128\128" }) end)
  case("request: method must be one of", function() client:request("BREW", "/v1/settings") end)
  case("request: path must start with '/'", function() client:request("GET", "/v1/a b") end)
  case("a GET request has no body", function() client:request("GET", "/v1/settings", { a = 1 }) end)
  case("cannot be encoded as JSON", function() client:request("POST", "/v1/x", cyclic) end)
  case("poll: timeout_ms must be", function() client:poll(1e9) end)
  case("poll: timeout_ms must be", function() client:poll(-1) end)
  case("drain: ms must be", function() client:drain("soon") end)
  case("close: unknown option", function() client:close{ drain = 5 } end)
  case("'rate_limit' must be", function() envoke.new{ transport = "in_process", rate_limit = 1e-5 } end)
  case("unknown option 'timout'", function() envoke.new{ timout = 1 } end)
  case("unknown retries option 'tries'", function() envoke.new{ transport = "in_process", retries = { tries = 3 } } end)
  case("use page_size, not limit", function() client:contacts{ limit = 5 } end)
  case("query value at", function() client:list{ filter = { id = { ["$gt"] = 0 / 0 } } } end)
  case("option 'base_url' must be a string", function() core.pool{ base_url = 5 } end)

  for _, k in ipairs(cases) do
    it(("raises at the caller's line: %s (line %d)"):format(k.want, k.line), function()
      c = client:contact{ email = "a@example.com" }
      local ok, msg = pcall(k.fn)
      assert.is_false(ok, "did not raise")
      msg = tostring(msg)
      assert.truthy(msg:find(k.want, 1, true), msg)
      assert.truthy(msg:find(THIS .. ":" .. k.line .. ": ", 1, true), "not at the caller's line: " .. msg)
      assert.are.equal(0, sent, "something was sent")
      assert.are.equal(0, client:pending(), "a call was left pending")
    end)
  end

  it("the table has at least 25 cases", function()
    assert.is_true(#cases >= 25)
  end)

  it("a sub-millisecond timeout rounds up rather than meaning 'no timeout'", function()
    local blackhole = require("core_helper").blackhole()
    local slow = envoke.new{ base_url = "http://127.0.0.1:" .. blackhole.port, api_id = "i", api_key = "k",
                             timeout = 0.0004, connect_timeout = 0.0004, retries = 0 }
    local ok, err = slow:ping()
    assert.is_nil(ok)
    assert.truthy(err.kind == "timeout" or err.kind == "network", tostring(err))
    slow:close()
    blackhole:close()
  end)

  describe("bulk items that fail a setter", function()
    it("are their own validation errors with the bare reason, and the others go on", function()
      local items = { { email = "a@example.com" }, { email = "b@example.com", interests = { "N\255" } },
                      { email = "c@example.com", city = 5 }, { email = "d@example.com" } }
      local results, summary = client:insert_all(items)
      assert.are.equal(4, summary.total)
      assert.are.equal(2, summary.succeeded)
      assert.is_true(results[1].ok and results[4].ok)
      for _, i in ipairs{ 2, 3 } do
        local err = results[i].err
        assert.are.equal("validation", err.kind)
        assert.is_nil(err.message:find("%.lua:%d+"), err.message)
        assert.is_nil(tostring(err):find("envoke: validation: envoke:", 1, true), tostring(err))
      end
    end)
  end)

  describe("credentials", function()
    it("missing ones raise at envoke.new, naming the variables", function()
      local line = debug.getinfo(1, "l").currentline + 1
      local ok, msg = pcall(envoke.new, { base_url = "http://127.0.0.1:9" })
      if os.getenv("ENVOKE_API_ID") and os.getenv("ENVOKE_API_KEY") then return end
      assert.is_false(ok)
      assert.truthy(msg:find("ENVOKE_API_ID", 1, true) and msg:find("ENVOKE_API_KEY", 1, true), msg)
      assert.truthy(msg:find("no credentials", 1, true), msg)
      assert.is_number(line)
    end)
  end)

  describe("errors print well", function()
    it("a missing contact is not_found without an HTTP 200", function()
      local got, err = client:get(999)
      assert.is_nil(got)
      assert.are.equal("not_found", err.kind)
      assert.is_nil(tostring(err):find("HTTP 200", 1, true), tostring(err))
    end)

    it("err.errors prints its entries, and attempts show after a retried failure", function()
      local _, err = client:contact{ email = "x@example.com", first_name = "X" }:save{ keyfield = "email" }
      assert.is_nil(tostring(err.errors):find("table: ", 1, true))
      local e = envoke.errors.new("server", { status = 503, message = "busy", errors = { "a", "b" }, attempts = 4 })
      assert.are.equal("a; b", tostring(e.errors))
      assert.truthy(tostring(e):find("after 4 attempts", 1, true), tostring(e))
    end)
  end)
end)
