-- Timeouts never turn into "no timeout": libcurl reads 0 ms as no limit, so
-- the curl transport rounds a positive fraction of a millisecond up to 1 and
-- the pool refuses 0.

local H = require "core_helper"
local echo_server = require "echo_server"
local transport = require "envoke.transport.curl"

describe("timeouts", function()
  local srv

  lazy_setup(function() srv = echo_server.start{ tls = false } end)
  lazy_teardown(function() if srv then srv:stop() end end)

  it("a sub-millisecond timeout ends the call (rounded up to 1 ms, not down to none)", function()
    local pool = transport.new{ base_url = srv.url, timeout = 0.0004 }
    local status, err = pool:request("GET", "/delay/1500")
    pool:close()
    assert.is_nil(status)
    assert.are.equal("timeout", H.check_err(err).kind)
  end)

  it("a sub-millisecond connect timeout ends the call too", function()
    local hole = H.blackhole()
    local pool = transport.new{ base_url = "http://127.0.0.1:" .. hole.port, connect_timeout = 0.0004 }
    local status, err = pool:request("GET", "/never-accepted")
    pool:close()
    hole.close()
    assert.is_nil(status)
    assert.are.equal("timeout", H.check_err(err).kind)
  end)

  it("seconds become whole milliseconds", function()
    local pool = transport.new{ base_url = srv.url, timeout = 0.3, connect_timeout = 2.5 }
    local status, err = pool:request("GET", "/delay/2000")
    assert.is_nil(status)
    assert.are.equal("timeout", H.check_err(err).kind)
    assert.are.equal(200, (pool:request("GET", "/delay/10")))
    pool:close()
  end)

  it("the pool refuses 0 with a message that says why", function()
    for _, name in ipairs{ "timeout_ms", "connect_timeout_ms" } do
      local msg = H.raises(H.pool, srv.url, { [name] = 0 })
      H.contains(msg, "envoke.core: option '" .. name .. "' must be at least 1")
      H.contains(msg, "no timeout")
    end
  end)
end)
