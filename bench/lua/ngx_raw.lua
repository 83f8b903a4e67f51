--- ngx-raw: the reference for the cosocket case, what an OpenResty user
-- writes by hand: a kept-alive cosocket, the same PATCH with Basic auth and
-- a JSON body from cjson, the answer's headers read line by line and its
-- JSON decoded. Runs inside nginx (bench/lua/ngx_measure.lua drives it).
-- luacheck: globals ngx
local M = {}

function M.setup(url)
  local cjson = require "cjson"
  local host, port = url:match("^http://([^:/]+):(%d+)")
  port = tonumber(port)
  local head = "PATCH /v1/contacts/1234 HTTP/1.1\r\nHost: " .. host .. ":" .. port
    .. "\r\nAuthorization: Basic " .. ngx.encode_base64("id:key")
    .. "\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: "
  local tcp, opts = ngx.socket.tcp, { pool = "bench-raw" }
  return function(n)
    local ok = 0
    for _ = 1, n do
      local body = cjson.encode{ city = "Toronto" }
      local sock = tcp()
      sock:settimeout(10000)
      assert(sock:connect(host, port, opts))
      assert(sock:send(head .. #body .. "\r\n\r\n" .. body))
      local status = assert(sock:receive("*l"))
      local length
      while true do
        local line = assert(sock:receive("*l"))
        if line == "" then break end
        -- Plain string tests (a Lua pattern per line would cost more than the rest).
        if #line > 15 and line:sub(1, 15):lower() == "content-length:" then length = tonumber(line:sub(16)) end
      end
      local data = cjson.decode(assert(sock:receive(length)))
      sock:setkeepalive(60000)
      if status:sub(10, 12) == "200" and data.success == true then ok = ok + 1 end
    end
    return ok
  end
end

-- Run as a script (bench/run), it drives the measurement; inside nginx it is required.
if rawget(_G, "arg") and arg[0] and arg[0]:find("ngx_raw%.lua$") then
  require("ngx_measure").main(arg[1], arg[2], "ngx_raw")
end

return M
