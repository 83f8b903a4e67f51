-- The benchmark's server: a private nginx answering every PATCH /v1/contacts/<id>
-- with one fixed Envoke write envelope (a ~700-byte contact), from memory.
--
--   lua5.4 bench/server.lua        (from the repository root)
--
-- Prints "url=<base url> pid=<nginx master pid>" once nginx listens, then
-- holds nginx until its standard input closes, then stops it. bench/run feeds
-- it from a coprocess, so nginx goes away even when bench/run is killed.
-- CPU pinning is inherited: bench/run starts this under `taskset -c 1`.
local nginx = require "sandbox.nginx"

local ENVELOPE = require "envelope"
local SLOW_MS = 50

-- `return` answers from memory without running Lua per request, so the server
-- costs as little as it can on its own CPU. keepalive_requests overrides the
-- launcher's http-level 100000: no reconnect may happen inside a measured run.
local SERVER = table.concat({
  "keepalive_requests 1000000;",
  "location ~ ^/v1/contacts/[0-9]+$ {",
  "  default_type application/json;",
  "  if ($request_method != PATCH) { return 405; }",
  "  return 200 '" .. ENVELOPE .. "';",
  "}",
  "location = /v1/settings { default_type application/json; return 200 '{\"name\":\"bench\"}'; }",
  -- The latency-bound cases (bench/lua/cli_import.lua): the same answer after SLOW_MS.
  "location = /slow/v1/settings { default_type application/json; return 200 '{\"name\":\"bench\"}'; }",
  "location ~ ^/slow/v1/contacts/[0-9]+$ {",
  "  default_type application/json;",
  "  content_by_lua_block { ngx.sleep(" .. SLOW_MS / 1000 .. ") ngx.print([[" .. ENVELOPE .. "]]) }",
  "}",
  "location / { return 404; }",
}, "\n")

assert(not ENVELOPE:find("[$'\\]"), "the envelope must need no escaping in nginx's quoted string")

local srv = nginx.start{ server = SERVER, workers = 1 }
io.stdout:write("url=", srv.url, " pid=", tostring(srv.pid), " body_bytes=", #ENVELOPE, "\n")
io.stdout:flush()
-- Blocks until bench/run closes our stdin (or dies); bounded by that pipe.
io.stdin:read("*a")
srv:stop()
