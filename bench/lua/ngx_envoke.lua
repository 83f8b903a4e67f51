--- envoke-save-ngx: lua-envoke's sequential save loop inside one nginx
-- worker, through the cosocket transport (the client's default there).
-- Runs inside nginx (bench/lua/ngx_measure.lua drives it).
local M = {}

function M.setup(url)
  local client = require("envoke").new{ base_url = url, api_id = "id", api_key = "key", retries = 0 }
  return function(n)
    local ok = 0
    for _ = 1, n do
      if client:contact{ id = 1234 }:set("city", "Toronto"):save() then ok = ok + 1 end
    end
    return ok
  end
end

-- Run as a script (bench/run), it drives the measurement; inside nginx it is required.
if rawget(_G, "arg") and arg[0] and arg[0]:find("ngx_envoke%.lua$") then
  require("ngx_measure").main(arg[1], arg[2], "ngx_envoke")
end

return M
