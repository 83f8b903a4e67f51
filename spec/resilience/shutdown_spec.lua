-- Closing a client with calls in flight, draining first, and a callback that
-- closes the client from inside poll: every call ends, every callback runs once.
local sandbox_server = require "sandbox_server"

describe("shutdown", function()
  local srv
  setup(function() srv = sandbox_server.start() end)
  teardown(function() if srv then srv:stop() end end)
  before_each(function() srv:reset() end)

  -- n inserts in flight; their outcomes land in `seen` by index.
  local function start_inserts(client, n, seen)
    local handles = {}
    for i = 1, n do
      handles[i] = client:contact{ email = ("s%d@example.com"):format(i) }:insert_async(function(c, err)
        assert.is_nil(seen[i], "callback ran twice")
        seen[i] = { c = c, err = err }
      end)
    end
    return handles
  end

  it("close ends every call in flight with a cancelled error and runs its callback", function()
    srv:fault{ kind = "delay", delay_ms = 2000, path = "/v1/contacts", count = 100 }
    local client = srv:client()
    local seen = {}
    local handles = start_inserts(client, 5, seen)
    client:poll(50) -- the requests are on the wire
    client:close()
    assert.are.equal(0, client:pending())
    for i = 1, 5 do
      assert.is_table(seen[i], "callback " .. i .. " did not run")
      assert.are.equal("cancelled", seen[i].err.kind)
      assert.is_true(seen[i].err.sent, "a request on the wire may have reached the server")
      assert.is_true(handles[i]:done())
      local r, err = handles[i]:wait()
      assert.is_nil(r)
      assert.are.equal("cancelled", err.kind)
      assert.is_false(handles[i]:cancel())
    end
    assert.are.equal(0, client:poll(0))
    client:close() -- idempotent
  end)

  it("a call waiting for its retry is cancelled as not sent when no attempt was", function()
    local client = srv:client{ rate_limit = 1 / 3600 } -- the second call waits an hour
    local seen = {}
    client:ping_async()
    client:ping_async(function(r, err) seen[1] = { r = r, err = err } end)
    client:close()
    assert.are.equal("cancelled", seen[1].err.kind)
    assert.is_false(seen[1].err.sent)
  end)

  it("later calls raise 'client is closed' at the caller's line", function()
    local client = srv:client()
    local c = client:contact{ email = "x@example.com" }
    client:close()
    local line = debug.getinfo(1, "l").currentline
    for offset, call in ipairs{
      function() client:ping() end,
      function() client:ping_async() end,
      function() client:contact{ email = "y@example.com" } end,
      function() c:insert() end,
      function() c:insert_async() end,
      function() client:save_all{ { email = "z@example.com" } } end,
    } do
      local ok, msg = pcall(call)
      assert.is_false(ok)
      assert.truthy(tostring(msg):find("client is closed", 1, true), tostring(msg))
      assert.truthy(tostring(msg):find("shutdown_spec.lua:" .. (line + 1 + offset) .. ":", 1, true),
        tostring(msg))
    end
    assert.are.equal(0, client:pending())
    assert.are.equal(0, client:poll(10))
    assert.is_true(client:drain(10))
  end)

  it("drain sends and finishes the calls of the last frame before close", function()
    local client = srv:client()
    local seen = {}
    start_inserts(client, 20, seen)
    client:close{ drain_ms = 10000 }
    for i = 1, 20 do
      assert.is_nil(seen[i].err, tostring(seen[i].err))
    end
    assert.are.equal(20, #srv:contacts())
  end)

  it("drain returns false when time runs out, and close then cancels the rest", function()
    srv:fault{ kind = "delay", delay_ms = 3000, path = "/v1/contacts", count = 100 }
    local client = srv:client()
    local seen = {}
    start_inserts(client, 3, seen)
    assert.is_false(client:drain(100))
    assert.are.equal(3, client:pending())
    client:close()
    for i = 1, 3 do assert.are.equal("cancelled", seen[i].err.kind) end
  end)

  it("a callback that closes the client ends the others and leaves poll cleanly", function()
    srv:fault{ kind = "delay", delay_ms = 2000, path = "/v1/contacts", count = 100 }
    local client = srv:client()
    local seen = {}
    start_inserts(client, 4, seen)
    local closed_from_callback
    client:ping_async(function()
      client:close()
      closed_from_callback = true
    end)
    local deadline = os.time() + 10
    while not closed_from_callback and os.time() < deadline do client:poll(50) end
    assert.is_true(closed_from_callback)
    assert.are.equal(0, client:pending())
    for i = 1, 4 do assert.are.equal("cancelled", seen[i].err.kind) end
    assert.are.equal(0, client:poll(0))
  end)

  it("a bulk run whose callback closes the client accounts for every item", function()
    local client = srv:client()
    local items = {}
    for i = 1, 30 do items[i] = { email = ("b%d@example.com"):format(i) } end
    local results, summary = client:insert_all(items, { concurrency = 4, on_result = function(i)
      if i == 5 then client:close() end
    end })
    assert.are.equal(30, summary.total)
    assert.are.equal(30, summary.succeeded + summary.failed)
    for i = 1, 30 do
      assert.is_table(results[i])
      if not results[i].ok then assert.are.equal("cancelled", results[i].err.kind) end
    end
  end)
end)
