-- Non-blocking calls over real HTTP: handles, poll, callbacks, cancel, wait,
-- retries and the rate limit without blocking the host.
local envoke = require "envoke"
local core = require "envoke.core"
local ratelimit = require "envoke.ratelimit"
local sandbox_server = require "sandbox_server"

describe("non-blocking calls", function()
  local srv, client
  setup(function() srv = sandbox_server.start() end)
  teardown(function() if srv then srv:stop() end end)
  before_each(function()
    srv:reset()
    client = srv:client{ retries = { max = 3, base_delay = 0.01 } }
  end)

  local function drain(c, limit_ms)
    local deadline = core.now() + (limit_ms or 10000)
    while c:pending() > 0 and core.now() < deadline do c:poll(50) end
  end

  it("returns a handle at once and runs the callback from poll", function()
    local calls = {}
    local h = client:contact{ email = "a@example.com" }:insert_async(function(c, err, handle)
      calls[#calls + 1] = { c, err, handle }
    end)
    assert.are.equal(1, client:pending())
    assert.is_false(h:done())
    assert.are.equal(0, #calls) -- never before poll
    drain(client)
    assert.are.equal(1, #calls)
    assert.are.equal("a@example.com", calls[1][1].email)
    assert.is_nil(calls[1][2])
    assert.are.equal(h, calls[1][3])
    assert.is_true(h:done())
    assert.are.equal(0, client:pending())
  end)

  it("never waits in poll(0), even with a slow answer in flight", function()
    srv:fault{ kind = "delay", delay_ms = 800, path = "/v1/settings" }
    local h = client:ping_async()
    local longest = 0
    local polls = 0
    while not h:done() do
      local t = core.now()
      client:poll(0)
      longest = math.max(longest, core.now() - t)
      polls = polls + 1
      core.sleep(5)
    end
    assert.is_true(polls > 20, "only " .. polls .. " polls while an 800 ms answer was pending")
    assert.is_true(longest < 200, "a poll(0) took " .. longest .. " ms")
    assert.is_table(h.result)
  end)

  it("keeps going when a callback raises, reporting the error", function()
    local events, got = {}, nil
    local c = srv:client{ logger = function(e) events[#events + 1] = e end }
    local bad = c:ping_async(function() error("boom in a callback") end)
    c:get_async(4242, function(_, err) got = err end)
    drain(c)
    assert.truthy(tostring(bad.callback_error):find("boom in a callback", 1, true))
    assert.are.equal("not_found", got.kind)
    local reported = false
    for _, e in ipairs(events) do
      if e.event == "callback_error" then reported = tostring(e.error):find("boom", 1, true) ~= nil end
    end
    assert.is_true(reported)
    assert(c:ping()) -- the client still works
  end)

  it("cancels a call: its callback never runs", function()
    srv:fault{ kind = "delay", delay_ms = 300, path = "/v1/settings" }
    local ran = false
    local h = client:ping_async(function() ran = true end)
    client:poll(0)
    assert.is_true(h:cancel())
    assert.is_false(h:cancel())
    assert.are.equal(0, client:pending())
    core.sleep(400)
    client:poll(0)
    assert.is_false(ran)
    local r, err = h:wait()
    assert.is_nil(r)
    assert.are.equal("cancelled", err.kind)
  end)

  it("waits on a handle, and gives up a wait after its timeout while the call goes on", function()
    local c = assert(client:contact{ email = "w@example.com" }:insert())
    local h = client:get_async(c.id)
    local got = assert(h:wait())
    assert.are.equal("w@example.com", got.email)
    srv:fault{ kind = "delay", delay_ms = 600, path = "/v1/settings" }
    local slow = client:ping_async()
    local r, err = slow:wait(50)
    assert.is_nil(r)
    assert.are.equal("timeout", err.kind)
    assert.is_table(assert(slow:wait()))
  end)

  it("retries in the background and reports the final outcome once", function()
    local c = assert(client:contact{ email = "rt@example.com" }:insert())
    srv:fault{ kind = "status", status = 503, retry_after = 0, method = "PATCH", count = 2 }
    local outcomes = {}
    local h = client:contact{ id = c.id, city = "Regina" }:save_async(nil, function(r, err)
      outcomes[#outcomes + 1] = { r, err }
    end)
    drain(client)
    assert.are.equal(1, #outcomes)
    assert.are.equal("Regina", outcomes[1][1].city)
    assert.are.equal(3, h.attempts)
  end)

  it("resolves calls that need no request through poll too", function()
    local ran = false
    local h = client:contact{ id = 5 }:save_async(nil, function(r) ran = r ~= nil end)
    assert.is_false(ran)
    client:poll(0)
    assert.is_true(ran)
    assert.is_true(h:done())
  end)

  it("never runs the callback of a resolved call another callback of the same poll cancelled", function()
    local ran, second = {}, nil
    client:contact{ id = 5 }:save_async(function()
      ran[#ran + 1] = "first"
      assert.is_true(second:cancel())
    end)
    second = client:contact{ id = 6 }:save_async(function() ran[#ran + 1] = "second" end)
    assert.are.equal(2, client:pending())
    assert.are.equal(1, client:poll(0))
    assert.are.same({ "first" }, ran)
    assert.are.equal(0, client:pending())
    assert.are.equal("cancelled", second.err.kind)
    client:poll(0)
    assert.are.same({ "first" }, ran)
    assert.are.equal(0, client:pending())
  end)

  it("keeps a cancelled resolved call out of the calls a close ends", function()
    local second, closed_cb = nil, 0
    client:contact{ id = 5 }:save_async(function()
      assert.is_true(second:cancel())
      client:close()
    end)
    second = client:contact{ id = 6 }:save_async(function() closed_cb = closed_cb + 1 end)
    client:contact{ id = 7 }:save_async(function() closed_cb = closed_cb + 1 end)
    client:poll(0)
    assert.are.equal(1, closed_cb) -- the third only: the cancelled one's callback never runs
    assert.are.equal(0, client:pending())
  end)

  it("runs many calls at once over the same pool", function()
    local n, done = 20, 0
    for i = 1, n do
      client:contact{ email = ("m%d@example.com"):format(i) }:insert_async(function(r)
        if r then done = done + 1 end
      end)
    end
    assert.are.equal(n, client:pending())
    drain(client)
    assert.are.equal(n, done)
    assert.are.equal(n, #srv:contacts())
  end)
end)

describe("rate limit", function()
  it("lets a second's worth through, then spaces requests out", function()
    local bucket = ratelimit.new(10, 0)
    for _ = 1, 10 do assert.are.equal(0, bucket:reserve(0)) end
    assert.are.equal(100, bucket:reserve(0))
    assert.are.equal(200, bucket:reserve(0))
    -- Time pays the debt back.
    assert.are.equal(0, select(1, ratelimit.new(10, 0):reserve(1000)))
    local b = ratelimit.new(2, 0)
    b:reserve(0) b:reserve(0)
    assert.are.equal(500, b:reserve(0))
    assert.are.equal(500, b:reserve(500))
  end)

  it("holds a client under its rate, blocking and async alike", function()
    local srv = sandbox_server.start()
    local ok, problem = pcall(function()
      local c = srv:client{ rate_limit = 20 }
      local started = core.now()
      for _ = 1, 30 do assert(c:ping()) end
      -- 20 pass at once, the other 10 at 20 per second: at least 450 ms.
      assert.is_true(core.now() - started >= 450, "30 requests at 20/s took " .. (core.now() - started) .. " ms")
      local a = srv:client{ rate_limit = 20 }
      started = core.now()
      for _ = 1, 30 do a:ping_async() end
      while a:pending() > 0 do a:poll(20) end
      assert.is_true(core.now() - started >= 450, "async: 30 requests at 20/s took " .. (core.now() - started) .. " ms")
    end)
    srv:stop()
    assert(ok, problem)
  end)

  it("refuses a bad rate", function()
    assert.has_error(function() envoke.new{ rate_limit = 0 } end)
    assert.has_error(function() envoke.new{ rate_limit = "10" } end)
  end)
end)
