-- The HAProxy transport's HTTP, inside HAProxy (Lua 5.3, one thread),
-- against the echo server and the sandbox: what it sends, how it reads,
-- its cap, its errors, where it refuses (run time, host names, TLS it
-- cannot verify), TLS through `via`, keep-alive across service calls, and
-- non-blocking calls on HAProxy tasks. Each check's code runs in the rig's
-- HAProxy (see haproxy_runner for the helpers in its scope).
local haproxy_rig = require "haproxy_rig"

if _VERSION ~= "Lua 5.3" or rawget(_G, "jit") or not haproxy_rig.available() then
  describe("HAProxy transport", function()
    pending("runs under lua5.3 only, with haproxy installed (make deps): HAProxy embeds Lua 5.3")
  end)
  return
end

-- TLS through HAProxy itself: plain HTTP from Lua to these listeners, whose
-- server lines verify the sandbox's certificate (or, with the system's CA
-- store, refuse it).
local VIA = [[
listen envoke_tls
  mode tcp
  bind abns@envoke-tls
  server api 127.0.0.1:@SANDBOX_TLS_PORT@ ssl verify required ca-file @CA_FILE@ sni str(localhost)

listen envoke_tls_unknown_ca
  mode tcp
  bind abns@envoke-tls-unknown-ca
  server api 127.0.0.1:@SANDBOX_TLS_PORT@ ssl verify required ca-file @SYSTEM_CA@ sni str(localhost)
]]

