-- The client's settings from the environment, as `sandbox/run` prints them:
-- ENVOKE_BASE_URL, ENVOKE_API_ID, ENVOKE_API_KEY and ENVOKE_CA_FILE.
local helper = require "core_helper"
local sandbox_server = require "sandbox_server"

describe("settings from the environment", function()
  local srv
  setup(function() srv = sandbox_server.start{ tls = true } end)
  teardown(function() if srv then srv:stop() end end)

  local function env(extra)
    local e = { ENVOKE_BASE_URL = srv.tls_url, ENVOKE_API_ID = srv.api_id, ENVOKE_API_KEY = srv.api_key }
    for k, v in pairs(extra or {}) do e[k] = v end
    return e
  end

  local PING = 'local ok, err = require("envoke").new{ retries = 0 }:ping() print(ok and "ok" or tostring(err))'

  it("reach the sandbox over HTTPS with its CA from ENVOKE_CA_FILE", function()
    assert.are.equal("ok\n", helper.run_child(PING, env{ ENVOKE_CA_FILE = srv.ca_file }))
  end)

  it("without ENVOKE_CA_FILE the sandbox's CA is unknown (the system store is used)", function()
    assert.truthy(helper.run_child(PING, env()):find("tls", 1, true))
  end)

  it("an option wins over the environment", function()
    local code = 'local ok, err = require("envoke").new{ retries = 0, ca_file = "/nonexistent/ca.pem" }:ping()'
      .. ' print(ok and "ok" or err.kind)'
    assert.are_not.equal("ok\n", helper.run_child(code, env{ ENVOKE_CA_FILE = srv.ca_file }))
  end)

  it("without credentials anywhere, envoke.new says which variables to set", function()
    local out = helper.run_child('print(select(2, pcall(require("envoke").new)))',
      { ENVOKE_BASE_URL = srv.url })
    assert.truthy(out:find("ENVOKE_API_ID", 1, true) and out:find("ENVOKE_API_KEY", 1, true), out)
  end)
end)
