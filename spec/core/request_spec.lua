-- pool:request against the echo server: what arrives at the server (method,
-- path, query, headers, auth, body) and what comes back (status, body,
-- headers) for plain, chunked, gzipped and large answers, and connection reuse.

local H = require "core_helper"
local echo_server = require "echo_server"
local core, cjson = H.core, H.cjson

describe("pool:request", function()
  local rig = H.echo_rig()
  lazy_setup(rig.start)
  lazy_teardown(rig.stop)

  describe("the request as the server receives it", function()
    it("sends the method, path and raw query", function()
      local status, e, headers = H.echo(rig.pool, "GET", "/echo/some/path?a=1&b=%20c&utf=%C3%A9&empty=")
      assert.are.equal(200, status)
      assert.are.equal("GET", e.method)
      assert.are.equal("/echo/some/path?a=1&b=%20c&utf=%C3%A9&empty=", e.uri)
      assert.are.equal("/echo/some/path", e.path)
      assert.are.equal("a=1&b=%20c&utf=%C3%A9&empty=", e.query)
      assert.are.equal(" c", e.args.b)
      assert.are.equal("\195\169", e.args.utf)
      assert.are.equal("HTTP/1.1", e.protocol)
      assert.are.equal("application/json", headers["content-type"])
    end)

    it("sends every method", function()
      for _, method in ipairs{ "GET", "POST", "PUT", "PATCH", "DELETE" } do
        local status, e = H.echo(rig.pool, method, "/method")
        assert.are.equal(200, status)
        assert.are.equal(method, e.method)
      end
    end)

    it("sends HEAD and returns status and headers with an empty body", function()
      local status, body, headers = rig.pool:request("HEAD", "/head")
      assert.are.equal(200, status)
      assert.are.equal("", body)
      assert.are.equal("application/json", headers["content-type"])
    end)

    it("drops base_url's trailing slash", function()
      local p = H.pool(rig.srv.url .. "/")
      local _, e = H.echo(p, "GET", "/slash")
      assert.are.equal("/slash", e.uri)
      p:close()
    end)

    it("keeps a path prefix in base_url", function()
      local p = H.pool(rig.srv.url .. "/api/v1/")
      local _, e = H.echo(p, "GET", "/contacts?x=1")
      assert.are.equal("/api/v1/contacts?x=1", e.uri)
      p:close()
    end)

    it("sends Accept: application/json and accepts gzip and deflate", function()
      local _, e = H.echo(rig.pool, "GET", "/accept")
      assert.are.equal("application/json", e.headers.accept)
      H.contains(e.headers["accept-encoding"], "gzip")
      H.contains(e.headers["accept-encoding"], "deflate")
    end)

    it("asks for compression on GET only (a write's small answer does not pay for it)", function()
      local _, e = H.echo(rig.pool, "PATCH", "/write", { city = "Toronto" })
      assert.are.equal("application/json", e.headers.accept)
      assert.is_nil(e.headers["accept-encoding"])
    end)

    it("sends the default user agent", function()
      local _, e = H.echo(rig.pool, "GET", "/ua")
      assert.are.equal(core.user_agent, e.headers["user-agent"])
    end)

    it("sends a user_agent override", function()
      local p = H.pool(rig.srv.url, { user_agent = "my-app/2.0 (+https://example.com)" })
      local _, e = H.echo(p, "GET", "/ua")
      assert.are.equal("my-app/2.0 (+https://example.com)", e.headers["user-agent"])
      p:close()
    end)

    it("sends HTTP Basic auth", function()
      local p = H.pool(rig.srv.url, { username = "api-id", password = "api:key:with:colons" })
      local _, e = H.echo(p, "GET", "/basic")
      assert.are.equal("Basic " .. H.base64("api-id:api:key:with:colons"), e.headers.authorization)
      p:close()
    end)

    it("sends a bearer token", function()
      local p = H.pool(rig.srv.url, { bearer = "tok.en-123_abc" })
      local _, e = H.echo(p, "GET", "/bearer")
      assert.are.equal("Bearer tok.en-123_abc", e.headers.authorization)
      p:close()
    end)

    it("sends the credentials once with every kind of request: no body, a JSON body, a large body", function()
      local p = H.pool(rig.srv.url, { username = "id", password = "secret" })
      local large = ("x"):rep(4096)
      for _, case in ipairs{ { "GET" }, { "PATCH", { city = "Toronto" } }, { "POST", large } } do
        local _, e = H.echo(p, case[1], "/auth-kinds", case[2])
        assert.are.equal("Basic " .. H.base64("id:secret"), e.headers.authorization, case[1])
        assert.are.equal("application/json", e.headers.accept, case[1])
      end
      p:close()
    end)

    it("sends a caller's Authorization header instead of the pool's credentials, whatever its case", function()
      local p = H.pool(rig.srv.url, { bearer = "pool-token" })
      local _, e = H.echo(p, "GET", "/auth-override", nil, { authorization = "Bearer call-token" })
      assert.are.equal("Bearer call-token", e.headers.authorization)
      _, e = H.echo(p, "PATCH", "/auth-override", { a = 1 }, { AUTHORIZATION = "Basic eDp5" })
      assert.are.equal("Basic eDp5", e.headers.authorization)
      p:close()
    end)

    it("sends no Authorization without credentials", function()
      local _, e = H.echo(rig.pool, "GET", "/noauth")
      assert.is_nil(e.headers.authorization)
    end)

    it("sends extra headers as given", function()
      local _, e = H.echo(rig.pool, "GET", "/headers-in", nil, {
        ["X-Custom"] = "v1", ["X-Spaces"] = "a value: with colon, and comma", ["X-Empty-ish"] = "-",
      })
      assert.are.equal("v1", e.headers["x-custom"])
      assert.are.equal("a value: with colon, and comma", e.headers["x-spaces"])
      assert.are.equal("-", e.headers["x-empty-ish"])
      assert.are.equal("application/json", e.headers.accept)
    end)

    it("sends header values with tabs and UTF-8 as given (only CR, LF and NUL are refused)", function()
      local _, e = H.echo(rig.pool, "GET", "/header-bytes", nil, { ["X-Tab"] = "a\tb", ["X-Utf8"] = "caf\195\169" })
      assert.are.equal("a\tb", e.headers["x-tab"])
      assert.are.equal("caf\195\169", e.headers["x-utf8"])
    end)

    it("sends a string body as is, with Content-Type: application/json", function()
      local body = echo_server.pattern(256) .. "tail"
      local _, e = H.echo(rig.pool, "POST", "/body", body)
      assert.are.equal(body, e.body)
      assert.are.equal(tostring(#body), e.headers["content-length"])
      assert.are.equal("application/json", e.headers["content-type"])
    end)

    it("sends an empty string body", function()
      local _, e = H.echo(rig.pool, "PUT", "/empty", "")
      assert.are.equal("", e.body)
    end)

    it("encodes a table body as JSON", function()
      local value = { name = "Ada", tags = { "a", "b" }, n = 42, nested = { ok = true, none = core.null } }
      local _, e = H.echo(rig.pool, "PATCH", "/json", value)
      assert.are.same({ name = "Ada", tags = { "a", "b" }, n = 42, nested = { ok = true, none = cjson.null } },
        cjson.decode(e.body))
      assert.are.equal("application/json", e.headers["content-type"])
    end)

    it("lets headers override Content-Type, whatever their case", function()
      for _, name in ipairs{ "Content-Type", "content-type", "CONTENT-TYPE" } do
        local _, e = H.echo(rig.pool, "POST", "/ctype", "plain text", { [name] = "text/plain; charset=utf-8" })
        assert.are.equal("text/plain; charset=utf-8", e.headers["content-type"], name)
      end
    end)

    it("sends large bodies whole and never Expect: 100-continue", function()
      local body = echo_server.pattern(3 * 1024 * 1024 + 7)
      for _, method in ipairs{ "POST", "PUT" } do
        local _, e = H.echo(rig.pool, method, "/large-upload", body)
        assert.are.equal(#body, e.body_length)
        assert.is_true(e.body == body, "body differs")
        assert.is_nil(e.headers.expect)
      end
    end)

    -- The pool sends its empty "Expect:" line (which stops libcurl's 100-continue)
    -- only above 1024 bytes, where libcurl 7.68 and older would ask for one.
    it("sends bodies around 1 KiB and of 2 KiB whole and never Expect: 100-continue", function()
      for _, size in ipairs{ 0, 10, 1023, 1024, 1025, 2048 } do
        local body = echo_server.pattern(size)
        for _, method in ipairs{ "POST", "PUT", "PATCH" } do
          local _, e = H.echo(rig.pool, method, "/upload", body)
          assert.are.equal(size, e.body_length, method .. " " .. size)
          assert.is_true(e.body == body, "body differs: " .. method .. " " .. size)
          assert.is_nil(e.headers.expect, method .. " " .. size)
        end
        local _, e = H.echo(rig.pool, "POST", "/upload", { text = body:gsub("[^%w]", "x") })
        assert.is_nil(e.headers.expect, "JSON " .. size)
        local _, h = H.echo(rig.pool, "POST", "/upload", body, { ["X-Own"] = "1" })
        assert.is_nil(h.headers.expect, "own headers " .. size)
        assert.are.equal("application/json", h.headers["content-type"])
      end
    end)

    it("sends a body with DELETE", function()
      local _, e = H.echo(rig.pool, "DELETE", "/with-body", '{"ids":[1,2]}')
      assert.are.equal("DELETE", e.method)
      assert.are.equal('{"ids":[1,2]}', e.body)
    end)

  end)

  describe("the response", function()
    it("returns any status as status, with its body", function()
      for _, code in ipairs{ 200, 201, 202, 299, 400, 401, 403, 404, 409, 418, 422, 429, 500, 502, 503, 504, 599 } do
        local status, body, headers = rig.pool:request("GET", "/status/" .. code)
        assert.are.equal(code, status)
        assert.are.equal("/status/" .. code, cjson.decode(body).path)
        assert.is_table(headers)
      end
    end)

    it("returns 204 with an empty body", function()
      local status, body = rig.pool:request("DELETE", "/status/204")
      assert.are.equal(204, status)
      assert.are.equal("", body)
    end)

    it("does not follow redirects", function()
      for _, code in ipairs{ 301, 302, 303, 307, 308 } do
        local status, _, headers = rig.pool:request("GET", "/status/" .. code)
        assert.are.equal(code, status)
        assert.are.equal("/echo", headers.location)
      end
      local status, _, headers = rig.pool:request("GET", "/redirect")
      assert.are.equal(302, status)
      H.contains(headers.location, "/echo")
    end)

    it("returns headers with lowercased names, repeats joined by ', '", function()
      local status, _, headers = rig.pool:request("GET", "/headers")
      assert.are.equal(200, status)
      assert.are.equal("Mixed", headers["x-mixed-case"])
      assert.are.equal("one, two", headers["x-repeated"])
      for name, value in pairs(headers) do
        assert.is_string(name)
        assert.is_string(value)
        assert.are.equal(name:lower(), name)
      end
      assert.is_nil(headers["X-Mixed-Case"])
    end)

    it("returns the status as an integer", function()
      local status = rig.pool:request("GET", "/status/201")
      assert.are.equal(201, status)
      if math.type then assert.are.equal("integer", math.type(status)) end
    end)

    it("decodes gzip", function()
      local status, body, headers = rig.pool:request("GET", "/gzip/echo")
      assert.are.equal(200, status)
      assert.are.equal("gzip", headers["content-encoding"])
      local e = cjson.decode(body)
      assert.are.equal("/gzip/echo", e.path)
      H.contains(e.headers["accept-encoding"], "gzip")
    end)

    it("decodes a large gzipped body", function()
      local status, body, headers = rig.pool:request("GET", "/gzip/bytes/3000000")
      assert.are.equal(200, status)
      assert.are.equal("gzip", headers["content-encoding"])
      assert.are.equal(3000000, #body)
      assert.is_true(body == echo_server.pattern(3000000), "gzip body differs")
    end)

    it("reassembles a chunked body", function()
      for _, pieces in ipairs{ 1, 7, 100 } do
        local status, body, headers = rig.pool:request("GET", "/chunked/100003?pieces=" .. pieces .. "&gap_ms=1")
        assert.are.equal(200, status)
        assert.are.equal("chunked", headers["transfer-encoding"])
        assert.is_nil(headers["content-length"])
        assert.are.equal(100003, #body)
        assert.is_true(body == echo_server.pattern(100003), "chunked body differs")
      end
    end)

    it("returns binary bodies byte for byte", function()
      for _, n in ipairs{ 0, 1, 255, 256, 257, 65536, 1000001 } do
        local status, body, headers = rig.pool:request("GET", "/bytes/" .. n)
        assert.are.equal(200, status)
        assert.are.equal(tostring(n), headers["content-length"])
        assert.are.equal(n, #body)
        assert.is_true(body == echo_server.pattern(n), "body of " .. n .. " bytes differs")
      end
    end)

    it("returns a body of exactly max_body bytes (16 MiB by default)", function()
      local n = 16 * 1024 * 1024
      local status, body = rig.pool:request("GET", "/bytes/" .. n)
      assert.are.equal(200, status)
      assert.are.equal(n, #body)
      assert.is_true(body == echo_server.pattern(n), "16 MiB body differs")
    end)
  end)

  describe("max_body", function()
    local small

    lazy_setup(function() small = H.pool(rig.srv.url, { max_body = 1000 }) end)
    lazy_teardown(function() if small then small:close() end end)

    it("allows a body of exactly max_body bytes", function()
      local status, body = small:request("GET", "/bytes/1000")
      assert.are.equal(200, status)
      assert.are.equal(1000, #body)
      status, body = small:request("GET", "/chunked/1000?pieces=4")
      assert.are.equal(200, status)
      assert.are.equal(1000, #body)
    end)

    it("refuses a larger body announced by Content-Length", function()
      local status, err = small:request("GET", "/bytes/1001")
      assert.is_nil(status)
      H.check_err(err)
      assert.are.equal("too_large", err.kind)
      assert.is_true(err.sent)
      assert.is_false(err.retryable)
    end)

    it("refuses a larger chunked body", function()
      local status, err = small:request("GET", "/chunked/5000?pieces=10")
      assert.is_nil(status)
      assert.are.equal("too_large", H.check_err(err).kind)
    end)

    it("refuses a gzipped body that decodes to more than max_body", function()
      local status, err = small:request("GET", "/gzip/bytes/5000")
      assert.is_nil(status)
      assert.are.equal("too_large", H.check_err(err).kind)
    end)

    it("refuses more than the default 16 MiB", function()
      local status, err = rig.pool:request("GET", "/bytes/" .. (16 * 1024 * 1024 + 1))
      assert.is_nil(status)
      assert.are.equal("too_large", H.check_err(err).kind)
      status, err = rig.pool:request("GET", "/chunked/" .. (16 * 1024 * 1024 + 1) .. "?pieces=16")
      assert.is_nil(status)
      assert.are.equal("too_large", H.check_err(err).kind)
    end)

    it("leaves the pool usable", function()
      small:request("GET", "/bytes/100000")
      local status, body = small:request("GET", "/bytes/10")
      assert.are.equal(200, status)
      assert.are.equal(10, #body)
      local s2 = H.echo(rig.pool, "GET", "/after-too-large")
      assert.are.equal(200, s2)
    end)
  end)

  describe("connection reuse", function()
    it("serves many sequential calls on one TCP connection", function()
      local p = H.pool(rig.srv.url)
      local first, last_count
      for i = 1, 30 do
        local method = ({ "GET", "POST", "PUT", "PATCH", "DELETE" })[i % 5 + 1]
        local body = method ~= "GET" and ('{"i":' .. i .. "}") or nil
        local path = (i % 3 == 0) and "/status/404" or "/reuse?i=" .. i
        local status, resp = p:request(method, path, body)
        assert.is_number(status)
        local e = cjson.decode(resp)
        first = first or e.connection
        assert.are.equal(first, e.connection, "call " .. i .. " used a new connection")
        if last_count then assert.are.equal(last_count + 1, e.connection_requests) end
        last_count = e.connection_requests
      end
      p:close()
    end)

    it("keeps the connection across a gzipped, a chunked and a large answer", function()
      local p = H.pool(rig.srv.url)
      local _, a = H.echo(p, "GET", "/reuse-a")
      p:request("GET", "/gzip/bytes/100000")
      p:request("GET", "/chunked/100000")
      p:request("GET", "/bytes/2000000")
      local _, b = H.echo(p, "GET", "/reuse-b")
      assert.are.equal(a.connection, b.connection)
      assert.are.equal(a.connection_requests + 4, b.connection_requests)
      p:close()
    end)

    it("gives each pool its own connection", function()
      local p1, p2 = H.pool(rig.srv.url), H.pool(rig.srv.url)
      local _, a1 = H.echo(p1, "GET", "/p1")
      local _, b1 = H.echo(p2, "GET", "/p2")
      local _, a2 = H.echo(p1, "GET", "/p1")
      local _, b2 = H.echo(p2, "GET", "/p2")
      assert.are.equal(a1.connection, a2.connection)
      assert.are.equal(b1.connection, b2.connection)
      assert.are_not.equal(a1.connection, b1.connection)
      p1:close()
      p2:close()
    end)
  end)

  describe("arguments it refuses", function()
    local bad_methods = { "get", "Get", "TRACE", "CONNECT", "OPTIONS", "GET ", " GET", "GE\nT", "", "GET\0", 42, true }
    local bad_paths = { "", "noslash", "echo", "http://127.0.0.1/", "/a b", "/a\tb", "/a\r\nX-Evil: 1", "/a\n",
      "/a\r", "/a\0b", "/a#frag", "/caf\195\169", "/\255", "/a\127", 42 }
    local bad_header_names = { "", "X Name", "X:Name", "X-Name:", "X\r\nName", "X\nName", "X\0Name", "X(Name)",
      "X-N\195\169" }
    local bad_header_values = { "v\r\nX-Evil: 1", "v\n", "v\r", "v\0" }

    for _, call in ipairs{ "request", "submit" } do
      it(call .. " refuses methods other than GET POST PUT PATCH DELETE HEAD", function()
        for _, method in ipairs(bad_methods) do
          H.raises(rig.pool[call], rig.pool, method, "/x")
        end
        H.raises(rig.pool[call], rig.pool, nil, "/x")
      end)

      it(call .. " refuses paths without a leading slash, or with spaces, controls, '#' or non-ASCII", function()
        for _, path in ipairs(bad_paths) do
          H.raises(rig.pool[call], rig.pool, "GET", path)
        end
        H.raises(rig.pool[call], rig.pool, "GET", nil)
      end)

      it(call .. " refuses bad header names and CR/LF/NUL in header values", function()
        for _, name in ipairs(bad_header_names) do
          H.raises(rig.pool[call], rig.pool, "GET", "/x", nil, { [name] = "v" })
        end
        for _, value in ipairs(bad_header_values) do
          H.raises(rig.pool[call], rig.pool, "GET", "/x", nil, { ["X-Ok"] = value })
        end
      end)

      it(call .. " refuses a body that is neither string nor table, and headers that are not a table", function()
        H.raises(rig.pool[call], rig.pool, "POST", "/x", true)
        H.raises(rig.pool[call], rig.pool, "POST", "/x", print)
        H.raises(rig.pool[call], rig.pool, "GET", "/x", nil, "X-Name: v")
      end)

      it(call .. " refuses a body with GET and HEAD, string or table, even empty", function()
        for _, method in ipairs{ "GET", "HEAD" } do
          for _, body in ipairs{ '{"q":1}', "", { q = 1 }, {} } do
            H.raises(rig.pool[call], rig.pool, method, "/x", body)
          end
        end
      end)

      it(call .. " raises like json_encode on a bad table body, naming where", function()
        H.contains(H.raises(rig.pool[call], rig.pool, "POST", "/x", { a = { 1, 0 / 0 } }), "$.a[2]")
        local t = {}
        t.t = t
        H.contains(H.raises(rig.pool[call], rig.pool, "POST", "/x", t), "cycle")
        H.contains(H.raises(rig.pool[call], rig.pool, "POST", "/x", { s = "bad\255" }), "invalid UTF-8")
      end)
    end

    it("leaves nothing queued and the pool usable after refusals", function()
      local p = H.pool(rig.srv.url)
      for _, path in ipairs(bad_paths) do pcall(p.submit, p, "GET", path) end
      for _, name in ipairs(bad_header_names) do pcall(p.submit, p, "GET", "/x", nil, { [name] = "v" }) end
      pcall(p.submit, p, "TRACE", "/x")
      pcall(p.submit, p, "POST", "/x", { 0 / 0 })
      assert.are.equal(0, p:pending())
      assert.are.equal(0, p:perform(0))
      assert.is_nil(p:finished())
      local status = H.echo(p, "GET", "/after-refusals")
      assert.are.equal(200, status)
      p:close()
    end)

    it("accepts every method name and a percent-encoded query", function()
      for _, method in ipairs{ "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD" } do
        local status = rig.pool:request(method, "/ok?q=%E2%82%AC%20x&y=%23")
        assert.are.equal(200, status)
      end
    end)
  end)
end)
