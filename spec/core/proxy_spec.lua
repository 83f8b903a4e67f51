-- The proxy option and libcurl's proxy environment variables. The echo
-- server doubles as a forward proxy: nginx accepts absolute-form request
-- lines, and the echo shows the request arrived that way.

local H = require "core_helper"
local echo_server = require "echo_server"
local core_now = require("envoke.core").now

describe("proxy", function()
  local srv

  lazy_setup(function() srv = echo_server.start{ tls = false } end)
  lazy_teardown(function() if srv then srv:stop() end end)

  it("sends requests through the proxy option", function()
    local pool = H.pool("http://example.invalid", { proxy = srv.url })
    local status, e = H.echo(pool, "POST", "/through-proxy?x=1", '{"a":1}')
    assert.are.equal(200, status)
    assert.are.equal("example.invalid", e.headers.host)
    assert.are.equal("POST http://example.invalid/through-proxy?x=1 HTTP/1.1", e.request_line)
    assert.are.equal('{"a":1}', e.body)
    pool:close()
  end)

  it("sends proxy credentials from the proxy URL as Proxy-Authorization", function()
    local proxy = srv.url:gsub("^http://", "http://proxy-user:proxy-pass@")
    local pool = H.pool("http://example.invalid", { proxy = proxy })
    local _, e = H.echo(pool, "GET", "/proxy-auth")
    assert.are.equal("Basic " .. H.base64("proxy-user:proxy-pass"), e.headers["proxy-authorization"])
    assert.are.equal("example.invalid", e.headers.host)
    pool:close()
  end)

  it("keeps the credentials out of the CONNECT an https request sends to its proxy", function()
    -- A proxy that reads the CONNECT head and refuses the tunnel.
    local socket = require "socket"
    local proxy = assert(socket.bind("127.0.0.1", 0))
    proxy:settimeout(0)
    local _, port = proxy:getsockname()
    local pool = H.pool("https://example.invalid", { proxy = "http://127.0.0.1:" .. port, bearer = "api-token" })
    local id = pool:submit("GET", "/through-tunnel")
    local head, conn = {}, nil
    local deadline = core_now() + 10000
    while not conn and core_now() < deadline do
      pool:perform(20)
      conn = proxy:accept()
    end
    assert.is_not_nil(conn, "no CONNECT arrived")
    conn:settimeout(5)
    repeat
      local line = assert(conn:receive("*l"))
      head[#head + 1] = line
    until line == ""
    conn:send("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    local results = H.drain(pool, 1)
    conn:close()
    proxy:close()
    pool:close()
    assert.matches("^CONNECT example.invalid:443 HTTP/1.1$", head[1])
    assert.are.equal("network", results[id].err and results[id].err.kind)
    assert.is_nil(table.concat(head, "\n"):lower():find("authorization", 1, true))
    assert.is_nil(table.concat(head, "\n"):find("api-token", 1, true))
  end)

  it("reuses the connection to the proxy", function()
    local pool = H.pool("http://example.invalid", { proxy = srv.url })
    local _, a = H.echo(pool, "GET", "/p1")
    local _, b = H.echo(pool, "GET", "/p2")
    assert.are.equal(a.connection, b.connection)
    pool:close()
  end)

  it("reports an unreachable proxy as a network error, never sent", function()
    local pool = H.pool("http://example.invalid", { proxy = "http://127.0.0.1:" .. H.closed_port() })
    local status, err = pool:request("GET", "/no-proxy-there")
    assert.is_nil(status)
    H.check_err(err)
    assert.are.equal("network", err.kind)
    assert.is_false(err.sent)
    pool:close()
  end)

  -- The environment is the process's own: a child interpreter gets it.
  local child = [[
    local core = require "envoke.core"
    local opts = { base_url = "http://example.invalid" }
    if PROXY_OPTION then opts.proxy = PROXY_OPTION end
    local pool = core.pool(opts)
    local status, body = pool:request("GET", "/via-env")
    if status then io.write("STATUS ", status, "\n", body) else io.write("ERR ", body.kind) end
  ]]

  it("honours http_proxy from the environment when no proxy option is given", function()
    local out = H.run_child("PROXY_OPTION = nil " .. child, { http_proxy = srv.url })
    H.contains(out, "STATUS 200")
    H.contains(out, '"host":"example.invalid"')
  end)

  it("ignores the environment with proxy = \"\"", function()
    local out = H.run_child('PROXY_OPTION = "" ' .. child, { http_proxy = srv.url })
    H.contains(out, "ERR network")
  end)

  it("lets the proxy option win over the environment", function()
    local out = H.run_child("PROXY_OPTION = " .. string.format("%q", srv.url) .. " " .. child,
      { http_proxy = "http://127.0.0.1:" .. H.closed_port() })
    H.contains(out, "STATUS 200")
  end)

  -- The pool reads the variables when it is made, by libcurl's own rules.
  it("takes all_proxy, then ALL_PROXY, when http_proxy is unset", function()
    H.contains(H.run_child("PROXY_OPTION = nil " .. child, { all_proxy = srv.url }), "STATUS 200")
    H.contains(H.run_child("PROXY_OPTION = nil " .. child, { ALL_PROXY = srv.url }), "STATUS 200")
    local closed = "http://127.0.0.1:" .. H.closed_port()
    H.contains(H.run_child("PROXY_OPTION = nil " .. child, { http_proxy = srv.url, all_proxy = closed }), "STATUS 200")
  end)

  it("never takes HTTP_PROXY for an http base URL (libcurl's httpoxy rule)", function()
    H.contains(H.run_child("PROXY_OPTION = nil " .. child, { HTTP_PROXY = srv.url }), "ERR network")
  end)

  it("goes direct to a host in no_proxy or NO_PROXY, the proxy option's too", function()
    for _, name in ipairs{ "no_proxy", "NO_PROXY" } do
      H.contains(H.run_child("PROXY_OPTION = nil " .. child, { http_proxy = srv.url, [name] = "example.invalid" }),
        "ERR network")
      H.contains(H.run_child("PROXY_OPTION = " .. string.format("%q", srv.url) .. " " .. child,
        { [name] = ".invalid" }), "ERR network")
    end
  end)
end)
