-- core.pool{...}: every option is validated, and a bad one raises a message
-- naming it ("envoke.core: option 'NAME' ...").

local H = require "core_helper"
local core = H.core

local BASE = "http://127.0.0.1:9"

local function with(overrides)
  local o = { base_url = BASE }
  for k, v in pairs(overrides) do o[k] = v end
  return o
end

local function pool_error(opts)
  return H.raises(core.pool, opts)
end

describe("core.pool options", function()
  it("accepts every option with valid values", function()
    local pool = core.pool{
      base_url = "https://127.0.0.1:8443/",
      username = "id", password = "key",
      connect_timeout_ms = 1, timeout_ms = 1,
      verify = false, ca_file = "/etc/ssl/certs/ca-certificates.crt",
      proxy = "", user_agent = "custom/1.0",
      max_body = 1, http2 = false, max_connections = 0,
    }
    assert.is_truthy(pool)
    pool:close()
    pool = core.pool{ base_url = BASE, bearer = "token", connect_timeout_ms = 60000,
      timeout_ms = 1, verify = true, proxy = "http://127.0.0.1:3128", max_body = 1073741824,
      http2 = true, max_connections = 64 }
    pool:close()
  end)

  it("requires a table", function()
    H.raises(core.pool)
    H.raises(core.pool, "http://127.0.0.1:9")
    H.raises(core.pool, 42)
  end)

  it("refuses an unknown option, naming it", function()
    H.contains(pool_error(with{ timeout = 5 }), "'timeout'")
    H.contains(pool_error(with{ Base_URL = BASE }), "'Base_URL'")
    H.contains(pool_error(with{ verify_peer = true }), "'verify_peer'")
    H.raises(core.pool, with{ [1] = "positional" })
  end)

  local bad = {
    base_url = { false, 42, "", "127.0.0.1:8080", "ftp://127.0.0.1/", "file:///etc/passwd",
      "http://user:pw@127.0.0.1/", "http://127.0.0.1/?a=1", "http://127.0.0.1/api?",
      "http://127.0.0.1\r\n", "http://127.0.0.1/\nX: y", "http://127.0.0.1\0.evil", {} },
    username = { 42, true, "id\r\n", "id\0" },
    password = { 42, true, "key\n", "key\0" },
    bearer = { 42, true, "tok\r\nX: y", "tok\0" },
    connect_timeout_ms = { 0, -1, 1.5, "100", true, 0 / 0, math.huge },
    timeout_ms = { 0, -1, 0.5, "100", false, 0 / 0, math.huge, -math.huge },
    verify = { "yes", 1, 0, {} },
    ca_file = { 42, true, "/tmp/ca\n.pem", "/tmp/ca\0.pem" },
    proxy = { 42, true, "http://127.0.0.1:3128\r\n", "http://127.0.0.1\0" },
    user_agent = { 42, true, "ua\r\nX-Evil: 1", "ua\n", "ua\0" },
    max_body = { 0, -1, 1.5, "10", true, 0 / 0, math.huge },
    http2 = { "yes", 1, 0 },
    max_connections = { -1, 1.5, "2", true, 0 / 0, math.huge },
  }
  local names = {}
  for name in pairs(bad) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    it("refuses a bad '" .. name .. "', naming it", function()
      for i, value in ipairs(bad[name]) do
        local opts = with{ [name] = value }
        if name == "base_url" then opts.base_url = value end
        -- Credentials come in pairs: give the partner so only the value is wrong.
        if name == "username" then opts.password = "key" end
        if name == "password" then opts.username = "id" end
        local msg = pool_error(opts)
        H.contains(msg, "envoke.core: ")
        H.contains(msg, "option '" .. name .. "'")
        assert.is_truthy(msg, "case " .. i)
      end
    end)
  end

  it("requires base_url", function()
    H.contains(pool_error{}, "option 'base_url'")
    H.contains(pool_error{ timeout_ms = 5 }, "option 'base_url'")
  end)

  it("requires username and password together", function()
    for _, opts in ipairs{ with{ username = "id" }, with{ password = "key" } } do
      local msg = pool_error(opts)
      H.contains(msg, "envoke.core: ")
      assert.is_truthy(msg:find("'password'", 1, true) or msg:find("'username'", 1, true), msg)
    end
  end)

  it("refuses bearer together with username/password", function()
    local msg = pool_error(with{ bearer = "tok", username = "id", password = "key" })
    H.contains(msg, "envoke.core: ")
    assert.is_truthy(msg:find("'bearer'", 1, true), msg)
  end)

  it("accepts http:// and https:// base URLs, with or without a path and trailing slash", function()
    for _, url in ipairs{ "http://127.0.0.1", "http://127.0.0.1:8080/", "https://example.com/api/v1/",
      "https://example.com:8443/api", "http://localhost:1" } do
      core.pool{ base_url = url }:close()
    end
  end)
end)
