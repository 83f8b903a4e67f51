-- Proxy credentials from the environment never reach an error: the pool
-- reads http_proxy, https_proxy and all_proxy (lower or upper case) when it is
-- made, and libcurl quotes the proxy URL, userinfo included, in some of its
-- messages. The pool redacts the userinfo of those variables, and of any
-- "scheme://user:pass@" in a message at all.

local H = require "core_helper"

local SECRET = "s3cr3t-ENV"

-- Makes two requests (http and https base URLs, nothing listening) in a
-- child with the given environment; returns every error message, one a line.
local function messages_with(env)
  local port = H.closed_port()
  local out = H.run_child([[
    local core = require "envoke.core"
    for _, url in ipairs{ "http://127.0.0.1:]] .. port .. [[", "https://127.0.0.1:]] .. port .. [[" } do
      local pool = core.pool{ base_url = url, connect_timeout_ms = 2000 }
      local status, err = pool:request("POST", "/x", '{"a":1}')
      io.write(tostring(status), " ", tostring(err and err.kind), " ", tostring(err and err.message), "\n")
      pool:close()
    end
  ]], env)
  H.lacks(out, "AddressSanitizer") -- the sanitizer run's child is instrumented too
  return out
end

describe("proxy credentials from the environment", function()
  local names = { "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY" }

  for _, name in ipairs(names) do
    it("are not in an error when " .. name .. " carries them", function()
      for _, proxy in ipairs{
        "socks9://user:" .. SECRET .. "@127.0.0.1:1",          -- quoted: "Unsupported proxy scheme for '...'"
        "http://user:" .. SECRET .. "@127.0.0.1:" .. H.closed_port(),
        "socks9://user:p@ss-" .. SECRET .. "@127.0.0.1:1",     -- an unencoded '@' in the password
      } do
        local out = messages_with{ [name] = proxy }
        H.lacks(out, SECRET)
        H.lacks(out, "user:p@ss")
        assert.is_truthy(out:find("nil network", 1, true) or out:find("nil protocol", 1, true), out)
        if out:find("Unsupported proxy scheme", 1, true) then H.contains(out, "socks9://***@127.0.0.1:1") end
      end
    end)
  end

  it("are redacted when the scheme message quotes them (the case that leaked)", function()
    local out = messages_with{ all_proxy = "socks9://user:" .. SECRET .. "@127.0.0.1:1" }
    H.contains(out, "Unsupported proxy scheme for 'socks9://***@127.0.0.1:1'")
    -- A userinfo shorter than its replacement: the message grows.
    out = messages_with{ all_proxy = "socks9://x@127.0.0.1:1" }
    H.contains(out, "Unsupported proxy scheme for 'socks9://***@127.0.0.1:1'")
  end)

  -- The pool reads the variables once, when it is made (libcurl would look
  -- them up at every request): one set later is not used, so its credentials
  -- cannot reach a message either.
  it("are read when the pool is made: a proxy set later is not used", function()
    if not rawget(_G, "jit") then
      return pending("needs LuaJIT's FFI to change the environment of a running process")
    end
    local port = H.closed_port()
    local out = H.run_child([[
      local ffi = require "ffi"
      ffi.cdef "int setenv(const char *name, const char *value, int overwrite);"
      local core = require "envoke.core"
      local pool = core.pool{ base_url = "http://127.0.0.1:]] .. port .. [[" }
      ffi.C.setenv("http_proxy", "socks9://late:]] .. SECRET .. [[@127.0.0.1:1", 1)
      local status, err = pool:request("GET", "/x")
      io.write(tostring(status), " ", tostring(err and err.message), "\n")
    ]])
    H.lacks(out, SECRET)
    H.lacks(out, "socks9")
    H.contains(out, "nil Failed to connect to 127.0.0.1 port " .. port)
  end)
end)
