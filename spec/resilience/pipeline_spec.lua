-- One pipeline: a blocking call and its non-blocking form make the same
-- attempts, log the same events and retry the same way; the public surface.
local sandbox_server = require "sandbox_server"

describe("one request pipeline", function()
  local srv
  setup(function() srv = sandbox_server.start() end)
  teardown(function() if srv then srv:stop() end end)
  before_each(function() srv:reset() end)

  -- The logger's events of one call, reduced to what must match.
  local function trace(call)
    local events = {}
    local client = srv:client{ retries = { max = 3, base_delay = 0.001, max_delay = 0.002 },
      logger = function(e) events[#events + 1] = table.concat({ e.event, e.method or "", e.path or "",
        tostring(e.attempt), tostring(e.status) }, " ") end }
    local result, err = call(client)
    client:close()
    return events, result, err
  end

  it("gives the same events, attempts and result blocking and non-blocking", function()
    srv:fault{ kind = "status", status = 503, path = "/v1/settings", count = 2 }
    local blocking, r1 = trace(function(c) return c:ping() end)
    srv:fault{ kind = "status", status = 503, path = "/v1/settings", count = 2 }
    local async, r2 = trace(function(c) return c:ping_async():wait(10000) end)
    assert.are.same(blocking, async)
    assert.are.equal(8, #blocking) -- 3 x (request, answer) and 2 retries
    assert.are.same(r1, r2)
  end)

  it("gives the same final error with its attempts, blocking and non-blocking", function()
    srv:fault{ kind = "status", status = 503, path = "/v1/settings", count = 10 }
    local blocking, _, e1 = trace(function(c) return c:ping() end)
    srv:fault{ kind = "status", status = 503, path = "/v1/settings", count = 10 }
    local async, _, e2 = trace(function(c) return c:ping_async():wait(10000) end)
    assert.are.same(blocking, async)
    assert.are.equal(4, e1.attempts)
    assert.are.equal(e1.attempts, e2.attempts)
    assert.are.equal(tostring(e1), tostring(e2))
  end)

  it("counts max_elapsed from the first send in both", function()
    srv:fault{ kind = "delay", delay_ms = 150, path = "/v1/settings", count = 10 }
    srv:fault{ kind = "status", status = 503, path = "/v1/settings", count = 10 }
    local function attempts(call)
      local c = srv:client{ timeout = 0.1, retries = { max = 10, base_delay = 0.001, max_delay = 0.001,
                                                       max_elapsed = 0.25 } }
      local _, err = call(c)
      c:close()
      return err.attempts
    end
    local a = attempts(function(c) return c:ping() end)
    srv:reset()
    srv:fault{ kind = "delay", delay_ms = 150, path = "/v1/settings", count = 10 }
    local b = attempts(function(c) return c:ping_async():wait(10000) end)
    assert.are.equal(a, b)
    assert.is_true(a <= 3, "attempts " .. a)
  end)
end)

describe("the public surface", function()
  local envoke = require "envoke"
  local client
  before_each(function() client = envoke.new{ transport = "in_process" } end)

  it("keeps the contact class's own functions off contact objects", function()
    local c = client:contact{ email = "a@example.com" }
    for _, name in ipairs{ "plan", "new", "from_server", "metatable", "list_items", "matching", "by_id_path" } do
      assert.is_nil(c[name], name)
    end
    assert.is_function(c.save)
  end)

  it("takes the callback in the options' place", function()
    local got = {}
    client:contact{ email = "cb@example.com" }:upsert_async(function(c) got[#got + 1] = c end)
    client:contact{ email = "cb@example.com", city = "Laval" }:save_async(function(c) got[#got + 1] = c end)
    client:list_async(function(list) got[#got + 1] = list end)
    client:request_async("GET", "/v1/settings", function(s) got[#got + 1] = s end)
    assert.is_true(client:drain(5000))
    assert.are.equal(4, #got)
    assert.are.equal("Laval", got[2].city)
  end)

  it("refuses a keyfield on insert rather than ignoring it", function()
    local ok, msg = pcall(function() return client:contact{ email = "i@example.com" }:insert{ keyfield = "email" } end)
    assert.is_false(ok)
    assert.truthy(tostring(msg):find("insert takes no options", 1, true), tostring(msg))
  end)
end)
