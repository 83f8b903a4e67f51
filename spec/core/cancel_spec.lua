-- pool:cancel(id) -> true, sent | false: `sent` says whether some of the
-- request may have reached the server (libcurl had a connection and began to
-- send it), which the Lua layer needs to tell a caller whether a write may
-- have happened.

local H = require "core_helper"
local echo_server = require "echo_server"

-- Drives the pool until fn() is true or budget_ms passed.
local function drive_until(pool, fn, budget_ms)
  local deadline = H.core.now() + (budget_ms or 5000)
  while not fn() and H.core.now() < deadline do
    pool:perform(0)
    H.core.sleep(5)
  end
  return fn()
end

describe("pool:cancel", function()
  local srv

  lazy_setup(function() srv = echo_server.start() end)
  lazy_teardown(function() if srv then srv:stop() end end)

  it("answers false, alone, for an id it does not hold", function()
    local pool = H.pool(srv.url)
    assert.are.equal(1, select("#", pool:cancel(12345)))
    assert.is_false(pool:cancel(12345))
    pool:close()
  end)

  it("a request still connecting: true, not sent", function()
    local hole = H.blackhole()
    local pool = H.pool("http://127.0.0.1:" .. hole.port, { connect_timeout_ms = 5000 })
    local id = pool:submit("POST", "/never-accepted", '{"x":1}')
    for _ = 1, 5 do pool:perform(10) end
    local pending, sent = pool:cancel(id)
    assert.is_true(pending)
    assert.is_false(sent)
    assert.is_false(pool:cancel(id))
    assert.are.equal(0, pool:pending())
    pool:close()
    hole.close()
  end)

  it("a request the server is answering: true, sent", function()
    local pool = H.pool(srv.url)
    local id = pool:submit("POST", "/delay/3000", '{"x":1}')
    drive_until(pool, function() return false end, 300) -- sent; the delay keeps it open
    local pending, sent = pool:cancel(id)
    assert.is_true(pending)
    assert.is_true(sent)
    assert.are.equal(0, pool:pending())
    pool:close()
  end)

  it("a request over HTTP/2 the server is answering: true, sent", function()
    local pool = H.pool(srv.tls_url, { ca_file = srv.ca_file })
    local id = pool:submit("PATCH", "/delay/3000", '{"x":1}')
    drive_until(pool, function() return false end, 500)
    local pending, sent = pool:cancel(id)
    assert.is_true(pending)
    assert.is_true(sent)
    pool:close()
  end)

  it("a finished request not yet collected: true, sent; then false", function()
    local pool = H.pool(srv.url)
    local id = pool:submit("GET", "/anything")
    assert.is_true(drive_until(pool, function() return pool:perform(0) == 0 end))
    local pending, sent = pool:cancel(id)
    assert.is_true(pending)
    assert.is_true(sent)
    assert.is_false(pool:cancel(id))
    assert.is_nil(pool:finished())
    pool:close()
  end)

  it("a request that failed before any connection: true, not sent", function()
    local pool = H.pool("http://127.0.0.1:" .. H.closed_port())
    local id = pool:submit("POST", "/refused", '{"x":1}')
    assert.is_true(drive_until(pool, function() return pool:perform(0) == 0 end))
    local pending, sent = pool:cancel(id)
    assert.is_true(pending)
    assert.is_false(sent)
    pool:close()
  end)

  it("a collected request: false", function()
    local pool = H.pool(srv.url)
    local id = pool:submit("GET", "/anything")
    local results = H.drain(pool, 1)
    assert.are.equal(200, results[id].status)
    assert.is_false(pool:cancel(id))
    pool:close()
  end)

  it("close() with requests in flight is safe and idempotent", function()
    local pool = H.pool(srv.url)
    for i = 1, 4 do pool:submit("POST", "/delay/2000?i=" .. i, '{"x":1}') end
    drive_until(pool, function() return false end, 200)
    pool:close()
    pool:close()
    assert.are.equal("envoke.core.pool (closed)", tostring(pool))
  end)
end)