describe("HAProxy transport", function()
  local rig
  setup(function() rig = haproxy_rig.start{ echo = true, config = VIA } end)
  teardown(function() if rig then rig:stop() end end)

  describe("requests", function()
    it("sends what the curl transport sends: request line, auth, user agent, JSON headers, no gzip", function()
      rig:run[[
        local t = transport{ api_id = "id", api_key = "k:ey" }
        local status, body, headers = t:request("PATCH", "/anything?x=1&y=%20", { city = "Toronto" })
        assert.are.equal(200, status)
        assert.are.equal("application/json", headers["content-type"])
        local e = cjson.decode(body)
        assert.are.equal("PATCH /anything?x=1&y=%20 HTTP/1.1", e.request_line)
        assert.are.equal("Basic aWQ6azpleQ==", e.headers.authorization)
        assert.truthy(e.headers["user-agent"]:find("^lua%-envoke/%d+%.%d+%.%d+$"),
          e.headers["user-agent"])
        assert.are.equal("application/json", e.headers["content-type"])
        assert.are.equal("application/json", e.headers.accept)
        assert.is_nil(e.headers["accept-encoding"]) -- no inflater without LuaJIT's FFI
        assert.are.equal(("127.0.0.1:%d"):format(cfg.echo.port), e.headers.host)
        assert.are.equal('{"city":"Toronto"}', e.body)
      ]]
    end)

    it("frames bodies as curl does and keeps one connection for all of it", function()
      rig:run[[
        local t = transport{ api_id = "framing", api_key = "k" }
        local e = cjson.decode((select(2, t:request("PATCH", "/anything"))))
        assert.are.equal("0", e.headers["content-length"])
        e = cjson.decode((select(2, t:request("DELETE", "/anything", nil, { ["X-Extra"] = 7 }))))
        assert.is_nil(e.headers["content-length"])
        assert.are.equal("7", e.headers["x-extra"])
        local status, body, headers = t:request("HEAD", "/bytes/5000")
        assert.are.equal(200, status)
        assert.are.equal("", body)
        assert.are.equal("5000", headers["content-length"])
        assert.are.equal(pattern(300), select(2, t:request("GET", "/bytes/300")))
        assert.are.equal(1, t.stats.connections)
        assert.are.equal(3, t.stats.reused)
      ]]
    end)
  end)

  describe("responses", function()
    it("reads Content-Length and chunked bodies byte for byte, every status, repeated headers", function()
      rig:run[[
        local t = transport{ api_id = "bodies", api_key = "k" }
        assert.are.equal(pattern(70000), select(2, t:request("GET", "/bytes/70000")))
        local status, body, headers = t:request("GET", "/chunked/100000?pieces=9")
        assert.are.equal(200, status)
        assert.are.equal("chunked", headers["transfer-encoding"])
        assert.are.equal(pattern(100000), body)
        status, body = t:request("GET", "/status/404")
        assert.are.equal(404, status)
        assert.are.equal("GET", cjson.decode(body).method)
        local _, _, h = t:request("GET", "/headers")
        assert.are.equal("one, two", h["x-repeated"])
        assert.are.equal(204, (t:request("GET", "/status/204")))
        assert.are.equal(1, t.stats.connections)
      ]]
    end)

    it("caps the body at max_body, by Content-Length and chunked (kind too_large)", function()
      rig:run[[
        local t = transport{ max_body = 4000 }
        assert.are.equal(pattern(4000), select(2, t:request("GET", "/bytes/4000")))
        for _, path in ipairs{ "/bytes/4001", "/chunked/9000?pieces=3" } do
          local status, err = t:request("GET", path)
          assert.is_nil(status, path)
          assert.are.equal("too_large", err.kind, path)
          assert.truthy(err.message:find("max_body (4000 bytes)", 1, true), err.message)
        end
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
      rig:run[[
        local t = transport{ timeout = 0.3, api_id = "slow", api_key = "k" }
        local status, err = t:request("GET", "/delay/1500")
        assert.is_nil(status)
        assert.are.equal("timeout", err.kind, err.message)
        assert.is_true(err.retryable)
        assert.are.equal(200, (t:request("GET", "/anything")))
        assert.are.equal(2, t.stats.connections)
      ]]
    end)

    it("reports a refused connection as a network error never sent", function()
      rig:run[[
        local status, err = transport{ base_url = "http://127.0.0.1:1" }:request("GET", "/")
        assert.is_nil(status)
        assert.are.equal("network", err.kind)
        assert.is_false(err.sent)
      ]]
    end)

    it("refuses a host name it cannot resolve (kind unavailable, never sent), naming option via", function()
      rig:run[[
        local status, err = transport{ base_url = "http://api.example.com" }:request("GET", "/")
        assert.is_nil(status)
        assert.are.equal("unavailable", err.kind)
        assert.is_false(err.sent)
        assert.is_false(err.retryable)
        assert.truthy(err.message:find("'via'", 1, true), err.message)
        -- localhost needs no resolver
        assert.are.equal(200, (transport{ base_url = cfg.echo.url:gsub("127%.0%.0%.1", "localhost") }
          :request("GET", "/anything")))
      ]]
    end)

    it("answers unavailable at once where HAProxy has no sockets (a lua-load'ed file's body)", function()
      local at_load = rig:run("return { ok = at_load.ok, kind = at_load.kind, sent = at_load.sent }")
      assert.are.same({ ok = false, kind = "unavailable", sent = false }, at_load)
      -- The client made there works once HAProxy runs.
      assert.are.equal("Envoke Sandbox", rig:run("return (at_load.client:ping()).name"))
    end)
  end)

  describe("TLS", function()
    it("refuses https that connect_ssl cannot verify (kind tls, never sent), naming via and verify", function()
      rig:run[[
        local c = client{ base_url = cfg.sandbox.tls_url }
        local ok, err = c:ping()
        assert.is_nil(ok)
        assert.are.equal("tls", err.kind)
        assert.is_false(err.sent)
        assert.truthy(err.message:find("verify no certificate", 1, true), err.message)
        assert.truthy(err.message:find("'via'", 1, true), err.message)
      ]]
    end)

    it("with verify = false speaks TLS through connect_ssl, unauthenticated", function()
      assert.are.equal("Envoke Sandbox", rig:run[[
        local c = client{ base_url = cfg.sandbox.tls_url, verify = false }
        return (c:ping()).name
      ]])
    end)

    it("with via, HAProxy's server line does the verified TLS; an unknown CA fails the call", function()
      rig:run[[
        local t = require("envoke.transport.haproxy")
        local function via(address)
          return envoke.new{ base_url = cfg.sandbox.tls_url, api_id = cfg.sandbox.api_id,
            api_key = cfg.sandbox.api_key, retries = 0,
            transport = t.new{ base_url = cfg.sandbox.tls_url, api_id = cfg.sandbox.api_id,
              api_key = cfg.sandbox.api_key, via = address } }
        end
        assert.are.equal("Envoke Sandbox", via("abns@envoke-tls"):ping().name)
        local ok, err = via("abns@envoke-tls-unknown-ca"):ping()
        assert.is_nil(ok)
        assert.are.equal("network", err.kind, err.message)
      ]]
    end)
  end)

  describe("keep-alive", function()
    it("reuses an idle connection across service calls and clients (one thread)", function()
      local first = rig:run[[
        local t = transport{ api_id = "across", api_key = "k" }
        local e = cjson.decode((select(2, t:request("GET", "/anything"))))
        return { connection = e.connection, connections = t.stats.connections }
      ]]
      local second = rig:run[[
        local t = transport{ api_id = "across", api_key = "k" }
        local e = cjson.decode((select(2, t:request("GET", "/anything"))))
        return { connection = e.connection, connections = t.stats.connections, reused = t.stats.reused }
      ]]
      assert.are.equal(1, first.connections)
      assert.are.equal(0, second.connections)
      assert.are.equal(1, second.reused)
      assert.are.equal(first.connection, second.connection)
    end)

    it("keeps accounts apart: other credentials never get that connection", function()
      assert.are.equal(1, rig:run[[
        transport{ api_id = "apart-1", api_key = "k" }:request("GET", "/anything")
        local t = transport{ api_id = "apart-2", api_key = "k" }
        t:request("GET", "/anything")
        return t.stats.connections
      ]])
    end)
  end)

  describe("non-blocking calls", function()
    it("run as HAProxy tasks: submit, perform, finished, in any order of completion", function()
      rig:run[[
        local t = transport()
        local slow = t:submit("GET", "/delay/300")
        local fast = t:submit("GET", "/anything")
        assert.are.equal(2, t:pending())
        local got = {}
        while t:pending() > 0 do
          t:perform(1000)
          local id, status = t:finished()
          if id then got[#got + 1] = id; assert.are.equal(200, status) end
        end
        assert.are.same({ fast, slow }, got)
      ]]
    end)

    it("serve the client's *_async calls and poll, and cancel a call in flight", function()
      rig:run[[
        local c = client()
        local h = c:ping_async()
        assert.are.equal("Envoke Sandbox", h:wait(5000).name)
        local seen
        c:ping_async(function(settings) seen = settings end)
        while c:pending() > 0 do c:poll(100) end
        assert.are.equal("Envoke Sandbox", seen.name)
        control("POST", "/_sandbox/faults", { path = "/v1/settings", kind = "delay", delay_ms = 1000, count = 1 })
        local slow = c:ping_async()
        assert.is_true(slow:cancel())
        local _, err = slow:wait(0)
        assert.are.equal("cancelled", err.kind)
        c:close()
      ]]
    end)
  end)
end)

describe("HAProxy transport with two threads sharing one Lua state (lua-load)", function()
  local rig
  setup(function() rig = haproxy_rig.start{ global = "  nbthread 2" } end)
  teardown(function() if rig then rig:stop() end end)

  -- A socket must not move between threads: no connection is kept then.
  it("gives each request a connection of its own, and every call works", function()
    for _ = 1, 4 do
      local stats = rig:run[[
        local t = transport{ api_id = cfg.sandbox.api_id, api_key = cfg.sandbox.api_key }
        assert.are.equal(200, (t:request("GET", "/v1/settings")))
        assert.are.equal(200, (t:request("GET", "/v1/settings")))
        return t.stats
      ]]
      assert.are.same({ requests = 2, connections = 2, reused = 0 }, stats)
    end
  end)
end)

describe("HAProxy transport with HAProxy's default buffer (16 KB)", function()
  local rig
  setup(function() rig = haproxy_rig.start{ echo = true, global = "  tune.bufsize 16384" } end)
  teardown(function() if rig then rig:stop() end end)

  -- HAProxy 2.6.12's Lua sockets wait out the socket timeout for each
  -- buffer an answer fills beyond the first (README, HAProxy); the answer
  -- still arrives whole within the call's timeout.
  it("reads an answer larger than the buffer whole", function()
    rig:run[[
      local t = transport{ timeout = 3 }
      local status, body = t:request("GET", "/bytes/20000")
      assert.are.equal(200, status, body and body.message)
      assert.are.equal(pattern(20000), body)
    ]]
  end)
end)
