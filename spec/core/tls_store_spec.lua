-- The CA store is parsed once, when the pool is made, and shared by every TLS
-- connection the pool opens; new connections are let in a few at a time
-- (max_connecting), so their handshakes spread over several perform() calls;
-- and the pool's connections share TLS sessions, so a new one resumes.
-- The CPU figures themselves are measured by bench/tls_frames.lua.

local H = require "core_helper"
local echo_server = require "echo_server"
local nginx = require "sandbox.nginx"
local shell = require "sandbox.shell"

-- Submits n requests and drives them until all are collected.
local function run_all(pool, n, path, headers)
  local ids = {}
  for i = 1, n do ids[i] = pool:submit("GET", path .. "?i=" .. i, nil, headers) end
  local results = H.drain(pool, n, 20000)
  local list = {}
  for i, id in ipairs(ids) do list[i] = results[id] end
  return list
end

describe("the TLS CA store", function()
  local srv, dir

  lazy_setup(function()
    srv = echo_server.start()
    dir = shell.tmpdir("tls-store")
  end)
  lazy_teardown(function()
    if srv then srv:stop() end
    if dir then shell.run("rm -rf " .. H.shell_quote(dir)) end
  end)

  it("is read when the pool is made: the file can go before any connection opens", function()
    local ca = dir .. "/ca.pem"
    shell.write_file(ca, assert(shell.read_file(srv.ca_file)))
    local pool = H.pool(srv.tls_url, { ca_file = ca, http2 = false })
    assert(os.remove(ca))
    -- Eight connections, every one verified against the store read above.
    for _, r in ipairs(run_all(pool, 8, "/store", { Connection = "close" })) do
      assert.are.equal(200, r.status, r.err and r.err.message)
    end
    pool:close()
  end)

  it("is still the system's when no ca_file is given: an unknown CA is refused", function()
    local pool = H.pool(srv.tls_url, { http2 = false })
    for _, r in ipairs(run_all(pool, 4, "/unknown-ca")) do
      assert.are.equal("tls", H.check_err(r.err).kind)
      assert.is_false(r.err.sent)
    end
    pool:close()
  end)

  it("falls back to libcurl's loading when ca_file cannot be read: the call fails as tls", function()
    local pool = H.pool(srv.tls_url, { ca_file = dir .. "/missing.pem" })
    local status, err = pool:request("GET", "/missing")
    pool:close()
    assert.is_nil(status)
    assert.are.equal("tls", H.check_err(err).kind)
  end)

  it("is not needed with verify = false", function()
    local pool = H.pool(srv.tls_url, { verify = false, http2 = false })
    for _, r in ipairs(run_all(pool, 3, "/no-verify")) do assert.are.equal(200, r.status) end
    pool:close()
  end)
end)

describe("max_connecting", function()
  local srv

  lazy_setup(function() srv = echo_server.start() end)
  lazy_teardown(function() if srv then srv:stop() end end)

  it("is an option from 0 to 65536", function()
    H.pool(srv.tls_url, { max_connecting = 0 }):close()
    H.pool(srv.tls_url, { max_connecting = 16 }):close()
    for _, bad in ipairs{ -1, 1.5, "2", true, 65537 } do
      H.contains(H.raises(H.pool, srv.tls_url, { max_connecting = bad }), "option 'max_connecting'")
    end
  end)

  it("holds requests beyond it until a connection is through, then serves them all", function()
    for _, cap in ipairs{ 1, 2, 0 } do
      local pool = H.pool(srv.tls_url, { ca_file = srv.ca_file, http2 = false, max_connecting = cap })
      local seen = {}
      for _, r in ipairs(run_all(pool, 8, "/paced", { Connection = "close" })) do
        assert.are.equal(200, r.status, r.err and r.err.message)
        local e = H.cjson.decode(r.body)
        assert.is_nil(seen[e.connection], "two requests on one closed connection")
        seen[e.connection] = true
      end
      pool:close()
    end
  end)

  it("a held request can be cancelled (never sent) and is counted as pending", function()
    local hole = H.blackhole()
    local pool = H.pool("https://127.0.0.1:" .. hole.port, { max_connecting = 1, connect_timeout_ms = 10000 })
    local first = pool:submit("GET", "/connecting")
    local held = pool:submit("GET", "/held")
    pool:perform(0)
    assert.are.equal(2, pool:pending())
    assert.are.equal(2, pool:perform(0))
    local dropped, sent = pool:cancel(held)
    assert.is_true(dropped)
    assert.is_false(sent)
    assert.are.equal(1, pool:pending())
    assert.is_true((pool:cancel(first)))
    pool:close()
    hole.close()
  end)

  it("a held request times out by its own timeout, counted from its submission", function()
    local hole = H.blackhole()
    local pool = H.pool("https://127.0.0.1:" .. hole.port,
      { max_connecting = 1, connect_timeout_ms = 20000, timeout_ms = 300 })
    local ahead = pool:submit("GET", "/connecting")
    local held = pool:submit("GET", "/held")
    local results = H.drain(pool, 2, 10000)
    pool:close()
    hole.close()
    -- Both end by the 300 ms timeout, long before the 20 s connect timeout:
    -- the held one in the queue, or let in with what was left of its time.
    for _, id in ipairs{ ahead, held } do
      assert.are.equal("timeout", H.check_err(results[id].err).kind)
      assert.is_false(results[id].err.sent)
    end
  end)

  it("is not applied to plain http, where opening a connection costs nothing", function()
    local pool = H.pool(srv.url, { max_connecting = 1 })
    for _, r in ipairs(run_all(pool, 6, "/plain")) do assert.are.equal(200, r.status) end
    pool:close()
  end)
end)

describe("TLS sessions", function()
  local srv

  lazy_setup(function()
    -- A server that keeps sessions and says whether a handshake resumed one.
    srv = nginx.start{
      tls_port = true,
      http = "ssl_session_cache shared:envoke_spec:1m;",
      server = [[
        location / {
          default_type text/plain;
          return 200 "$ssl_session_reused";
        }
      ]],
    }
  end)
  lazy_teardown(function() if srv then srv:stop() end end)

  it("are shared by the pool's connections: a new one resumes a session", function()
    local pool = H.pool(srv.tls_url, { ca_file = srv.ca_file, http2 = false, max_connecting = 0 })
    -- Two connections at once: two easy handles, two full handshakes.
    for _, r in ipairs(run_all(pool, 2, "/first", { Connection = "close" })) do
      assert.are.equal(200, r.status, r.err and r.err.message)
    end
    -- Four at once: two of them on easy handles that never held a session.
    for _, r in ipairs(run_all(pool, 4, "/again", { Connection = "close" })) do
      assert.are.equal(200, r.status, r.err and r.err.message)
      assert.are.equal("r", r.body, "a new connection did a full handshake")
    end
    pool:close()
  end)
end)
