-- The non-blocking form: submit / perform / finished / cancel / pending, and
-- a blocking request while async ones are in flight. Concurrency is proven
-- by the server's own clock (each echo carries when it started and finished),
-- not by tight client-side timing.

local H = require "core_helper"
local echo_server = require "echo_server"
local core, cjson = H.core, H.cjson

-- Start and finish times (server clock, seconds) of decoded echoes.
local function overlapping(echoes)
  local latest_start, earliest_finish = -math.huge, math.huge
  for _, e in ipairs(echoes) do
    latest_start = math.max(latest_start, e.started)
    earliest_finish = math.min(earliest_finish, e.finished)
  end
  return latest_start < earliest_finish
end

describe("non-blocking requests", function()
  local srv

  lazy_setup(function() srv = echo_server.start() end)
  lazy_teardown(function() if srv then srv:stop() end end)

  it("submit returns unique positive integer ids", function()
    local pool = H.pool(srv.url)
    local seen = {}
    for i = 1, 20 do
      local id = pool:submit("GET", "/ids?i=" .. i)
      assert.is_number(id)
      assert.is_true(id > 0 and id == math.floor(id), "id " .. tostring(id))
      assert.is_nil(seen[id], "id " .. id .. " returned twice")
      seen[id] = true
    end
    local results, order = H.drain(pool, 20)
    assert.are.equal(20, #order)
    for id in pairs(seen) do assert.is_table(results[id]) end
    -- Ids stay unique after earlier ones were collected.
    for _ = 1, 5 do
      local id = pool:submit("GET", "/ids-again")
      assert.is_nil(seen[id], "id " .. id .. " reused")
      seen[id] = true
    end
    pool:close()
  end)

  it("runs transfers concurrently: three /delay/400 overlap on the server", function()
    local pool = H.pool(srv.url)
    local ids = {}
    for i = 1, 3 do ids[i] = pool:submit("GET", "/delay/400?n=" .. i) end
    local elapsed, results, order = H.timed(function() return H.drain(pool, 3, 20000) end)
    assert.are.equal(3, #order)
    local echoes, connections = {}, {}
    for i, id in ipairs(ids) do
      local r = results[id]
      assert.are.equal(200, r.status)
      local e = cjson.decode(r.body)
      assert.are.equal(tostring(i), e.args.n, "result of id " .. id .. " belongs to another request")
      echoes[i] = e
      connections[e.connection] = true
    end
    assert.is_true(overlapping(echoes), "the three requests did not overlap on the server")
    local n = 0
    for _ in pairs(connections) do n = n + 1 end
    assert.are.equal(3, n, "expected three parallel connections")
    -- Generous: three sequential delays would take 1200 ms.
    assert.is_true(elapsed < 1150, "three 400 ms requests took " .. elapsed .. " ms")
  end)

  it("multiplexes concurrent transfers over HTTP/2", function()
    local pool = H.pool(srv.tls_url, { ca_file = srv.ca_file })
    assert.are.equal(200, (pool:request("GET", "/warm")))   -- the connection exists and speaks h2
    local ids = {}
    for i = 1, 4 do ids[i] = pool:submit("GET", "/delay/300?n=" .. i) end
    local results, order = H.drain(pool, 4, 20000)
    assert.are.equal(4, #order)
    local echoes = {}
    for i, id in ipairs(ids) do
      echoes[i] = cjson.decode(results[id].body)
      assert.are.equal("HTTP/2.0", echoes[i].protocol)
    end
    assert.is_true(overlapping(echoes), "HTTP/2 transfers did not overlap")
    pool:close()
  end)

  it("max_connections = 1 serialises HTTP/1.1 transfers on one connection", function()
    local pool = H.pool(srv.url, { max_connections = 1 })
    local ids = {}
    for i = 1, 3 do ids[i] = pool:submit("GET", "/delay/150?n=" .. i) end
    local results, order = H.drain(pool, 3, 20000)
    assert.are.equal(3, #order)
    local echoes = {}
    for i, id in ipairs(ids) do echoes[i] = cjson.decode(results[id].body) end
    table.sort(echoes, function(a, b) return a.started < b.started end)
    for i = 2, 3 do
      assert.are.equal(echoes[1].connection, echoes[i].connection)
      assert.is_true(echoes[i].started >= echoes[i - 1].finished - 0.002,
        "transfers overlapped despite max_connections = 1")
    end
    pool:close()
  end)

  it("perform returns how many transfers are in flight", function()
    local pool = H.pool(srv.url)
    for i = 1, 3 do pool:submit("GET", "/delay/300?n=" .. i) end
    local running = pool:perform(0)
    assert.are.equal(3, running)
    local results, order = H.drain(pool, 3)
    assert.are.equal(3, #order)
    assert.is_table(results)
    assert.are.equal(0, pool:perform(0))
    pool:close()
  end)

  it("perform(0) does not wait, perform(ms) waits at most about ms", function()
    local pool = H.pool(srv.url)
    pool:submit("GET", "/delay/1500")
    pool:perform(0)
    local elapsed = H.timed(function() return pool:perform(0) end)
    assert.is_true(elapsed < 200, "perform(0) took " .. elapsed .. " ms")
    -- Let the connection settle so perform has nothing to wake it early.
    for _ = 1, 10 do pool:perform(20) end
    elapsed = H.timed(function() return pool:perform(300) end)
    assert.is_true(elapsed < 1000, "perform(300) took " .. elapsed .. " ms")
    assert.is_nil(pool:finished())
    assert.are.equal(1, pool:pending())
    pool:close()
  end)

  it("perform with nothing submitted returns 0, waiting no longer than asked", function()
    local pool = H.pool(srv.url)
    local elapsed, running = H.timed(function() return pool:perform(200) end)
    assert.are.equal(0, running)
    assert.is_true(elapsed < 1000, "perform(200) on an idle pool took " .. elapsed .. " ms")
    assert.are.equal(0, pool:perform(0))
    pool:close()
  end)

  it("finished returns nil until something finished, then each result once", function()
    local pool = H.pool(srv.url)
    local id = pool:submit("POST", "/one?x=1", '{"k":"v"}', { ["X-Tag"] = "t1" })
    assert.is_nil(pool:finished())
    local results, order = H.drain(pool, 1)
    assert.are.same({ id }, order)
    local r = results[id]
    assert.are.equal(200, r.status)
    assert.are.equal("application/json", r.headers["content-type"])
    local e = cjson.decode(r.body)
    assert.are.equal("POST", e.method)
    assert.are.equal("/one?x=1", e.uri)
    assert.are.equal('{"k":"v"}', e.body)
    assert.are.equal("t1", e.headers["x-tag"])
    assert.is_nil(pool:finished())
    pool:close()
  end)

  it("reports failures as id, nil, err", function()
    local pool = H.pool("http://127.0.0.1:" .. H.closed_port())
    local id = pool:submit("GET", "/refused")
    local results = H.drain(pool, 1)
    local err = assert(results[id]).err
    H.check_err(err)
    assert.are.equal("network", err.kind)
    assert.is_false(err.sent)
    pool:close()

    pool = H.pool(srv.url, { timeout_ms = 200 })
    local slow = pool:submit("GET", "/delay/3000")
    results = H.drain(pool, 1)
    assert.are.equal("timeout", H.check_err(results[slow].err).kind)
    pool:close()

    pool = H.pool(srv.url, { max_body = 10 })
    local big = pool:submit("GET", "/bytes/11")
    local fine = pool:submit("GET", "/bytes/10")
    results = H.drain(pool, 2)
    assert.are.equal("too_large", H.check_err(results[big].err).kind)
    assert.are.equal(200, results[fine].status)
    pool:close()
  end)

  it("pending counts submitted requests until they are collected", function()
    local pool = H.pool(srv.url)
    assert.are.equal(0, pool:pending())
    for i = 1, 3 do pool:submit("GET", "/p?i=" .. i) end
    assert.are.equal(3, pool:pending())
    -- Let all three finish without collecting them.
    local deadline = core.now() + 10000
    while pool:perform(50) > 0 and core.now() < deadline do end
    assert.are.equal(3, pool:pending())
    assert.is_truthy(pool:finished())
    assert.are.equal(2, pool:pending())
    H.drain(pool, 2)
    assert.are.equal(0, pool:pending())
    pool:close()
  end)

  it("cancel drops a request in flight, which is never reported", function()
    local pool = H.pool(srv.url)
    local a = pool:submit("GET", "/delay/300?which=a")
    local b = pool:submit("GET", "/delay/300?which=b")
    pool:perform(0)
    assert.is_true(pool:cancel(a))
    assert.are.equal(1, pool:pending())
    local results, order = H.drain(pool, 2, 3000)
    assert.are.same({ b }, order)
    assert.is_nil(results[a])
    assert.are.equal("b", cjson.decode(results[b].body).args.which)
    assert.is_false(pool:cancel(a), "cancelling twice")
    assert.is_false(pool:cancel(b), "cancelling a collected request")
    assert.is_false(pool:cancel(987654321), "cancelling an unknown id")
    assert.are.equal(0, pool:pending())
    pool:close()
  end)

  it("cancel drops a finished but uncollected request", function()
    local pool = H.pool(srv.url)
    local id = pool:submit("GET", "/done")
    local deadline = core.now() + 10000
    while pool:perform(50) > 0 and core.now() < deadline do end
    assert.are.equal(1, pool:pending())
    assert.is_true(pool:cancel(id))
    assert.are.equal(0, pool:pending())
    assert.is_nil(pool:finished())
    pool:close()
  end)

  it("cancel before any perform, and the pool keeps working", function()
    local pool = H.pool(srv.url)
    local ids = {}
    for i = 1, 5 do ids[i] = pool:submit("GET", "/c?i=" .. i) end
    for i = 1, 5, 2 do assert.is_true(pool:cancel(ids[i])) end
    local results, order = H.drain(pool, 2)
    assert.are.equal(2, #order)
    assert.is_table(results[ids[2]])
    assert.is_table(results[ids[4]])
    assert.are.equal(200, (pool:request("GET", "/after-cancel")))
    pool:close()
  end)

  it("a blocking request drives async transfers, whose results stay queued", function()
    local pool = H.pool(srv.url)
    local a = pool:submit("GET", "/delay/100?which=async")
    local status, body = pool:request("GET", "/delay/500?which=blocking")
    assert.are.equal(200, status)
    assert.are.equal("blocking", cjson.decode(body).args.which)
    -- No perform in between: the blocking call already drove the async one.
    assert.are.equal(1, pool:pending())
    local id, s, b = pool:finished()
    assert.are.equal(a, id)
    assert.are.equal(200, s)
    assert.are.equal("async", cjson.decode(b).args.which)
    assert.is_nil(pool:finished(), "the blocking request must not be reported by finished()")
    assert.are.equal(0, pool:pending())
    pool:close()
  end)

  it("a blocking request runs alongside async ones in flight", function()
    local pool = H.pool(srv.url)
    local ids = {}
    for i = 1, 2 do ids[i] = pool:submit("GET", "/delay/400?n=" .. i) end
    local _, blocking = H.echo(pool, "GET", "/delay/400?n=blocking")
    local results = H.drain(pool, 2)
    local echoes = { blocking }
    for i = 1, 2 do echoes[#echoes + 1] = cjson.decode(results[ids[i]].body) end
    assert.is_true(overlapping(echoes), "the blocking request waited for the async ones")
    pool:close()
  end)

  it("handles 60 concurrent submits, each result matching its request", function()
    local pool = H.pool(srv.url)
    local ids = {}
    for i = 1, 60 do
      local body
      if i % 2 == 0 then body = { i = i } end
      ids[pool:submit(body and "POST" or "GET", "/many?i=" .. i, body)] = i
    end
    local results, order = H.drain(pool, 60, 30000)
    assert.are.equal(60, #order)
    for id, i in pairs(ids) do
      local e = cjson.decode(results[id].body)
      assert.are.equal(tostring(i), e.args.i)
      if i % 2 == 0 then assert.are.equal(i, cjson.decode(e.body).i) end
    end
    pool:close()
  end)

  it("close drops pending requests", function()
    local pool = H.pool(srv.url)
    for i = 1, 3 do pool:submit("GET", "/delay/2000?n=" .. i) end
    pool:perform(0)
    local elapsed = H.timed(function() pool:close() end)
    assert.is_true(elapsed < 1500, "close waited " .. elapsed .. " ms for transfers")
    assert.are.equal("envoke.core.pool (closed)", tostring(pool))
  end)
end)
