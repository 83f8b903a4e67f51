--- What the host specs share: which interpreter busted runs under, running a
-- host program with a time limit, reading what spec/hosts/driver.lua wrote,
-- and the checks every host run must pass.
--
--     local harness = dofile("spec/hosts/harness.lua")
local shell = require "sandbox.shell"

local harness = {}

harness.root = (shell.run("pwd"):gsub("%s+$", ""))

--- "luajit", "5.1" … "5.4": the interpreter busted runs the specs under.
function harness.version()
  if rawget(_G, "jit") then return "luajit" end
  return _VERSION:match("%d+%.%d+")
end

--- Whether envoke.core was built for `version` (spec/check and `make LUA=…` build it).
function harness.built(version)
  return shell.read_file(harness.root .. "/build/" .. version .. "/envoke/core.so") ~= nil
end

--- Whether a program is installed (`make deps` installs the hosts).
function harness.installed(program)
  local _, code = shell.run("command -v " .. program)
  return code == 0
end

--- Builds the C host (spec/hosts/c/host.c, linked against Lua 5.4) to `path`.
-- @return true, or nil and the compiler's output
function harness.build_c_host(path)
  local q = shell.quote
  local out, code = shell.run(("cc -std=c99 -O2 -Wall -Wextra -Werror %s -o %s %s"):format(
    q(harness.root .. "/spec/hosts/c/host.c"), q(path), "$(pkg-config --cflags --libs lua5.4)"))
  if code ~= 0 then return nil, out end
  return true
end

--- The command line that runs the host game in `host` ("c", "love", "nvim");
-- `c_host` is the C host's binary.
function harness.command(host, c_host)
  local q, root = shell.quote, harness.root
  if host == "c" then return q(c_host) .. " " .. q(root) end
  if host == "love" then return "love " .. q(root .. "/spec/hosts/love") .. " " .. q(root) end
  if host == "nvim" then
    return "nvim --headless -u NONE -i NONE -n -c " .. q("luafile " .. root .. "/spec/hosts/nvim/main.lua")
  end
  error("no such host: " .. tostring(host))
end

--- The variables that keep a host's own files (LÖVE's save directory,
-- Neovim's state and logs) in `dir`, so a run leaves nothing behind.
function harness.private_home(dir)
  return { HOME = dir, XDG_STATE_HOME = dir, XDG_DATA_HOME = dir, XDG_CACHE_HOME = dir, XDG_CONFIG_HOME = dir }
end

