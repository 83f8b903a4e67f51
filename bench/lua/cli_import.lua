--- The envoke command's import beside save_all on the same rows, against the
-- fixed answer delayed by the server (latency-bound), at concurrency N:
--    cli rows=R concurrency=N latency_ms=L cli_seconds=S save_all_seconds=S limit_seconds=S cli_hwm_kb=K
--    lua5.4 bench/lua/cli_import.lua BASE_URL ROWS N LATENCY_MS
-- BASE_URL is the slow location (bench/server.lua's /slow prefix). The
-- physical limit is rows x latency / concurrency.
local measure = require "measure"
local gettime = require("socket.core").gettime

local url, rows, concurrency = measure.args()
local latency = tonumber(arg[4]) or 50
measure.use_checkout()

local file = os.tmpname()
local f = assert(io.open(file, "w"))
f:write("id,city\n")
for i = 1, rows do f:write(i, ",Toronto\n") end
f:close()

local lua = rawget(_G, "jit") and "luajit" or "lua" .. _VERSION:match("%d+%.%d+")
-- GNU time reports the command's peak RSS, where it is installed.
local timer = io.open("/usr/bin/time", "r") and "/usr/bin/time -f 'hwm_kb=%M' " or ""
local cmd = ("ENVOKE_BASE_URL=%s ENVOKE_API_ID=id ENVOKE_API_KEY=key %s%s bin/envoke import %s"
  .. " --op save --keyfield id --concurrency %d --progress-interval 3600 2>&1"):format(url, timer, lua, file,
  concurrency)
local t0 = gettime()
local p = io.popen(cmd)
local out = p:read("*a")
p:close()
local cli_seconds = gettime() - t0
os.remove(file)
if not out:find(("imported: %d ok, 0 failed"):format(rows), 1, true) then
  io.stderr:write("the import failed: ", out, "\n")
  os.exit(1)
end

local client = require("envoke").new{ base_url = url, api_id = "id", api_key = "key", retries = 0 }
local i = 0
local t1 = gettime()
local _, summary = client:save_all(function()
  if i >= rows then return nil end
  i = i + 1
  return client:contact{ id = i }:set("city", "Toronto")
end, { concurrency = concurrency, results = false })
local save_all_seconds = gettime() - t1
if summary.succeeded ~= rows then
  io.stderr:write("save_all failed\n")
  os.exit(1)
end
io.stdout:write(("cli rows=%d concurrency=%d latency_ms=%d cli_seconds=%.3f save_all_seconds=%.3f"
  .. " limit_seconds=%.3f cli_hwm_kb=%s\n"):format(rows, concurrency, latency, cli_seconds, save_all_seconds,
  rows * latency / 1000 / concurrency, out:match("hwm_kb=(%d+)") or "?"))
