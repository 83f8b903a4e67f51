-- The contact suite again under every other reading of what Envoke's
-- documentation leaves open (sandbox settings, see sandbox/README.md): the
-- client must be right whichever way the real Envoke goes.
local envoke = require "envoke"
local Sandbox = require "envoke.sandbox"
local cjson = require "cjson"
local suite = require "contact_suite"
local sandbox_server = require "sandbox_server"

-- One setting at a time, then all of them together.
local READINGS = {
  { unknown_names = "ignore" },
  { overlong = "truncate" },
  { write_status = 201 },
  { refused_downgrade = "error" },
  { get_by_id = false },
}
local all = {}
for _, r in ipairs(READINGS) do for k, v in pairs(r) do all[k] = v end end
READINGS[#READINGS + 1] = all

local function label(r)
  local parts = {}
  for k, v in pairs(r) do parts[#parts + 1] = k .. "=" .. tostring(v) end
  table.sort(parts)
  return table.concat(parts, ", ")
end

local busted = { describe = describe, it = it, before_each = before_each, assert = assert }

for _, reading in ipairs(READINGS) do
  describe("contact API, in-process, reading " .. label(reading), function()
    local server = Sandbox.new{ api_id = "sandbox", api_key = "sandbox" }
    suite{
      busted = busted,
      settings = reading,
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
end

describe("contact API over HTTP, every other reading at once (" .. label(all) .. ")", function()
  local srv
  setup(function() srv = sandbox_server.start() end)
  teardown(function() if srv then srv:stop() end end)
  suite{
    busted = busted,
    settings = all,
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

describe("sandbox settings", function()
  it("refuse a value that is no reading", function()
    local server = Sandbox.new{}
    local status, _, raw = server:handle("POST", "/_sandbox/settings", "", {}, cjson.encode{ write_status = 202 })
    assert.are.equal(400, status)
    assert.truthy(raw:find("write_status must be one of 200, 201", 1, true), raw)
  end)

  it("serve the .json form of every route", function()
    local client = envoke.new{ transport = "in_process" }
    assert(client:contact{ email = "j@example.com" }:insert())
    local list = assert(client:request("GET", "/v1/contacts.json"))
    assert.are.equal(1, #list)
    assert.is_table(assert(client:request("GET", "/v1/settings.json")))
  end)
end)