--- Runs a host to its end, killed after `limit_s`; its output goes to `log`.
-- @tparam string cmd the command (its words already quoted)
-- @tparam table env variables to set for it
-- @return exit code, output
function harness.run_host(cmd, env, log, limit_s)
  local words = {}
  for k, v in pairs(env) do words[#words + 1] = k .. "=" .. shell.quote(v) end
  local line = ("env %s timeout --kill-after=5 %d %s >%s 2>&1 </dev/null"):format(
    table.concat(words, " "), limit_s or 120, cmd, shell.quote(log))
  local _, code = shell.run(line)
  return code, shell.read_file(log) or ""
end

--- The environment of a run of the driver against `srv` (`tls`: over HTTPS).
function harness.env(srv, tls, out, name, extra)
  local env = {
    ENVOKE_BASE_URL = tls and srv.tls_url or srv.url,
    ENVOKE_API_ID = srv.api_id, ENVOKE_API_KEY = srv.api_key,
    HOST_OUT = out, HOST_NAME = name,
  }
  if tls then env.HOST_CA_FILE = srv.ca_file end
  for k, v in pairs(extra or {}) do env[k] = tostring(v) end
  return env
end

--- What the driver wrote (HOST_OUT.results), parsed:
-- `{ calls = { [i] = { phase, email, ok, id, kind, sent } }, twice = { i… }, facts = { name = value } }`.
function harness.results(out)
  local text = shell.read_file(out .. ".results")
  if not text then return nil end
  local r = { calls = {}, twice = {}, facts = {}, done = false }
  for line in text:gmatch("[^\n]+") do
    local i, phase, email, rest = line:match("^call (%d+) (%S+) (%S+) (.*)$")
    if i then
      local c = { phase = phase, email = email }
      local id = rest:match("^ok (%S+)$")
      if id then
        c.ok, c.id = true, id
      else
        c.kind, c.sent = rest:match("^err (%S+) (%S+)$")
      end
      r.calls[tonumber(i)] = c
    elseif line:match("^twice ") then
      r.twice[#r.twice + 1] = line
    elseif line == "done" then
      r.done = true
    else
      local k, v = line:match("^(%S+)%s*(.*)$")
      r.facts[k] = v
    end
  end
  return r
end

-- Every email the sandbox holds, with how many contacts have it.
local function sandbox_emails(srv)
  local seen = {}
  for _, c in ipairs(srv:contacts()) do
    if c.email then seen[c.email] = (seen[c.email] or 0) + 1 end
  end
  return seen
end

--- The checks of a whole run: every write of the running frames answered
-- and is in the sandbox once; every call of the quitting frame ran its
-- callback once and was either sent and saved, or ended `cancelled` (and,
-- when never sent, is not in the sandbox); after close nothing is pending
-- and a new call raises at the caller's line.
-- @tparam table opts `calls`, `quit_calls`, `drained` (the drain had time for everything)
function harness.check_run(srv, out, log, opts)
  local luassert = require "luassert"
  local shown = log .. (shell.read_file(out .. ".error") or "")
  local r = harness.results(out)
  luassert.is_table(r, "the host wrote no results; its output:\n" .. shown)
  luassert.is_true(r.done, shown)
  luassert.is_nil(r.facts.gave_up, "the host ran out of frames")
  luassert.are.same({}, r.twice, "a callback ran twice")
  local emails = sandbox_emails(srv)
  for i = 1, opts.calls do
    local c = r.calls[i]
    luassert.is_table(c, ("call %d: its callback never ran"):format(i))
    luassert.are.equal("run", c.phase)
    luassert.is_true(c.ok, ("call %d (%s) failed: %s"):format(i, c.email, tostring(c.kind)))
    luassert.are.equal(1, emails[c.email], c.email .. " is not in the sandbox exactly once")
  end
  local cancelled = 0
  for i = opts.calls + 1, opts.calls + opts.quit_calls do
    local c = r.calls[i]
    luassert.is_table(c, ("quitting-frame call %d: its callback never ran"):format(i))
    luassert.are.equal("quit", c.phase)
    if c.ok then
      luassert.are.equal(1, emails[c.email], c.email .. " was saved but is not in the sandbox exactly once")
    else
      luassert.are.equal("cancelled", c.kind, ("call %d ended %s"):format(i, tostring(c.kind)))
      cancelled = cancelled + 1
      if c.sent == "false" then
        luassert.is_nil(emails[c.email], c.email .. " was never sent, yet it is in the sandbox")
      end
    end
  end
  if opts.drained then luassert.are.equal(0, cancelled, "the drain left calls to cancel") end
  luassert.are.equal("0", r.facts.pending_after_close)
  -- Later calls raise, naming the caller's line (the driver), not the library's.
  luassert.matches("driver%.lua:%d+: .*client is closed", r.facts.after_close or "")
  return r
end

--- A daemon started with a watchdog that stops it if this Lua process dies
-- first (so a crashed spec run leaves nothing behind).
-- @tparam string cmd starts the daemon, which writes its pid to `pidfile`
-- @treturn integer|nil its pid; nil, output when it did not start
function harness.daemon(cmd, pidfile)
  local pf = shell.quote(pidfile)
  local out, code = shell.run(table.concat({
    "lua_pid=$PPID",
    cmd .. " </dev/null || exit 1",
    "i=0; while [ ! -s " .. pf .. " ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done",
    "pid=$(head -n 1 " .. pf .. ")",
    "[ -n \"$pid\" ] || exit 2",
    "( trap '' HUP INT; while kill -0 $lua_pid 2>/dev/null && kill -0 $pid 2>/dev/null; do sleep 1; done;"
      .. " kill $pid 2>/dev/null ) </dev/null >/dev/null 2>&1 &",
    "echo \"pid=$pid\"",
  }, "\n"))
  local pid = code == 0 and tonumber(out:match("pid=(%d+)"))
  if not pid then return nil, out end
  return pid
end

--- Stops a process by pid and waits (up to 5 s, then KILL) until it is gone.
function harness.stop(pid)
  if not pid then return end
  shell.run(("kill %d 2>/dev/null; i=0; while kill -0 %d 2>/dev/null && [ $i -lt 500 ]; do"
    .. " sleep 0.01; i=$((i+1)); done; kill -KILL %d 2>/dev/null; true"):format(pid, pid, pid))
end

--- A new private directory (removed by `cleanup`).
function harness.tmpdir(tag) return shell.tmpdir(tag) end

--- Removes a directory made by `tmpdir`.
function harness.cleanup(dir)
  if dir and dir ~= "" then shell.run("rm -rf " .. shell.quote(dir)) end
end

harness.shell = shell

local CALLS, QUIT_CALLS = 300, 20

--- The one suite every game host runs: 300 writes against the sandbox over
-- HTTP (closing with a drain) and over HTTPS (closing with none), checked by
-- `check_run`. `o`: `b` (the spec's busted functions), `title`, `tag`,
-- `version` (the .so it loads), `command(dir)` (the host's command line, made
-- in setup), `env(dir)` (extra environment), `http` and `https` (test names).
function harness.host_suite(o)
  local b = o.b
  b.describe(o.title, function()
    local srv, dir, cmd
    b.setup(function()
      assert(harness.built(o.version), "no build/" .. o.version .. "/envoke/core.so: make LUA=" .. o.version)
      dir = harness.tmpdir("envoke-" .. o.tag)
      cmd = o.command(dir)
      srv = require("sandbox_server").start{ tls = true }
    end)
    b.teardown(function()
      if srv then srv:stop() end
      harness.cleanup(dir)
    end)
    b.before_each(function() srv:reset() end)

    local function run(tls, name, drain_ms)
      local out = dir .. "/" .. name
      local env = harness.env(srv, tls, out, name, o.env and o.env(dir) or {})
      env.HOST_CALLS, env.HOST_QUIT_CALLS, env.HOST_DRAIN_MS = CALLS, QUIT_CALLS, drain_ms
      local code, log = harness.run_host(cmd, env, out .. ".log")
      require("luassert").are.equal(0, code, log)
      return harness.check_run(srv, out, log, { calls = CALLS, quit_calls = QUIT_CALLS, drained = drain_ms > 0 })
    end

    b.it(o.http, function() run(false, o.tag .. "-http", 5000) end)
    b.it(o.https, function() run(true, o.tag .. "-https", 0) end)
  end)
end

return harness
