-- A pool's lifetime, after Lua's liolib.c: close / __gc / __close are one
-- idempotent function; any other method on a closed pool raises; many pools
-- live side by side.

local H = require "core_helper"
local echo_server = require "echo_server"

local CLOSED = "envoke.core: attempt to use a closed pool"

describe("pool lifetime", function()
  local srv

  lazy_setup(function() srv = echo_server.start{ tls = false } end)
  lazy_teardown(function() if srv then srv:stop() end end)

  it("tostring shows the pool's address, then closed", function()
    local pool = H.pool(srv.url)
    assert.is_truthy(tostring(pool):match("^envoke%.core%.pool %(0x%x+%)$"), tostring(pool))
    pool:close()
    assert.are.equal("envoke.core.pool (closed)", tostring(pool))
  end)

  it("close is idempotent", function()
    local pool = H.pool(srv.url)
    assert.are.equal(200, (pool:request("GET", "/before-close")))
    pool:close()
    pool:close()
    pool:close()
    assert.are.equal("envoke.core.pool (closed)", tostring(pool))
  end)

  it("every other method on a closed pool raises", function()
    local pool = H.pool(srv.url)
    pool:close()
    local calls = {
      request = { "GET", "/x" }, submit = { "GET", "/x" }, perform = { 0 },
      finished = {}, cancel = { 1 }, pending = {},
    }
    for name, args in pairs(calls) do
      assert.is_function(pool[name], name)
      H.contains(H.raises(pool[name], pool, (table.unpack or unpack)(args)), CLOSED)
    end
  end)

  it("a closed pool raises even for arguments it would otherwise refuse", function()
    local pool = H.pool(srv.url)
    pool:close()
    -- Closed is checked first or the arguments are: either way it raises.
    H.raises(pool.request, pool, "TRACE", "no-slash")
  end)

  it("methods refuse a non-pool self", function()
    local pool = H.pool(srv.url)
    H.raises(pool.request, {}, "GET", "/x")
    H.raises(pool.pending, "pool")
    H.raises(pool.close, 42)
    pool:close()
  end)

  it("every method names the pool it expected, whatever else it is given", function()
    local pool = H.pool(srv.url)
    -- A userdata with another metatable, one with the pool's methods as its
    -- metatable's fields, and values that are no userdata at all.
    local others = { io.stdout, {}, "pool", 42, true, getmetatable(pool).__index }
    for _, name in ipairs{ "request", "submit", "perform", "finished", "cancel", "pending" } do
      for _, other in ipairs(others) do
        H.contains(H.raises(pool[name], other, "GET", "/x"), "envoke.core.pool expected")
      end
      H.contains(H.raises(pool[name]), "envoke.core.pool expected")
    end
    assert.are.equal(0, pool:pending())
    pool:close()
  end)

  it("is collected without close, also with requests pending", function()
    for i = 1, 20 do
      local pool = H.pool(srv.url)
      assert.are.equal(200, (pool:request("GET", "/gc?i=" .. i)))
      pool:submit("GET", "/delay/1000")
      pool:perform(0)
      pool = nil   -- luacheck: ignore 311
    end
    collectgarbage("collect")
    collectgarbage("collect")
    local pool = H.pool(srv.url)
    assert.are.equal(200, (pool:request("GET", "/after-gc")))
    pool:close()
  end)

  it("closing or collecting pools releases their connections", function()
    collectgarbage("collect")
    local before = H.open_fds()
    for i = 1, 30 do
      local pool = H.pool(srv.url)
      pool:request("GET", "/fd?i=" .. i)
      if i % 2 == 0 then pool:close() end
    end
    collectgarbage("collect")
    collectgarbage("collect")
    local after = H.open_fds()
    assert.is_true(after - before < 5, "open descriptors grew from " .. before .. " to " .. after)
  end)

  it("a closed pool is collected without trouble", function()
    local pool = H.pool(srv.url)
    pool:close()
    pool = nil   -- luacheck: ignore 311
    collectgarbage("collect")
  end)

  if _VERSION == "Lua 5.4" then
    it("closes at the end of a <close> scope (5.4)", function()
      -- Loaded from a string: the syntax does not parse before 5.4.
      local chunk = assert(load([[
        local H, url = ...
        local escaped
        do
          local pool <close> = H.pool(url)
          assert(pool:request("GET", "/to-be-closed") == 200)
          escaped = pool
        end
        return escaped
      ]]))
      local pool = chunk(H, srv.url)
      assert.are.equal("envoke.core.pool (closed)", tostring(pool))
      H.contains(H.raises(pool.pending, pool), CLOSED)
      pool:close()
    end)

    it("closes on error inside a <close> scope (5.4)", function()
      local chunk = assert(load([[
        local H, url, out = ...
        local pool <close> = H.pool(url)
        out.pool = pool
        error("boom")
      ]]))
      local out = {}
      local ok = pcall(chunk, H, srv.url, out)
      assert.is_false(ok)
      assert.are.equal("envoke.core.pool (closed)", tostring(out.pool))
    end)
  end

  it("many pools side by side keep their own options and connections", function()
    local pools = {}
    for i = 1, 10 do
      pools[i] = H.pool(srv.url, { user_agent = "pool-" .. i, bearer = "token-" .. i })
    end
    local connections = {}
    for round = 1, 3 do
      for i, pool in ipairs(pools) do
        local _, e = H.echo(pool, "GET", "/side-by-side?round=" .. round)
        assert.are.equal("pool-" .. i, e.headers["user-agent"])
        assert.are.equal("Bearer token-" .. i, e.headers.authorization)
        if round == 1 then
          assert.is_nil(connections[e.connection], "two pools share a connection")
          connections[e.connection] = i
        else
          assert.are.equal(i, connections[e.connection], "pool " .. i .. " changed connection")
        end
      end
    end
    for i = 1, 10, 2 do pools[i]:close() end
    for i = 2, 10, 2 do assert.are.equal(200, (pools[i]:request("GET", "/still-open"))) end
    for i = 2, 10, 2 do pools[i]:close() end
  end)

  it("async requests in several pools at once do not mix", function()
    local pools, ids = {}, {}
    for i = 1, 4 do
      pools[i] = H.pool(srv.url)
      ids[i] = pools[i]:submit("GET", "/delay/100?pool=" .. i)
    end
    for i = 4, 1, -1 do
      local results, order = H.drain(pools[i], 1)
      assert.are.same({ ids[i] }, order)
      assert.are.equal(tostring(i), H.cjson.decode(results[ids[i]].body).args.pool)
      pools[i]:close()
    end
  end)
end)
