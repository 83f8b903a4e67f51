-- Retries, against the sandbox's injected faults over real HTTP: what is
-- retried, what is not, how long the client waits, and what the caller sees.
local envoke = require "envoke"
local retry = require "envoke.retry"
local errors = require "envoke.errors"
local sandbox_server = require "sandbox_server"

describe("retries", function()
  local srv
  setup(function() srv = sandbox_server.start() end)
  teardown(function() if srv then srv:stop() end end)
  before_each(function() srv:reset() end)

  -- A client that records every logger event; waits are kept short.
  local function client(opts)
    local events = {}
    local o = { base_url = srv.url, api_id = srv.api_id, api_key = srv.api_key,
                retries = { max = 3, base_delay = 0.01, max_delay = 0.05 },
                logger = function(e) events[#events + 1] = e end }
    for k, v in pairs(opts or {}) do o[k] = v end
    return envoke.new(o), events
  end

  local function count(events, kind)
    local n = 0
    for _, e in ipairs(events) do if e.event == kind then n = n + 1 end end
    return n
  end

  local function existing()
    return assert(srv:client():contact{ email = "r@example.com" }:insert())
  end

  for _, status in ipairs{ 429, 502, 503, 504 } do
    it("retries an update answered " .. status .. " and succeeds", function()
      local id = existing().id
      srv:fault{ kind = "status", status = status, retry_after = 0, method = "PATCH", count = 2 }
      local c, events = client()
      local saved, err = c:contact{ id = id, city = "Halifax" }:save()
      assert.is_nil(err)
      assert.are.equal("Halifax", saved.city)
      assert.are.equal(3, count(events, "request"))
      assert.are.equal(2, count(events, "retry"))
    end)
  end

  it("gives up after the last retry with the last error, counting attempts", function()
    local id = existing().id
    srv:fault{ kind = "status", status = 503, retry_after = 0, method = "PATCH", count = 10 }
    local c = client{ retries = { max = 2, base_delay = 0.01 } }
    local saved, err = c:contact{ id = id, city = "Halifax" }:save()
    assert.is_nil(saved)
    assert.are.equal("server", err.kind)
    assert.are.equal(503, err.status)
    assert.is_true(err.retryable)
    assert.are.equal(3, err.attempts)
  end)

  it("honours Retry-After (seconds) as the least wait", function()
    local id = existing().id
    srv:fault{ kind = "status", status = 429, retry_after = 1, method = "PATCH", count = 1 }
    local c, events = client()
    assert(c:contact{ id = id, city = "Halifax" }:save())
    for _, e in ipairs(events) do
      if e.event == "retry" then
        assert.is_true(e.wait_ms >= 1000, "waited only " .. e.wait_ms .. " ms")
        assert.are.equal("rate_limited", e.error.kind)
        assert.are.equal(1, e.error.retry_after)
      end
    end
    assert.are.equal(1, count(events, "retry"))
  end)

  for _, status in ipairs{ 500, 400, 401, 404 } do
    it("never retries a " .. status, function()
      local id = existing().id
      srv:fault{ kind = "status", status = status, method = "PATCH", count = 5 }
      local c, events = client()
      local saved, err = c:contact{ id = id, city = "Halifax" }:save()
      assert.is_nil(saved)
      assert.are.equal(status, err.status)
      assert.is_false(err.retryable)
      assert.are.equal(1, count(events, "request"))
    end)
  end

  it("retries a timeout of an idempotent update", function()
    local id = existing().id
    srv:fault{ kind = "delay", delay_ms = 1500, method = "PATCH", count = 1 }
    local c, events = client{ timeout = 0.3 }
    local saved, err = c:contact{ id = id, city = "Halifax" }:save()
    assert.is_nil(err)
    assert.truthy(saved)
    assert.are.equal(1, count(events, "retry"))
    for _, e in ipairs(events) do
      if e.event == "retry" then assert.are.equal("timeout", e.error.kind) end
    end
  end)

  for _, kind in ipairs{ "drop", "truncate" } do
    it("retries an update whose connection was cut (" .. kind .. ")", function()
      local id = existing().id
      srv:fault{ kind = kind, method = "PATCH", count = 1 }
      local c, events = client()
      local saved, err = c:contact{ id = id, city = "Halifax" }:save()
      assert.is_nil(err)
      assert.are.equal("Halifax", saved.city)
      assert.are.equal(1, count(events, "retry"))
      assert.are.equal("network", events[2].error.kind)
    end)
  end

  it("never retries an insert the server may have received (a retry could duplicate it)", function()
    srv:fault{ kind = "drop_after", method = "POST", count = 1 }
    local c, events = client()
    local saved, err = c:contact{ email = "once@example.com" }:insert()
    assert.is_nil(saved)
    assert.are.equal("network", err.kind)
    assert.are.equal(1, count(events, "request"))
    -- The server did create it: a blind retry would have answered "duplicate".
    assert(c:find{ email = "once@example.com" })
  end)

  it("retries an insert that provably never reached the server (connection refused)", function()
    local c, events = client{ base_url = "http://127.0.0.1:9", retries = { max = 2, base_delay = 0.01 } }
    local saved, err = c:contact{ email = "x@example.com" }:insert()
    assert.is_nil(saved)
    assert.are.equal("network", err.kind)
    assert.is_false(err.sent)
    assert.are.equal(3, count(events, "request"))
    assert.are.equal(3, err.attempts)
  end)

  it("answers a malformed 2xx body with kind protocol, without retrying", function()
    local id = existing().id
    srv:fault{ kind = "malformed", method = "PATCH", count = 1 }
    local c, events = client()
    local saved, err = c:contact{ id = id, city = "Halifax" }:save()
    assert.is_nil(saved)
    assert.are.equal("protocol", err.kind)
    assert.are.equal(1, count(events, "request"))
  end)

  it("turns off with retries = 0", function()
    local id = existing().id
    srv:fault{ kind = "status", status = 503, retry_after = 0, method = "PATCH", count = 1 }
    local c, events = client{ retries = 0 }
    local saved, err = c:contact{ id = id, city = "Halifax" }:save()
    assert.is_nil(saved)
    assert.are.equal(503, err.status)
    assert.are.equal(1, count(events, "request"))
  end)

  it("refuses a body over max_body as too_large, not retried", function()
    local id = existing().id
    local c, events = client{ max_body = 64 }
    local saved, err = c:contact{ id = id, city = "Halifax" }:save()
    assert.is_nil(saved)
    assert.are.equal("too_large", err.kind)
    assert.are.equal(1, count(events, "request"))
  end)
end)

describe("retry policy", function()
  local err503 = { retryable = true }

  it("waits with full jitter under an exponential ceiling", function()
    local p = retry.policy{ max = 10, base_delay = 0.1, max_delay = 1, max_elapsed = 1000 }
    for attempt = 1, 8 do
      local ceiling = math.min(1, 0.1 * 2 ^ (attempt - 1))
      for _ = 1, 20 do
        local w = retry.delay(p, attempt, err503, true, 0)
        assert.is_true(w >= 0 and w <= ceiling, ("attempt %d waited %s > %s"):format(attempt, w, ceiling))
      end
    end
  end)

  it("stops at max attempts, at max_elapsed, and on errors that are not retryable", function()
    local p = retry.policy{ max = 2, max_elapsed = 5 }
    assert.is_number(retry.delay(p, 2, err503, true, 0))
    assert.is_nil(retry.delay(p, 3, err503, true, 0))
    assert.is_nil(retry.delay(p, 1, { retryable = true, retry_after = 10 }, true, 0))
    assert.is_nil(retry.delay(p, 1, { retryable = false }, true, 0))
  end)

  it("caps Retry-After", function()
    local p = retry.policy{ max_retry_after = 2, max_elapsed = 100 }
    assert.are.equal(2, retry.delay(p, 1, { retryable = true, retry_after = 3600 }, true, 0))
  end)

  it("reads Retry-After as seconds or an HTTP date", function()
    assert.are.equal(120, errors.retry_after("120"))
    local epoch = require("envoke.schema").time.epoch(2015, 10, 21, 7, 28, 0)
    assert.are.equal(30, errors.retry_after("Wed, 21 Oct 2015 07:28:30 GMT", epoch))
    assert.are.equal(0, errors.retry_after("Wed, 21 Oct 2015 07:27:00 GMT", epoch))
    assert.is_nil(errors.retry_after("soon"))
  end)

  it("validates the retries option", function()
    assert.is_nil(retry.policy(0))
    assert.has_error(function() envoke.new{ retries = -1 } end)
    assert.has_error(function() envoke.new{ retries = { tries = 3 } } end, "envoke.new: unknown retries option 'tries'")
    assert.has_error(function() envoke.new{ retries = "3" } end)
  end)
end)
