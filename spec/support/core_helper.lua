-- Helpers shared by spec/core: building pools against the echo server,
-- decoding its echo, driving async transfers, sockets that refuse or never
-- accept, and assertions on strings.

local core = require "envoke.core"
local assert = require "luassert"
local cjson = require "cjson"

local H = { core = core, cjson = cjson }

-- Text checks with messages that show both sides.
function H.contains(haystack, needle)
  haystack = tostring(haystack)
  assert.is_truthy(haystack:find(needle, 1, true), string.format("expected %q to contain %q", haystack, needle))
end

function H.lacks(haystack, needle)
  haystack = tostring(haystack)
  assert.is_falsy(haystack:find(needle, 1, true), string.format("expected %q not to contain %q", haystack, needle))
end

-- Calls fn and returns the message it raised; fails when it did not raise.
function H.raises(fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then
    local args = {}
    for i = 1, select("#", ...) do args[i] = string.format("%q", tostring((select(i, ...)))) end
    assert.is_true(false, "expected an error, got none; arguments: " .. table.concat(args, ", "))
  end
  return tostring(err)
end

-- A pool on the echo server (or any base_url), with extra options.
function H.pool(base_url, opts)
  local o = { base_url = base_url }
  for k, v in pairs(opts or {}) do o[k] = v end
  return core.pool(o)
end

--- An echo server and a pool on it, for a describe block to start and stop
-- (`lazy_setup(rig.start)`, `lazy_teardown(rig.stop)`): `rig.srv`, `rig.pool`.
-- (busted's lazy_setup is known to spec files only, not to this module.)
function H.echo_rig(server_opts)
  local rig = {}
  function rig.start()
    rig.srv = require("echo_server").start(server_opts)
    rig.pool = H.pool(rig.srv.url)
  end
  function rig.stop()
    if rig.pool then rig.pool:close() end
    if rig.srv then rig.srv:stop() end
  end
  return rig
end

-- A request whose answer is the echo JSON: returns status, echo, headers.
function H.echo(pool, method, path, body, headers)
  local status, resp, resp_headers = pool:request(method, path, body, headers)
  if not status then
    assert.is_true(false, "request failed: " .. tostring(resp and resp.kind) .. ": " .. tostring(resp and resp.message))
  end
  local ok, decoded = pcall(cjson.decode, resp)
  if not ok then
    assert.is_true(false, "not an echo (status " .. tostring(status) .. "): " .. resp:sub(1, 200))
  end
  return status, decoded, resp_headers
end

-- Checks the shape every err table must have, and returns it.
function H.check_err(err)
  assert.is_table(err)
  assert.is_string(err.kind)
  assert.is_string(err.message)
  assert.is_true(#err.message > 0, "err.message is empty")
  assert.is_number(err.curl_code)
  assert.is_true(err.curl_code > 0 and err.curl_code == math.floor(err.curl_code),
    "curl_code must be a positive integer, got " .. tostring(err.curl_code))
  assert.is_boolean(err.sent)
  assert.is_boolean(err.retryable)
  assert.are.equal(err.kind == "network" or err.kind == "timeout", err.retryable,
    "retryable must be true exactly for network and timeout (kind " .. err.kind .. ")")
  return err
end

-- Drives the pool until `want` results were collected or budget_ms passed.
-- Returns results[id] = { status=, body=, headers= } or { err= }, and the
-- ids in the order they were collected.
function H.drain(pool, want, budget_ms)
  local results, order = {}, {}
  local deadline = core.now() + (budget_ms or 20000)
  for _ = 1, 100000 do
    if #order >= want or core.now() > deadline then break end
    pool:perform(50)
    for _ = 1, 1000 do
      local id, status, body, headers = pool:finished()
      if not id then break end
      assert.is_nil(results[id], "id " .. tostring(id) .. " reported twice")
      if status then
        results[id] = { status = status, body = body, headers = headers }
      else
        results[id] = { err = body }
      end
      order[#order + 1] = id
    end
  end
  return results, order
end

-- Milliseconds fn takes, followed by (up to four of) what it returned.
function H.timed(fn)
  local t0 = core.now()
  local a, b, c, d = fn()
  return core.now() - t0, a, b, c, d
end

-- A local TCP port nothing listens on (bound then released).
function H.closed_port()
  local socket = require "socket"
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

-- A listener whose accept queue is full, so further connects hang in SYN
-- until the client's connect timeout: a blackhole on loopback.
function H.blackhole()
  local socket = require "socket"
  local server = assert(socket.tcp())
  assert(server:bind("127.0.0.1", 0))
  assert(server:listen(0))
  local _, port = server:getsockname()
  local fillers = {}
  for i = 1, 4 do
    local c = assert(socket.tcp())
    c:settimeout(0)
    c:connect("127.0.0.1", port)
    fillers[i] = c
  end
  socket.sleep(0.1)
  return {
    port = tonumber(port),
    close = function()
      for _, c in ipairs(fillers) do c:close() end
      server:close()
    end,
  }
end

-- Standard base64 (for the expected Authorization headers).
H.base64 = require("envoke.sandbox.auth").base64_encode

-- The interpreter running the specs, for child processes.
function H.interpreter()
  if rawget(_G, "jit") then return "luajit" end
  return "lua" .. _VERSION:match("%d+%.%d+")
end

H.shell_quote = require("sandbox.shell").quote

-- Runs Lua code in a child interpreter with the same module paths and the
-- given environment assignments; returns its stdout.
function H.run_child(code, env)
  local assignments = {}
  for k, v in pairs(env or {}) do
    assignments[#assignments + 1] = k .. "=" .. H.shell_quote(v)
  end
  local prelude = "package.path = " .. string.format("%q", package.path)
    .. " package.cpath = " .. string.format("%q", package.cpath) .. " "
  local cmd = "env -u http_proxy -u HTTP_PROXY -u https_proxy -u HTTPS_PROXY -u all_proxy -u ALL_PROXY"
    .. " -u no_proxy -u NO_PROXY " .. table.concat(assignments, " ")
    .. " " .. H.interpreter() .. " -e " .. H.shell_quote(prelude .. code) .. " 2>&1"
  local pipe = assert(io.popen(cmd))
  local out = pipe:read("*a")
  pipe:close()
  return out
end

-- Every string inside a value (tables walked), for secret scans.
function H.strings_in(value, out, seen)
  out, seen = out or {}, seen or {}
  if type(value) == "string" then
    out[#out + 1] = value
  elseif type(value) == "table" and not seen[value] then
    seen[value] = true
    for k, v in pairs(value) do
      H.strings_in(k, out, seen)
      H.strings_in(v, out, seen)
    end
  elseif value ~= nil then
    out[#out + 1] = tostring(value)
  end
  return out
end

-- Number of open file descriptors of this process (Linux).
function H.open_fds()
  local pipe = assert(io.popen("ls /proc/$PPID/fd | wc -l"))
  local n = tonumber(pipe:read("*a"))
  pipe:close()
  return n
end

return H
