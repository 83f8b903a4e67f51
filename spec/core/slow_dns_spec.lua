-- A slow DNS lookup never blocks the caller: perform(0), cancel, close and
-- the end of the process all return while libcurl's resolver thread still
-- waits (CURLOPT_QUICK_EXIT lets libcurl leave that thread behind instead of
-- joining it).
--
-- spec/support/slow_dns.c, built here and preloaded into a child interpreter,
-- makes every name ending in "slow.envoke.test" take LOOKUP_MS to resolve
-- (then 127.0.0.1) and creates DIR/<name> when that lookup is over. The proof
-- is an ordering, not a timing: right after each call returns, the child
-- reports whether its lookup's file existed yet. It must not.

local H = require "core_helper"
local echo_server = require "echo_server"
local shell = require "sandbox.shell"

local LOOKUP_MS = 4000

-- Builds the shim into dir; returns its path, or nil and why.
local function build_shim(dir)
  local cc, found = shell.run("command -v cc || command -v gcc")
  cc = found == 0 and cc:match("%S+")
  if not cc then return nil, "no C compiler (cc) to build spec/support/slow_dns.c" end
  local so = dir .. "/slow_dns.so"
  local out, code = shell.run(cc .. " -shared -fPIC -o " .. H.shell_quote(so) .. " spec/support/slow_dns.c -ldl")
  if code ~= 0 then return nil, "cannot build spec/support/slow_dns.c: " .. out end
  return so
end

-- The child: one case per name, each reporting (as Lua table fields) whether
-- its lookup had ended when the call returned.
local CHILD = [[
local core = require "envoke.core"
local port, dir = ...
local function ended(name)
  local f = io.open(dir .. "/" .. name .. ".slow.envoke.test")
  if f then f:close() end
  return f ~= nil
end
local function pool(name, opts)
  opts = opts or {}
  opts.base_url = "http://" .. name .. ".slow.envoke.test:" .. port
  return core.pool(opts)
end
local report = {}

-- perform(0) from submit until the connect timeout ends the call.
local p = pool("perform", { connect_timeout_ms = 300 })
p:submit("GET", "/x")
local id, status, err
repeat
  p:perform(0)
  report.perform_after_lookup = report.perform_after_lookup or ended("perform")
  id, status, err = p:finished()
  if not id then core.sleep(5) end
until id
report.perform_kind = type(err) == "table" and err.kind or tostring(status)

-- cancel() and close() while the lookup runs.
p = pool("cancel")
id = p:submit("GET", "/x")
p:perform(0)
report.cancel_result = p:cancel(id)
report.cancel_after_lookup = ended("cancel")
p:close()

p = pool("close")
p:submit("GET", "/x")
p:perform(0)
p:close()
report.close_after_lookup = ended("close")

-- The process ends (lua_close collects this pool) with its lookup under way.
local last = pool("exit")
last:submit("GET", "/x")
last:perform(0)
for k, v in pairs(report) do io.write(k, "=", tostring(v), "\n") end
io.write("done\n")
]]

-- A host that closes its Lua state (which unloads envoke.core) while a lookup
-- runs, then lives on until the lookup is over: the resolver thread then
-- returns into libcurl, which must still be mapped.
local HOST = [[
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

static const char chunk[] =
    "local cpath, port = ...\n"
    "package.cpath = cpath\n"
    "local core = require 'envoke.core'\n"
    "local pool = core.pool{ base_url = 'http://state.slow.envoke.test:' .. port }\n"
    "pool:submit('GET', '/x')\n"
    "pool:perform(0)\n";

int main(int argc, char **argv)
{
    lua_State *L = luaL_newstate();
    struct timespec tick = { 0, 20 * 1000000L };
    char marker[4096];
    int i;

    if (argc != 4)
        return 2;
    luaL_openlibs(L);
    if (luaL_loadstring(L, chunk) != 0)
        return 3;
    lua_pushstring(L, argv[1]);
    lua_pushstring(L, argv[2]);
    if (lua_pcall(L, 2, 0, 0) != 0) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        return 4;
    }
    lua_close(L);
    snprintf(marker, sizeof marker, "%s/state.slow.envoke.test", argv[3]);
    for (i = 0; i < 500 && access(marker, F_OK) != 0; i++)
        nanosleep(&tick, NULL);
    for (i = 0; i < 10; i++) /* the resolver thread is back in libcurl by now */
        nanosleep(&tick, NULL);
    puts(access(marker, F_OK) == 0 ? "survived" : "lookup never ended");
    return 0;
}
]]

