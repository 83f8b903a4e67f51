-- The sandbox's fault controls give the same outcomes through the cosocket
-- transport inside nginx as through libcurl: each scenario runs once with
-- the curl transport here and once inside nginx, and both must match the
-- documented outcome (spec/resilience/retry_spec.lua) and each other.
local envoke = require "envoke"
local cjson = require "cjson"
local openresty_rig = require "openresty_rig"
local scenarios = require "fault_scenarios"

describe("faults inside nginx", function()
  local rig, srv
  setup(function()
    rig = openresty_rig.start()
    srv = rig.sandbox
  end)
  teardown(function() if rig then rig:stop() end end)

  -- The curl side, in this process.
  local function curl_env()
    return {
      client = function(opts)
        local o = { base_url = srv.url, api_id = srv.api_id, api_key = srv.api_key, transport = "curl" }
        for k, v in pairs(opts or {}) do o[k] = v end
        return envoke.new(o)
      end,
      control = function(method, path, body)
        local status, _, raw = srv:request(method, path, body)
        return status, raw and raw ~= "" and cjson.decode(raw) or nil
      end,
    }
  end

  for _, s in ipairs(scenarios.list) do
    it(s.name .. ": same outcome as curl", function()
      local with_curl = scenarios.run(s, curl_env())
      local with_ngx = rig:run("return scenario(args.name)", { name = s.name })
      for k, v in pairs(s.expect) do
        assert.are.same(v, with_curl[k], "curl: " .. k)
        assert.are.same(v, with_ngx[k], "cosockets: " .. k)
      end
      assert.are.same(with_curl, with_ngx)
    end)
  end
end)
