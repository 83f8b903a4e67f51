-- HTTPS: peer and host verification (on by default), ca_file, verify = false,
-- HTTP/2 negotiation and connection reuse over TLS.

local H = require "core_helper"
local echo_server = require "echo_server"
local cjson = H.cjson

describe("TLS", function()
  local srv, wrong_name

  lazy_setup(function()
    srv = echo_server.start()
    -- Same kind of server, but its certificate names another host.
    wrong_name = echo_server.start{ tls_names = { "wrong.invalid" } }
  end)

  lazy_teardown(function()
    if srv then srv:stop() end
    if wrong_name then wrong_name:stop() end
  end)

  it("refuses a certificate from an unknown CA by default: kind tls, never sent", function()
    local pool = H.pool(srv.tls_url)
    local status, err = pool:request("POST", "/unknown-ca", '{"x":1}')
    assert.is_nil(status)
    H.check_err(err)
    assert.are.equal("tls", err.kind)
    assert.is_false(err.sent)
    assert.is_false(err.retryable)
    pool:close()
  end)

  it("verifies with ca_file, and negotiates HTTP/2", function()
    local pool = H.pool(srv.tls_url, { ca_file = srv.ca_file })
    local status, e = H.echo(pool, "POST", "/with-ca?x=1", '{"y":2}')
    assert.are.equal(200, status)
    assert.are.equal("https", e.scheme)
    assert.are.equal("HTTP/2.0", e.protocol)
    assert.are.equal("/with-ca?x=1", e.uri)
    assert.are.equal('{"y":2}', e.body)
    pool:close()
  end)

  it("verifies the host name too (localhost is in the certificate)", function()
    local pool = H.pool("https://localhost:" .. srv.tls_port, { ca_file = srv.ca_file })
    local status = H.echo(pool, "GET", "/localhost")
    assert.are.equal(200, status)
    pool:close()
  end)

  it("refuses a certificate for another host name: kind tls", function()
    local pool = H.pool(wrong_name.tls_url, { ca_file = wrong_name.ca_file })
    local status, err = pool:request("GET", "/wrong-name")
    assert.is_nil(status)
    H.check_err(err)
    assert.are.equal("tls", err.kind)
    assert.is_false(err.sent)
    pool:close()
  end)

  it("refuses a certificate signed by a different CA than ca_file", function()
    local pool = H.pool(srv.tls_url, { ca_file = wrong_name.ca_file })
    local status, err = pool:request("GET", "/other-ca")
    assert.is_nil(status)
    assert.are.equal("tls", H.check_err(err).kind)
    pool:close()
  end)

  it("accepts any certificate with verify = false", function()
    for _, server in ipairs{ srv, wrong_name } do
      local pool = H.pool(server.tls_url, { verify = false })
      local status, e = H.echo(pool, "GET", "/no-verify")
      assert.are.equal(200, status)
      assert.are.equal("https", e.scheme)
      pool:close()
    end
  end)

  it("does not let verify = true be undone by a missing ca_file", function()
    -- A ca_file that does not exist must not turn verification off: either
    -- the option is refused or the request fails as tls.
    local ok, pool = pcall(H.pool, srv.tls_url, { ca_file = "/nonexistent/ca.pem" })
    if not ok then
      H.contains(pool, "'ca_file'")
      return
    end
    local status, err = pool:request("GET", "/missing-ca-file")
    assert.is_nil(status)
    assert.are.equal("tls", H.check_err(err).kind)
    pool:close()
  end)

  it("speaks HTTP/1.1 over TLS with http2 = false", function()
    local pool = H.pool(srv.tls_url, { ca_file = srv.ca_file, http2 = false })
    local _, e = H.echo(pool, "GET", "/h1")
    assert.are.equal("HTTP/1.1", e.protocol)
    pool:close()
  end)

  it("speaks HTTP/1.1 over plain http (no h2c upgrade)", function()
    local pool = H.pool(srv.url)
    local _, e = H.echo(pool, "GET", "/plain")
    assert.are.equal("HTTP/1.1", e.protocol)
    assert.is_nil(e.headers.upgrade)
    pool:close()
  end)

  it("reuses one TLS connection for many HTTP/2 calls", function()
    local pool = H.pool(srv.tls_url, { ca_file = srv.ca_file })
    local first
    for i = 1, 20 do
      local body
      if i % 2 == 1 then body = "{}" end
      local _, e = H.echo(pool, body and "PUT" or "GET", "/h2-reuse?i=" .. i, body)
      assert.are.equal("HTTP/2.0", e.protocol)
      first = first or e.connection
      assert.are.equal(first, e.connection, "call " .. i .. " used a new connection")
    end
    pool:close()
  end)

  it("reuses one TLS connection for many HTTP/1.1 calls", function()
    local pool = H.pool(srv.tls_url, { ca_file = srv.ca_file, http2 = false })
    local first
    for i = 1, 10 do
      local _, e = H.echo(pool, "GET", "/h1-reuse?i=" .. i)
      first = first or e.connection
      assert.are.equal(first, e.connection)
    end
    pool:close()
  end)

  it("decodes gzip, chunked and large bodies over HTTP/2", function()
    local pool = H.pool(srv.tls_url, { ca_file = srv.ca_file })
    local status, body, headers = pool:request("GET", "/gzip/bytes/500000")
    assert.are.equal(200, status)
    assert.are.equal("gzip", headers["content-encoding"])
    assert.is_true(body == echo_server.pattern(500000))
    status, body = pool:request("GET", "/chunked/300000?pieces=9")
    assert.are.equal(200, status)
    assert.is_true(body == echo_server.pattern(300000))
    status, body = pool:request("GET", "/bytes/4000000")
    assert.are.equal(200, status)
    assert.is_true(body == echo_server.pattern(4000000))
    status, body, headers = pool:request("GET", "/headers")
    assert.are.equal(200, status)
    assert.are.equal("Mixed", headers["x-mixed-case"])
    assert.are.equal("one, two", headers["x-repeated"])
    assert.are.equal("HTTP/2.0", cjson.decode(body).protocol)
    pool:close()
  end)

  it("enforces max_body over HTTP/2", function()
    local pool = H.pool(srv.tls_url, { ca_file = srv.ca_file, max_body = 1000 })
    local status, err = pool:request("GET", "/bytes/1001")
    assert.is_nil(status)
    assert.are.equal("too_large", H.check_err(err).kind)
    status = pool:request("GET", "/bytes/1000")
    assert.are.equal(200, status)
    pool:close()
  end)

  it("sends auth and the user agent over HTTP/2", function()
    local pool = H.pool(srv.tls_url, { ca_file = srv.ca_file, bearer = "h2-token", user_agent = "ua/h2" })
    local _, e = H.echo(pool, "GET", "/h2-auth")
    assert.are.equal("Bearer h2-token", e.headers.authorization)
    assert.are.equal("ua/h2", e.headers["user-agent"])
    pool:close()
  end)
end)
