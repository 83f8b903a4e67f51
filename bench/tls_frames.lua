-- TLS CPU per frame: how much CPU one perform(0) spends when new HTTPS
-- connections open, against a private nginx on 127.0.0.1 (not part of
-- `make bench`; run it on its own, from the checkout, after `make`):
--
--   ./run bench/tls_frames.lua [ROUNDS]          (./run luajit ...; ROUNDS default 15)
--
-- Each round opens 8 HTTP/1.1 connections at once, on a new pool, and drives
-- them as a frame loop would: perform(0), then 1 ms of sleep, timing the CPU
-- of each perform(0) with os.clock(). The reference, in the same run, is
-- plain libcurl with its default CA settings (bench/c/tls_burst.c), driven the
-- same way. Cases: the system CA store (the server's CA is unknown to it, so
-- every handshake ends at verification, after the store was consulted) and a
-- ca_file naming the server's CA (full handshakes). Also: the CPU of making
-- the pool (where the store is now read), and 8 requests over HTTP/2.
-- Medians over the rounds; the max is the worst round's worst perform.

local ROOT = debug.getinfo(1, "S").source:match("^@(.*)/bench/[^/]*$") or "."
package.path = ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;" .. ROOT .. "/?.lua;"
  .. ROOT .. "/spec/support/?.lua;" .. package.path
local version = rawget(_G, "jit") and "luajit" or _VERSION:match("%d%.%d")
package.cpath = ROOT .. "/build/" .. version .. "/?.so;" .. package.cpath

local core = require "envoke.core"
local nginx = require "sandbox.nginx"
local shell = require "sandbox.shell"

local ROUNDS = tonumber(arg[1]) or 15
local N = 8

local function median(list)
  local t = {}
  for i, v in ipairs(list) do t[i] = v end
  table.sort(t)
  if #t == 0 then return 0 end
  return #t % 2 == 1 and t[(#t + 1) / 2] or (t[#t / 2] + t[#t / 2 + 1]) / 2
end

local function max_of(list)
  local m = 0
  for _, v in ipairs(list) do if v > m then m = v end end
  return m
end

-- One burst on a new pool: CPU to make it, the worst perform(0), the total.
local function pool_round(opts, http2)
  local c0 = os.clock()
  local o = { http2 = http2 or false }
  for k, v in pairs(opts) do o[k] = v end
  local pool = core.pool(o)
  local made = (os.clock() - c0) * 1000
  for i = 1, N do pool:submit("GET", "/frame?i=" .. i) end
  local worst, total, done, ok = 0, 0, 0, 0
  while done < N do
    local t0 = os.clock()
    pool:perform(0)
    local dt = (os.clock() - t0) * 1000
    total = total + dt
    if dt > worst then worst = dt end
    while true do
      local id, status = pool:finished()
      if not id then break end
      done = done + 1
      if status then ok = ok + 1 end
    end
    core.sleep(1)
  end
  pool:close()
  return made, worst, total, ok
end

local function c_rounds(exe, url, ca)
  local out = shell.run(("%s %s %s %d %d"):format(shell.quote(exe), shell.quote(url), ca and shell.quote(ca) or "-",
    ROUNDS, N))
  local worst, total, ok = {}, {}, 0
  for w, t, k in out:gmatch("([%d.]+) ([%d.]+) (%d+)") do
    worst[#worst + 1], total[#total + 1], ok = tonumber(w), tonumber(t), ok + tonumber(k)
  end
  return worst, total, ok
end

local srv = nginx.start{
  tls_port = true,
  server = [[ location / { default_type application/json; return 200 '{"ok":true}'; } ]],
}
local dir = shell.tmpdir("tls-frames")
local exe = dir .. "/tls_burst"
local out, code = shell.run("gcc -O2 -std=c99 -D_POSIX_C_SOURCE=200809L -o " .. shell.quote(exe) .. " "
  .. shell.quote(ROOT .. "/bench/c/tls_burst.c") .. " -lcurl")
if code ~= 0 then
  srv:stop()
  error("cannot build bench/c/tls_burst.c: " .. out)
end

local rows = {}
local function report(name, made, worst, total, ok, runs)
  rows[#rows + 1] = ("| %s | %s | %.2f | %.2f | %.2f | %d/%d |"):format(name,
    made and ("%.2f"):format(median(made)) or "", median(worst), max_of(worst), median(total), ok, runs * N)
end

for _, case in ipairs{
  { "system store", nil },
  { "ca_file", srv.ca_file },
} do
  local name, ca = case[1], case[2]
  local worst, total, ok = c_rounds(exe, srv.tls_url .. "/frame", ca)
  report("libcurl defaults, " .. name, nil, worst, total, ok, ROUNDS)
  local made, pworst, ptotal, pok = {}, {}, {}, 0
  for r = 1, ROUNDS do
    local m, w, t, k = pool_round({ base_url = srv.tls_url, ca_file = ca })
    made[r], pworst[r], ptotal[r], pok = m, w, t, pok + k
  end
  report("envoke.core pool, " .. name, made, pworst, ptotal, pok, ROUNDS)
end
do
  local made, worst, total, ok = {}, {}, {}, 0
  for r = 1, ROUNDS do
    local m, w, t, k = pool_round({ base_url = srv.tls_url, ca_file = srv.ca_file }, true)
    made[r], worst[r], total[r], ok = m, w, t, ok + k
  end
  report("envoke.core pool, ca_file, HTTP/2", made, worst, total, ok, ROUNDS)
end

srv:stop()
shell.run("rm -rf " .. shell.quote(dir))

print(("TLS CPU per frame: %d new connections per round, %d rounds, %s, libcurl %s"):format(N, ROUNDS,
  version, core.curl_version))
print("")
print("| case | pool made, CPU ms | worst perform(0), CPU ms (median) | worst perform(0), CPU ms (max) "
  .. "| CPU ms per burst (median) | answered |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for _, row in ipairs(rows) do print(row) end
