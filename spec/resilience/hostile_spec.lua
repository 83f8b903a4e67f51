-- Answers a broken or hostile server may give, and what the client makes of
-- them: never a raise, never nil, nil, never a request steered elsewhere,
-- never a secret handed out. Real nginx answers (spec/support/hostile_server.lua).
local envoke = require "envoke"
local hostile = require "hostile_server"

local KEY = "k3y-S3CRET-value-0042"
local ID = "acct-77"

describe("a hostile or broken server", function()
  local srv
  setup(function() srv = hostile.start() end)
  teardown(function() if srv then srv:stop() end end)

  local function client(scenario, opts)
    local o = { api_id = ID, api_key = KEY, base_url = srv.url .. "/" .. scenario, retries = 0 }
    for k, v in pairs(opts or {}) do o[k] = v end
    return envoke.new(o)
  end

  -- A client whose logger records every request it sends.
  local function logged(scenario)
    local sent = {}
    local c = client(scenario, { logger = function(e)
      if e.event == "request" then sent[#sent + 1] = e.method .. " " .. e.path end
    end })
    return c, sent
  end

  describe("ids taken from an answer", function()
    for n, raw in ipairs(hostile.ids) do
      it("never reach a path or a body when the id is " .. raw, function()
        local c, sent = logged("id-" .. n)
        local got, err = c:find{ email = "a@example.com" }
        assert.is_nil(err)
        local before = #sent
        for _, call in ipairs{
          function() return got:delete() end,
          function() return got:reload() end,
          function() return got:set("city", "Here"):save() end,
          function() return got:upsert{ keyfield = "id" } end,
          function() return got:delete_async():wait(5000) end,
        } do
          local ok, e = call()
          assert.is_nil(ok)
          assert.are.equal("protocol", e.kind)
          assert.is_false(e.sent)
          assert.truthy(tostring(e):find("not a valid Envoke id", 1, true), tostring(e))
        end
        assert.are.equal(before, #sent, "sent: " .. table.concat(sent, ", "))
        assert.are.equal(0, c:pending())
      end)
    end

    it("from a write's answer are checked as well", function()
      local c, sent = logged("id-1")
      local saved = assert(c:contact{ email = "a@example.com" }:insert())
      local n = #sent
      local ok, err = saved:delete()
      assert.is_nil(ok)
      assert.are.equal("protocol", err.kind)
      assert.are.equal(n, #sent)
    end)
  end)

  describe("list answers", function()
    for _, scenario in ipairs{ "list-scalars", "list-object" } do
      it("that are not arrays of objects are protocol errors (" .. scenario .. ")", function()
        local c = client(scenario)
        local list, err = c:list{}
        assert.is_nil(list)
        assert.are.equal("protocol", err.kind)
        local h = c:list_async({})
        local r, aerr = h:wait(5000)
        assert.is_nil(r)
        assert.are.equal("protocol", aerr.kind)
        assert.are.equal(0, c:pending())
        local iter = c:contacts{}
        local item, ierr = iter()
        assert.is_false(item)
        assert.are.equal("protocol", ierr.kind)
        assert.is_nil(iter())
      end)
    end
  end)

  describe("a write answer's success member", function()
    for _, kind in ipairs{ "yes", "null", "missing", "1" } do
      it("is a protocol error when it is " .. kind, function()
        local c = client("success-" .. kind)
        local saved, err = c:contact{ email = "a@example.com" }:insert()
        assert.is_nil(saved)
        assert.are.equal("protocol", err.kind)
        assert.truthy(err.message:find("success", 1, true))
      end)
    end
  end)

  describe("empty and falsy answers", function()
    for _, scenario in ipairs{ "empty-200", "204", "false-200", "null-200" } do
      it("never give nil, nil or false, nil (" .. scenario .. ")", function()
        local c = client(scenario)
        for name, call in pairs{
          ping = function() return c:ping() end,
          request = function() return c:request("GET", "/v1/settings") end,
          interests = function() return c:interests() end,
          autoresponders = function() return c:autoresponders() end,
          get = function() return c:get(5) end,
          ping_async = function() return c:ping_async():wait(5000) end,
        } do
          local value, err = call()
          assert.is_true(value ~= nil and value ~= false or err ~= nil, name .. " returned no value and no error")
          if not value then assert.is_string(err.kind, name) end
        end
      end)
    end

    it("a 204 to a raw request is true", function()
      assert.is_true(client("204"):request("DELETE", "/v1/contacts/5"))
    end)
  end)

  describe("secrets a server echoes back", function()
    local function walk(v, out, seen)
      seen = seen or {}
      if type(v) == "string" then out[#out + 1] = v return out end
      if type(v) ~= "table" or seen[v] then return out end
      seen[v] = true
      for k, x in pairs(v) do walk(k, out, seen) walk(x, out, seen) end
      walk(getmetatable(v), out, seen)
      return out
    end
    local basic = require("envoke.sandbox.auth").base64_encode(ID .. ":" .. KEY)

    local function assert_clean(where, value)
      for _, s in ipairs(walk(value, {})) do
        assert.is_nil(s:find(KEY, 1, true), where .. " holds the key: " .. s)
        assert.is_nil(s:find(basic, 1, true), where .. " holds the credential: " .. s)
      end
    end

    it("are redacted from the error, its text, its errors and the logger's events", function()
      local events = {}
      local c = client("echo-secret", { logger = function(e) events[#events + 1] = e end })
      local ok, err = c:ping()
      assert.is_nil(ok)
      assert.are.equal("validation", err.kind)
      assert.truthy(err.message:find("***", 1, true))
      assert_clean("err", err)
      assert_clean("tostring(err)", tostring(err))
      assert_clean("err.errors", tostring(err.errors))
      assert_clean("logger events", events)
      local _, aerr = c:ping_async():wait(5000)
      assert_clean("async err", aerr)
    end)

    it("are kept out of every table reachable from a client, whatever the transport", function()
      for _, transport in ipairs{ "curl", "in_process" } do
        local c = client("echo-secret", { transport = transport })
        assert_clean(transport .. " client", c)
        c:close()
      end
    end)
  end)
end)
