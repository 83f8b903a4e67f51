-- Everything beyond contacts through the in-process transport (no socket).
local envoke = require "envoke"
local Sandbox = require "envoke.sandbox"
local cjson = require "cjson"
local suite = require "resource_suite"

describe("resources, in-process transport", function()
  local server = Sandbox.new{ api_id = "sandbox", api_key = "sandbox" }
  suite{
    busted = { describe = describe, it = it, before_each = before_each, assert = assert },
    client = function(opts)
      local o = { transport = "in_process", sandbox = { server = server } }
      for k, v in pairs(opts or {}) do o[k] = v end
      return envoke.new(o)
    end,
    control = function(method, path, body)
      local status, _, raw = server:handle(method, path, "", {}, body and cjson.encode(body) or "")
      return status, raw ~= "" and cjson.decode(raw) or nil
    end,
  }
end)
