-- Inside nginx nothing may block the worker: a call waiting on the network,
-- a retry's backoff and the rate limit all yield, so the single worker of
-- the rig keeps answering other requests. Non-blocking calls run on light
-- threads, and poll maps onto them.
local socket = require "socket"
local openresty_rig = require "openresty_rig"

describe("inside nginx, without blocking the worker", function()
  local rig, srv
  setup(function()
    rig = openresty_rig.start()
    srv = rig.sandbox
  end)
  teardown(function() if rig then rig:stop() end end)
  before_each(function() srv:reset() end)

  -- Sends `slow` (which must take about a second), then, once it is under
  -- way, a quick check to the same one-worker nginx. Returns both outcomes
  -- and how long the quick one took, as this process saw it.
  local function race(slow)
    local pending = rig:send(slow)
    socket.sleep(0.15) -- the slow check is waiting by now
    local t0 = socket.gettime()
    local quick = rig:run[[
      local c = client()
      assert(c:contact{ email = "quick@example.com" }:insert())
      return { pid = ngx.worker.pid(), at = now() }
    ]]
    local quick_ms = (socket.gettime() - t0) * 1000
    return pending:wait(), quick, quick_ms
  end

  it("answers other requests at once while one waits a second on a sandbox answer", function()
    srv:fault{ kind = "delay", delay_ms = 1000, path = "/v1/settings" }
    local slow, quick, quick_ms = race[[
      local t0 = now()
      assert(client():ping())
      return { pid = ngx.worker.pid(), ms = now() - t0, at = now() }
    ]]
    assert.are.equal(slow.pid, quick.pid) -- one worker served both
    assert.is_true(slow.ms >= 950, "the slow call took only " .. slow.ms .. " ms")
    assert.is_true(quick_ms < 300, "the other request waited " .. quick_ms .. " ms")
    assert.is_true(quick.at < slow.at, "the quick request finished after the slow one")
  end)

  it("stalls that worker with the blocking curl transport (the control case, so the check above can fail)", function()
    srv:fault{ kind = "delay", delay_ms = 1000, path = "/v1/settings" }
    local slow, _, quick_ms = race[[
      local t0 = now()
      assert(client{ transport = "curl" }:ping())
      return { ms = now() - t0 }
    ]]
    assert.is_true(slow.ms >= 950)
    assert.is_true(quick_ms >= 600, "the worker was not stalled: " .. quick_ms .. " ms")
  end)

  it("yields during a retry's backoff (Retry-After) and under the rate limit", function()
    srv:fault{ kind = "status", status = 503, retry_after = 1, path = "/v1/settings", count = 1 }
    local slow, _, quick_ms = race[[
      local t0 = now()
      local c = client{ rate_limit = 4 }
      assert(c:ping()) -- 503, Retry-After: 1, then 200
      local retried = now() - t0
      t0 = now()
      for _ = 1, 6 do assert(c:ping()) end -- 4 per second: the bucket holds 4
      return { retried = retried, limited = now() - t0 }
    ]]
    assert.is_true(slow.retried >= 950, "retried after " .. slow.retried .. " ms")
    assert.is_true(slow.limited >= 300, "rate limited for only " .. slow.limited .. " ms")
    assert.is_true(quick_ms < 300, "the other request waited " .. quick_ms .. " ms")
  end)

  it("maps the async API onto light threads: poll(0) never waits, poll(ms) yields until one is done", function()
    srv:fault{ kind = "delay", delay_ms = 400, path = "/v1/settings" }
    rig:run[[
      local c = client()
      local order = {}
      local slow = c:ping_async(function(data, err) order[#order + 1] = "slow" end)
      local fast = c:contact{ email = "a@example.com" }:insert_async(function(contact, err)
        order[#order + 1] = contact and contact.email or tostring(err)
      end)
      assert.are.equal(2, c:pending())
      local t0 = now()
      assert.are.equal(0, c:poll(0))
      assert.is_true(now() - t0 < 20)
      local finished = 0
      while finished == 0 do finished = c:poll(1000) end
      assert.is_true(now() - t0 < 300, "poll waited for the slow call")
      assert.are.same({ "a@example.com" }, order)
      assert.is_table(slow:wait(2000))
      assert.is_true(now() - t0 >= 380)
      assert.are.same({ "a@example.com", "slow" }, order)
      assert.are.equal(0, c:pending())
      assert.are.equal(0, c.transport:pending())
    ]]
  end)

  it("cancels a call by killing its light thread; its callback never runs", function()
    srv:fault{ kind = "delay", delay_ms = 500, path = "/v1/settings" }
    rig:run[[
      local c = client()
      local ran = false
      local h = c:ping_async(function() ran = true end)
      c:poll(50)
      assert.is_false(h:done())
      assert.is_true(h:cancel())
      assert.is_false(h:cancel())
      assert.are.equal("cancelled", select(2, h:wait()).kind)
      assert.are.equal(0, c:pending())
      assert.are.equal(0, c.transport:pending())
      ngx.sleep(0.6)
      c:poll(0)
      assert.is_false(ran)
      assert(c:ping()) -- the client still works
    ]]
  end)

  it("keeps going when a callback raises", function()
    rig:run[[
      local events = {}
      local c = client{ logger = function(e) events[#events + 1] = e end }
      local bad = c:ping_async(function() error("boom in a callback") end)
      local got
      c:get_async(4242, function(_, err) got = err end)
      while c:pending() > 0 do c:poll(100) end
      assert.truthy(tostring(bad.callback_error):find("boom in a callback", 1, true))
      assert.are.equal("not_found", got.kind)
      assert(c:ping())
    ]]
  end)

  it("runs save_all concurrently on light threads", function()
    local data = rig:run[[
      local c = client()
      local list = {}
      for i = 1, 8 do list[i] = assert(c:contact{ email = ("bulk%d@example.com"):format(i) }:insert()) end
      control("POST", "/_sandbox/faults", { kind = "delay", delay_ms = 300, method = "PATCH", count = 8 })
      for _, contact in ipairs(list) do contact:set("city", "Regina") end
      local t0 = now()
      local results, summary = c:save_all(list, { concurrency = 8 })
      local elapsed = now() - t0
      assert.are.equal(8, summary.succeeded)
      for i, r in ipairs(results) do assert.are.equal("Regina", r.contact.city, i) end
      return elapsed
    ]]
    assert.is_true(data >= 280 and data < 1200, "8 saves delayed 300 ms each took " .. data .. " ms")
  end)

  it("ends a call whose light thread died with its request (ngx.exit): kind network, retried when allowed", function()
    srv:fault{ kind = "delay", delay_ms = 2000, path = "/v1/settings", count = 2 }
    local pending = rig:send[[
      local shared = { once = client{ retries = 0 }, retrying = client() }
      package.loaded.envoke_spec_shared = shared
      shared.failed = shared.once:ping_async()
      shared.retried = shared.retrying:ping_async()
      ngx.print('{"ok":true,"data":"exited"}')
      return ngx.exit(200) -- aborts the request's light threads
    ]]
    assert.are.equal("exited", pending:wait())
    rig:run[[
      local shared = package.loaded.envoke_spec_shared
      collectgarbage() -- the ended request's ngx.ctx goes: that is how its calls are found
      collectgarbage()
      shared.once:poll(0)
      local h = shared.failed
      assert.is_true(h:done())
      assert.are.equal("network", h.err.kind)
      assert.truthy(h.err.message:find("aborted", 1, true))
      assert.are.equal(0, shared.once:pending())
      -- An idempotent call is sent again, from this request.
      local settings = shared.retried:wait(5000)
      assert.is_table(settings)
      assert.are.equal(2, shared.retried.attempts)
      assert(shared.once:ping())
    ]]
  end)
end)
