-- The cosocket transport's HTTP, inside nginx, against the echo server:
-- what it sends, how it reads every kind of body, its size cap, its errors,
-- its argument checks, keep-alive pools, and TLS.
-- Each check's code runs in the rig's nginx (see openresty_runner for the
-- helpers in its scope).
local openresty_rig = require "openresty_rig"

describe("cosocket transport", function()
  local rig
  setup(function() rig = openresty_rig.start{ echo = true } end)
  teardown(function() if rig then rig:stop() end end)

  describe("requests", function()
    it("sends what the curl transport sends: request line, auth, user agent, JSON headers", function()
      rig:run[[
        local t = transport{ api_id = "id", api_key = "k:ey" }
        local status, body, headers = t:request("PATCH", "/anything?x=1&y=%20", { city = "Toronto" })
        assert.are.equal(200, status)
        assert.are.equal("application/json", headers["content-type"])
        local e = cjson.decode(body)
        assert.are.equal("PATCH /anything?x=1&y=%20 HTTP/1.1", e.request_line)
        assert.are.equal("Basic " .. ngx.encode_base64("id:k:ey"), e.headers.authorization)
        assert.truthy(e.headers["user-agent"]:find("^lua%-envoke/%d+%.%d+%.%d+$"),
          e.headers["user-agent"])
        assert.are.equal("application/json", e.headers["content-type"])
        assert.are.equal("application/json", e.headers.accept)
        assert.are.equal("gzip", e.headers["accept-encoding"])
        assert.are.equal("127.0.0.1:" .. cfg.echo.port, e.headers.host)
        assert.are.equal('{"city":"Toronto"}', e.body)
      ]]
    end)

    it("sends a bearer token, a base URL's path, the caller's headers, and the user agent option", function()
      rig:run[[
        local t = transport{ base_url = cfg.echo.url .. "/base/", token = "t0ken", user_agent = "mine/1" }
        local _, body = t:request("GET", "/x", nil, { Accept = "text/plain", ["X-Extra"] = 7 })
        local e = cjson.decode(body)
        assert.are.equal("/base/x", e.uri)
        assert.are.equal("Bearer t0ken", e.headers.authorization)
        assert.are.equal("mine/1", e.headers["user-agent"])
        assert.are.equal("text/plain", e.headers.accept) -- replaces the default, not added to it
        assert.are.equal("7", e.headers["x-extra"])
        assert.is_nil(e.headers["content-type"])
      ]]
    end)

    it("sends a caller's Connection: close (bulk inserts ask for it) and then opens a new connection", function()
      rig:run[[
        local t = fresh()
        local status, body = t:request("POST", "/anything", "{}", { Connection = "close" })
        assert.are.equal(200, status)
        assert.are.equal("close", cjson.decode(body).headers.connection)
        assert.are.equal(200, (t:request("GET", "/anything")))
        assert.are.equal(2, t.stats.connections)
        local c = client()
        local results, summary = c:insert_all{ { email = "bulk-ngx@example.com" } }
        assert.are.equal(1, summary.succeeded, tostring(results[1].err))
      ]]
    end)

    it("frames bodies as curl does: empty PATCH says length 0, DELETE and GET send none, HEAD reads none", function()
      rig:run[[
        local t = fresh()
        local e = cjson.decode((select(2, t:request("PATCH", "/anything"))))
        assert.are.equal("0", e.headers["content-length"])
        e = cjson.decode((select(2, t:request("DELETE", "/anything"))))
        assert.is_nil(e.headers["content-length"])
        assert.are.equal("DELETE", e.method)
        local status, body, headers = t:request("HEAD", "/bytes/5000")
        assert.are.equal(200, status)
        assert.are.equal("", body)
        assert.are.equal("5000", headers["content-length"])
        -- The connection stayed usable after the body-less answer.
        assert.are.equal(pattern(300), select(2, t:request("GET", "/bytes/300")))
        assert.are.equal(1, t.stats.connections)
      ]]
    end)
  end)

  describe("responses", function()
    it("reads Content-Length, chunked, gzip and gzip + chunked bodies byte for byte", function()
      rig:run[[
        local t = fresh()
        assert.are.equal(pattern(70000), select(2, t:request("GET", "/bytes/70000")))
        local status, body, headers = t:request("GET", "/chunked/100000?pieces=9")
        assert.are.equal(200, status)
        assert.are.equal("chunked", headers["transfer-encoding"])
        assert.are.equal(pattern(100000), body)
        status, body, headers = t:request("GET", "/gzip/bytes/50000")
        assert.are.equal("gzip", headers["content-encoding"])
        assert.are.equal(pattern(50000), body)
        -- nginx's gzip filter drops the length: gzip inside chunked framing.
        status, body, headers = t:request("POST", "/gzip/anything", ("x"):rep(3000))
        assert.are.equal("gzip", headers["content-encoding"])
        assert.are.equal("chunked", headers["transfer-encoding"])
        assert.are.equal(("x"):rep(3000), cjson.decode(body).body)
        assert.are.equal(1, t.stats.connections)
      ]]
    end)

    it("answers every status with its body, lowercases header names and joins repeats", function()
      rig:run[[
        local t = transport()
        local status, body = t:request("GET", "/status/404")
        assert.are.equal(404, status)
        assert.are.equal("GET", cjson.decode(body).method)
        local _, _, headers = t:request("GET", "/headers")
        assert.are.equal("Mixed", headers["x-mixed-case"])
        assert.are.equal("one, two", headers["x-repeated"])
        status, body = t:request("GET", "/status/204")
        assert.are.equal(204, status)
        assert.are.equal("", body)
        status, body, headers = t:request("GET", "/redirect")
        assert.are.equal(302, status) -- never followed
        assert.truthy(headers.location:find("/echo$"))
      ]]
    end)

    it("caps the body at max_body: by Content-Length, chunked, and once inflated (kind too_large)", function()
      rig:run[[
        local t = transport{ max_body = 4000 }
        assert.are.equal(pattern(4000), select(2, t:request("GET", "/bytes/4000")))
        for _, path in ipairs{ "/bytes/4001", "/chunked/9000?pieces=3", "/gzip/bytes/100000" } do
          local status, err = t:request("GET", path)
          assert.is_nil(status, path)
          assert.are.equal("too_large", err.kind, path)
          assert.is_false(err.retryable)
          assert.truthy(err.message:find("max_body (4000 bytes)", 1, true), err.message)
        end
        -- A gzip body far smaller than the cap on the wire still counts decompressed.
        local status = t:request("GET", "/gzip/bytes/3000")
        assert.are.equal(200, status)
      ]]
    end)
  end)

  describe("failures", function()
    it("reports cut connections as network errors, sent and retryable, then reconnects", function()
      rig:run[[
        local t = transport()
        for _, path in ipairs{ "/drop", "/truncated/1000", "/chunked-truncated/1000" } do
          local status, err = t:request("GET", path)
          assert.is_nil(status, path)
          assert.are.equal("network", err.kind, path)
          assert.is_true(err.sent)
          assert.is_true(err.retryable)
        end
        assert.truthy(select(2, t:request("GET", "/truncated/1000")).message:find("closed after 500 of 1000", 1, true))
        assert.are.equal(200, (t:request("GET", "/anything")))
      ]]
    end)

    it("times out a slow answer (kind timeout, retryable) and never reuses that connection", function()
      local data = rig:run[[
        local t = fresh{ timeout = 0.2 }
        local t0 = now()
        local status, err = t:request("GET", "/delay/1000")
        local elapsed = now() - t0
        assert.is_nil(status)
        assert.are.equal("timeout", err.kind)
        assert.is_true(err.retryable)
        assert.is_true(err.sent)
        local _, body = t:request("GET", "/anything")
        return { elapsed = elapsed, connections = t.stats.connections, echo = cjson.decode(body) }
      ]]
      assert.is_true(data.elapsed >= 150 and data.elapsed < 600, "timed out after " .. data.elapsed .. " ms")
      assert.are.equal(2, data.connections)
    end)

    it("reports a refused connection and a name with no resolver as network errors never sent", function()
      rig:run[[
        local status, err = transport{ base_url = "http://127.0.0.1:9" }:request("POST", "/v1/contacts", "{}")
        assert.is_nil(status)
        assert.are.equal("network", err.kind)
        assert.is_false(err.sent)
        assert.is_true(err.retryable)
        status, err = transport{ base_url = "http://envoke.invalid" }:request("GET", "/")
        assert.is_nil(status)
        assert.are.equal("network", err.kind)
        assert.is_false(err.sent)
        assert.truthy(err.message:find("resolver", 1, true), err.message)
      ]]
    end)

    it("raises on bad arguments and options before sending anything", function()
      rig:run[[
        local t = transport()
        local function raises(pattern, ...)
          local ok, msg = pcall(t.request, t, ...)
          assert.is_false(ok)
          assert.truthy(tostring(msg):find(pattern, 1, true), tostring(msg))
        end
        raises("unsupported HTTP method 'FETCH'", "FETCH", "/")
        raises("unsupported HTTP method 'get'", "get", "/")
        raises("path must start with '/'", "GET", "anything")
        raises("(byte 3, code 32)", "GET", "/a b")
        raises("(byte 2, code 35)", "GET", "/#")
        raises("(byte 3, code 10)", "GET", "/x\nHost: evil")
        raises("(byte 2, code 195)", "GET", "/\195\169")
        raises("CR, LF or NUL", "GET", "/", nil, { ["X-A"] = "a\r\nX-B: b" })
        raises("not allowed in a name", "GET", "/", nil, { ["X A"] = "a" })
        raises("set by the transport itself", "POST", "/", "x", { ["Content-Length"] = "1" })
        raises("a GET request has no body", "GET", "/", "x")
        raises("cannot encode the request body as JSON: $.n: NaN", "POST", "/", { n = 0 / 0 })
        assert.are.equal(0, t.stats.requests)
        local ok, msg = pcall(transport, { base_url = "ftp://x" })
        assert.is_false(ok)
        assert.truthy(msg:find("must start with http:// or https://", 1, true))
        ok, msg = pcall(transport, { proxy = "http://proxy:3128" })
        assert.is_false(ok)
        assert.truthy(msg:find("'proxy' is not supported", 1, true))
        ok, msg = pcall(transport, { token = "t\r\nX-Evil: 1" })
        assert.is_false(ok)
        assert.truthy(msg:find("'token' has CR, LF or NUL", 1, true))
        t:close()
        t:close()
        ok, msg = pcall(t.request, t, "GET", "/")
        assert.is_false(ok)
        assert.truthy(msg:find("closed transport", 1, true))
      ]]
    end)
  end)

  describe("keep-alive pools", function()
    it("reuses few connections for many calls (getreusedtimes), as the server sees too", function()
      local data = rig:run[[
        local c = client()
        for _ = 1, 50 do assert(c:ping()) end
        local stats = c.transport.stats
        -- The pool itself: a raw cosocket on the same pool gets the connection the calls reused.
        local sock = ngx.socket.tcp()
        assert(sock:connect("127.0.0.1", cfg.sandbox.port, { pool = c.transport.pool_name }))
        local reused = sock:getreusedtimes()
        sock:close()
        local t = transport()
        local serials = {}
        for _ = 1, 30 do
          local _, body = t:request("GET", "/anything")
          serials[cjson.decode(body).connection] = true
        end
        local distinct = 0
        for _ in pairs(serials) do distinct = distinct + 1 end
        return { stats = stats, reused = reused, distinct = distinct }
      ]]
      assert.are.equal(50, data.stats.requests)
      -- The sandbox's pool may hold a connection from earlier checks already.
      assert.is_true(data.stats.connections <= 1, data.stats.connections .. " connections")
      assert.is_true(data.stats.reused >= 49, data.stats.reused .. " reused")
      assert.is_true(data.reused >= 49, "getreusedtimes() = " .. data.reused)
      assert.are.equal(1, data.distinct) -- one TCP connection, by the server's count
    end)

    it("keeps one pool per base URL and credentials: accounts never share a connection", function()
      rig:run[[
        local function serial(t)
          local _, body = t:request("GET", "/anything")
          return cjson.decode(body).connection
        end
        local a1 = serial(transport{ api_id = "a", api_key = "1" })
        local b = serial(transport{ api_id = "b", api_key = "1" })
        local a2 = serial(transport{ api_id = "a", api_key = "1" })
        local a_key2 = serial(transport{ api_id = "a", api_key = "2" })
        local bearer = serial(transport{ token = "a" })
        assert.are.equal(a1, a2) -- same account: the pooled connection, across transports
        assert.are_not.equal(a1, b)
        assert.are_not.equal(a1, a_key2)
        assert.are_not.equal(a1, bearer)
        local t = transport{ api_id = "a", api_key = "1" }
        assert.falsy(t.pool_name:find("a\0001", 1, true)) -- the credentials are not in the name
      ]]
    end)
  end)

  describe("TLS", function()
    it("verifies against lua_ssl_trusted_certificate by default, by host name, and reuses TLS connections", function()
      rig:run([[
        local t = fresh{ base_url = "https://localhost:" .. cfg.echo.tls_port }
        for _ = 1, 10 do
          local status, body = t:request("GET", "/anything")
          assert.are.equal(200, status, status == nil and body.message or nil)
          local e = cjson.decode(body)
          assert.are.equal("https", e.scheme)
          assert.are.equal("HTTP/1.1", e.protocol)
        end
        assert.are.equal(1, t.stats.connections)
      ]], nil, { trusted = true })
    end)

    it("refuses a certificate for another host name (kind tls, never sent)", function()
      rig:run([[
        local t = transport{ base_url = "https://other.localhost:" .. cfg.echo.tls_port }
        local status, err = t:request("GET", "/anything")
        assert.is_nil(status)
        assert.are.equal("tls", err.kind, err.message)
        assert.is_false(err.sent)
        assert.is_false(err.retryable)
      ]], nil, { trusted = true })
    end)

    it("refuses an unknown CA, saying where nginx takes trusted CAs from, and verify = false skips it", function()
      rig:run[[
        local url = "https://localhost:" .. cfg.echo.tls_port
        -- First a connection made without verification, left in its pool...
        local loose = transport{ base_url = url, verify = false }
        assert.are.equal(200, (loose:request("GET", "/anything")))
        -- ...which a verifying transport must never pick up.
        local strict = transport{ base_url = url, ca_file = cfg.echo.ca_file }
        local status, err = strict:request("GET", "/anything")
        assert.is_nil(status)
        assert.are.equal("tls", err.kind)
        assert.is_false(err.sent)
        assert.truthy(err.message:find("lua_ssl_trusted_certificate", 1, true), err.message)
        assert.truthy(err.message:find(cfg.echo.ca_file, 1, true), err.message)
        assert.are.equal(1, strict.stats.connections)
      ]]
    end)
  end)
end)

describe("cosocket transport outside nginx", function()
  it("loads under any Lua, and refuses to run without nginx, saying so", function()
    local ngx_transport = require "envoke.transport.ngx"
    assert.is_function(ngx_transport.new)
    local ok, msg = pcall(require("envoke").new, { transport = "ngx", base_url = "http://127.0.0.1:9" })
    assert.is_false(ok)
    assert.truthy(tostring(msg):find("needs nginx with the Lua module", 1, true), msg)
    -- Outside nginx the default stays libcurl.
    local client = require("envoke").new{ base_url = "http://127.0.0.1:9", api_id = "i", api_key = "k" }
    assert.are.equal("userdata", type(client.transport))
    client:close()
  end)
end)
