-- Everything beyond contacts, against the sandbox over real HTTP (nginx on
-- 127.0.0.1), through the default libcurl transport.
local envoke = require "envoke"
local sandbox_server = require "sandbox_server"
local cjson = require "cjson"
local suite = require "resource_suite"

describe("resources, sandbox over HTTP", function()
  local srv
  setup(function() srv = sandbox_server.start() end)
  teardown(function() if srv then srv:stop() end end)

  suite{
    busted = { describe = describe, it = it, before_each = before_each, assert = assert },
    client = function(opts)
      local o = { base_url = srv.url, api_id = srv.api_id, api_key = srv.api_key }
      for k, v in pairs(opts or {}) do o[k] = v end
      return envoke.new(o)
    end,
    control = function(method, path, body)
      local status, _, raw = srv:request(method, path, body)
      return status, raw and raw ~= "" and cjson.decode(raw) or nil
    end,
  }
end)
