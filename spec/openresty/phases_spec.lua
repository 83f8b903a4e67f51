-- Phases without cosockets (init, init_worker, set, header and body filters,
-- log): every call returns a clear error at once, never blocks the worker
-- and never raises; the error says so and points at ngx.timer.at, and a
-- timer (the way out it suggests) works. The rig's nginx probes each phase
-- (openresty_runner.probe): a ping, then a ping_async waited on.
local cjson = require "cjson"
local openresty_rig = require "openresty_rig"

describe("phases without cosockets", function()
  local rig, probes
  setup(function()
    rig = openresty_rig.start()
    -- The log phase runs after the answer is sent: the second visit shows the first one's.
    assert.are.equal(200, (rig:get("/phases")))
    local status, body = rig:get("/phases")
    assert.are.equal(200, status)
    probes = cjson.decode(body)
  end)
  teardown(function() if rig then rig:stop() end end)

  for _, phase in ipairs{ "init", "init_worker", "set", "header_filter", "body_filter", "log" } do
    it("'" .. phase .. "': a clear error at once, suggesting ngx.timer.at, without retries", function()
      local p = probes[phase]
      assert.is_table(p, "no probe ran in " .. phase)
      assert.is_nil(p.raised)
      assert.are.equal(phase, p.phase)
      assert.is_false(p.ok)
      assert.are.equal("unavailable", p.kind)
      assert.is_false(p.sent)
      assert.is_false(p.retryable)
      assert.truthy(p.message:find("'" .. phase .. "' phase", 1, true), p.message)
      assert.truthy(p.message:find("ngx.timer.at", 1, true), p.message)
      assert.are.equal(1, p.requests) -- retrying could not help there
      assert.is_true(p.elapsed_ms < 50, phase .. " took " .. p.elapsed_ms .. " ms")
      assert.is_false(p.async_ok)
      assert.are.equal("unavailable", p.async_kind)
      assert.are.equal(p.message, p.async_message)
    end)
  end

  it("'timer': works, as the error suggests", function()
    local p = probes.timer
    assert.is_nil(p.raised)
    assert.are.equal("timer", p.phase)
    assert.is_true(p.ok, tostring(p.message))
    assert.is_true(p.async_ok)
    assert.are.equal(1, p.requests)
  end)

  it("leaves nothing in the sandbox's log from the phases that cannot send", function()
    local sent = 0
    for _, r in ipairs(rig.sandbox:log()) do
      if r.path == "/v1/settings" then sent = sent + 1 end
    end
    assert.are.equal(2, sent) -- the timer's two pings, and only those
  end)
end)
