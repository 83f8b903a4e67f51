-- Secrets (password, bearer token, proxy credentials, the Authorization
-- header) never appear in an error message, an err table or tostring(pool),
-- whatever fails.

local H = require "core_helper"
local echo_server = require "echo_server"

local PASSWORD = "s3cr3t-PASSWORD"
local TOKEN = "s3cr3t-TOKEN"
local PROXY_PASSWORD = "s3cr3t-PROXY"

-- Every form a secret could leak in.
local function forbidden()
  return { "s3cr3t", H.base64("id:" .. PASSWORD), H.base64("proxy-user:" .. PROXY_PASSWORD),
    H.base64(PASSWORD), H.base64(TOKEN) }
end

local function assert_clean(what, value)
  for _, text in ipairs(H.strings_in(value)) do
    for _, secret in ipairs(forbidden()) do
      if text:find(secret, 1, true) then
        error(string.format("%s leaks %q: %q", what, secret, text), 2)
      end
    end
  end
end

describe("secrets", function()
  local srv, closed_port

  lazy_setup(function()
    srv = echo_server.start()
    closed_port = H.closed_port()
  end)
  lazy_teardown(function() if srv then srv:stop() end end)

  -- Pools of every credential kind against a base URL.
  local function pools(base_url, extra)
    local list = {}
    for _, creds in ipairs{
      { username = "id", password = PASSWORD },
      { bearer = TOKEN },
      { proxy = "http://proxy-user:" .. PROXY_PASSWORD .. "@127.0.0.1:" .. closed_port },
    } do
      local opts = {}
      for k, v in pairs(extra or {}) do opts[k] = v end
      for k, v in pairs(creds) do opts[k] = v end
      list[#list + 1] = H.pool(base_url, opts)
    end
    return list
  end

  it("are not in tostring(pool), open or closed", function()
    for _, pool in ipairs(pools(srv.url)) do
      assert_clean("tostring", tostring(pool))
      pool:close()
      assert_clean("tostring", tostring(pool))
    end
  end)

  it("are not in err for refused, DNS, timeout, TLS and too_large failures", function()
    local cases = {
      { "http://127.0.0.1:" .. closed_port, {}, "/refused" },
      { "http://host.example.invalid", {}, "/dns" },
      { srv.url, { timeout_ms = 200 }, "/delay/3000" },
      { srv.tls_url, {}, "/tls" },
      { srv.url, { max_body = 10 }, "/bytes/100" },
      { srv.url, {}, "/drop" },
      { srv.url, {}, "/truncated/1000" },
    }
    for _, case in ipairs(cases) do
      for _, pool in ipairs(pools(case[1], case[2])) do
        local status, err = pool:request("POST", case[3], '{"x":1}')
        -- The proxy pool fails at the proxy; the others at the target.
        assert.is_nil(status, case[3])
        H.check_err(err)
        assert_clean("err for " .. case[3], err)
        local id = pool:submit("GET", case[3])
        local results = H.drain(pool, 1, 10000)
        assert_clean("async err for " .. case[3], results[id])
        pool:close()
      end
    end
  end)

  it("are not in errors raised for bad arguments", function()
    for _, pool in ipairs(pools(srv.url)) do
      local raised = {
        H.raises(pool.request, pool, "TRACE", "/x"),
        H.raises(pool.request, pool, "GET", "no-slash"),
        H.raises(pool.request, pool, "GET", "/a\r\nb"),
        H.raises(pool.request, pool, "GET", "/x", nil, { ["Bad Name"] = "v" }),
        H.raises(pool.request, pool, "POST", "/x", { bad = 0 / 0 }),
        H.raises(pool.submit, pool, "GET", "/x", nil, { ["X-Ok"] = "v\r\n" }),
      }
      pool:close()
      raised[#raised + 1] = H.raises(pool.request, pool, "GET", "/x")
      raised[#raised + 1] = H.raises(pool.pending, pool)
      assert_clean("raised", raised)
    end
  end)

  it("are not in errors about the options themselves", function()
    local raised = {
      H.raises(H.pool, srv.url, { username = "id", password = PASSWORD .. "\r\n" }),
      H.raises(H.pool, srv.url, { username = "id", password = PASSWORD .. "\0" }),
      H.raises(H.pool, srv.url, { password = PASSWORD }),
      H.raises(H.pool, srv.url, { bearer = TOKEN .. "\n" }),
      H.raises(H.pool, srv.url, { bearer = TOKEN, username = "id", password = PASSWORD }),
      H.raises(H.pool, srv.url, { proxy = "http://u:" .. PROXY_PASSWORD .. "@127.0.0.1:1\r\n" }),
      H.raises(H.pool, srv.url, { username = "id", password = PASSWORD, timeout_ms = -1 }),
      H.raises(H.pool, srv.url, { bearer = TOKEN, max_body = 0 }),
      H.raises(H.pool, srv.url, { bearer = TOKEN, unknown_option = TOKEN }),
      H.raises(H.pool, "http://id:" .. PASSWORD .. "@127.0.0.1/", {}),
    }
    assert_clean("option error", raised)
  end)

  it("are not in errors about a secret-bearing header value", function()
    local pool = H.pool(srv.url)
    local raised = {
      H.raises(pool.request, pool, "GET", "/x", nil, { Authorization = "Bearer " .. TOKEN .. "\r\nX: y" }),
      H.raises(pool.request, pool, "GET", "/x", nil, { ["X-Api-Key"] = PASSWORD .. "\0" }),
    }
    pool:close()
    assert_clean("header error", raised)
  end)

  it("still reach the server where they belong", function()
    local pool = H.pool(srv.url, { username = "id", password = PASSWORD })
    local _, e = H.echo(pool, "GET", "/auth-ok")
    assert.are.equal("Basic " .. H.base64("id:" .. PASSWORD), e.headers.authorization)
    pool:close()
  end)
end)