describe("a slow DNS lookup", function()
  local srv, dir, shim, why

  lazy_setup(function()
    dir = shell.tmpdir("slow-dns")
    shim, why = build_shim(dir)
    if shim then srv = echo_server.start{ tls = false } end
  end)

  lazy_teardown(function()
    if srv then srv:stop() end
    if dir then shell.run("rm -rf " .. H.shell_quote(dir)) end
  end)

  it("never blocks perform(0), cancel, close or the end of the process", function()
    if not shim then return pending(why) end
    local preload = os.getenv("LD_PRELOAD") -- keep the ASan runtime first when there is one
    local code = CHILD:gsub("local port, dir = %.%.%.",
      function() return "local port, dir = " .. srv.port .. ", " .. string.format("%q", dir) end)
    local out = H.run_child(code, {
      LD_PRELOAD = (preload and preload ~= "" and preload .. ":" or "") .. shim,
      ENVOKE_SLOW_DNS_DIR = dir,
      ENVOKE_SLOW_DNS_MS = tostring(LOOKUP_MS),
    })
    -- The child has exited: did its last lookup end before it did?
    local f = io.open(dir .. "/exit.slow.envoke.test")
    if f then f:close() end
    local exit_after_lookup = f ~= nil

    H.contains(out, "done")
    H.lacks(out, "ERROR: AddressSanitizer") -- the sanitizer run's child is instrumented too
    H.lacks(out, "runtime error:")
    local report = {}
    for k, v in out:gmatch("([%w_]+)=(%S+)") do report[k] = v end
    assert.are.equal("timeout", report.perform_kind, out)
    assert.are.equal("false", report.perform_after_lookup, "perform(0) waited for the lookup")
    assert.are.equal("true", report.cancel_result, out)
    assert.are.equal("false", report.cancel_after_lookup, "cancel waited for the lookup")
    assert.are.equal("false", report.close_after_lookup, "close waited for the lookup")
    assert.is_false(exit_after_lookup, "the process waited for the lookup to exit")
  end)

  it("keeps libcurl loaded for its resolver threads after lua_close unloads envoke.core", function()
    if not shim then return pending(why) end
    local version = rawget(_G, "jit") and "luajit" or _VERSION:match("%d%.%d")
    local flags = version == "luajit" and "-I/usr/include/luajit-2.1 -lluajit-5.1"
      or ("-I/usr/include/lua%s -llua%s"):format(version, version)
    local source, exe = dir .. "/host.c", dir .. "/host"
    shell.write_file(source, HOST)
    local out, code = shell.run(("cc -std=c99 -D_POSIX_C_SOURCE=200809L -o %s %s %s")
      :format(H.shell_quote(exe), H.shell_quote(source), flags))
    assert.are.equal(0, code, out)
    -- The plain build: this host is not instrumented (as in states_spec).
    out = shell.run(("LD_PRELOAD=%s ENVOKE_SLOW_DNS_DIR=%s ENVOKE_SLOW_DNS_MS=300 %s %s %d %s"):format(
      H.shell_quote(shim), H.shell_quote(dir), H.shell_quote(exe),
      H.shell_quote("./build/" .. version .. "/?.so"), srv.port, H.shell_quote(dir)))
    assert.are.equal("survived\n", out)
  end)
end)
