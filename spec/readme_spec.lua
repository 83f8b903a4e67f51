-- The README, tested as written.
--
-- * Its field table is the schema's own, so the docs cannot drift from what
--   the setters check.
-- * Every ```sh line that starts the sandbox or runs an example is run as
--   written, from the checkout, with a clean Lua environment; only the ports
--   8080/8443 become free ones. A sandbox a block starts serves the lines
--   after it in that block, and is stopped at the block's end.
-- * Every ```lua block runs against a fresh sandbox (ENVOKE_BASE_URL,
--   ENVOKE_API_ID, ENVOKE_API_KEY point at it; `envoke` and `client` are
--   predefined; 127.0.0.1:8080 becomes its address), through ./run under the
--   Lua running this spec. A block that cannot run that way carries
--   `<!-- not run: reason -->` on the line before it; each one, and each shell
--   line not run, is listed as pending with its reason.
-- Blocks are found by their fences, so sections added later are covered too.
local field_table = require "field_table"
local shell = require "sandbox.shell"
local sandbox_server = require "sandbox_server"
local socket = require "socket"

local lua_bin = jit and "luajit" or ("lua" .. _VERSION:match("%d%.%d"))
local q = shell.quote

-- A new user's shell: none of the Lua or Envoke settings of whoever runs the suite.
local CLEAN_ENV = "unset LUA_PATH LUA_CPATH LUA_PATH_5_2 LUA_CPATH_5_2 LUA_PATH_5_3 LUA_CPATH_5_3"
  .. " LUA_PATH_5_4 LUA_CPATH_5_4 LUA_INIT ENVOKE_BASE_URL ENVOKE_API_ID ENVOKE_API_KEY"
  .. " ENVOKE_API_TOKEN ENVOKE_CA_FILE LD_PRELOAD; "
local LIMIT_S = 300 -- a hung line must fail, not hang the suite

local readme = assert(shell.read_file("README.md"))

-- { lang, body, line, skip } for every fenced block, in order.
local function fenced_blocks(text)
  local found, open, previous, n = {}, nil, "", 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if open then
      if line:match("^```%s*$") then
        found[#found + 1] = open
        open = nil
      else
        open.lines[#open.lines + 1] = line
      end
    else
      local lang = line:match("^```(%w*)%s*$")
      if lang then
        open = { lang = lang, lines = {}, line = n, skip = previous:match("^<!%-%- not run: (.-) %-%->") }
      end
      if line:match("%S") then previous = line end
    end
  end
  for _, b in ipairs(found) do b.body = table.concat(b.lines, "\n") .. "\n" end
  return found
end

-- The commands of a shell block: continuations joined, comments and blanks dropped.
local function commands(body)
  local out, pending = {}, ""
  for line in body:gmatch("([^\n]*)\n") do
    local joined = pending .. line
    if joined:match("\\%s*$") then
      pending = joined:gsub("\\%s*$", " ")
    else
      pending = ""
      local cmd = joined:gsub("^%s*#.*$", ""):gsub("%s+#.*$", ""):gsub("^%s+", ""):gsub("%s+$", "")
      if cmd ~= "" then out[#out + 1] = cmd end
    end
  end
  return out
end

-- Why a shell command is not run, or nil when it is.
local function not_run_reason(cmd)
  if cmd:match("^make sandbox") or cmd:match("^sandbox/run") then return nil end
  if not (cmd:find("make demo", 1, true) or cmd:find("./run ", 1, true) or cmd:find("examples/", 1, true)) then
    return "neither starts the sandbox nor runs an example"
  end
  for script in cmd:gmatch("(%S+%.lua)") do
    if not shell.read_file(script) then return "runs a script of the reader's (" .. script .. ")" end
  end
  return nil
end

local function free_port()
  local probe = assert(socket.bind("127.0.0.1", 0))
  local _, port = probe:getsockname()
  probe:close()
  return tonumber(port)
end

local function with_ports(cmd, ports)
  return (cmd:gsub("8080", tostring(ports.http)):gsub("8443", tostring(ports.https)))
end

-- Starts a sandbox line in its own process group; waits until it serves.
local function start_sandbox(cmd, dir)
  local log = dir .. "/sandbox.log"
  local pid = shell.run(CLEAN_ENV .. "setsid sh -c " .. q(cmd) .. " >" .. q(log) .. " 2>&1 </dev/null & echo $!")
  pid = assert(tonumber(pid:match("%d+")), "no pid for: " .. cmd)
  for _ = 1, 1200 do
    local text = shell.read_file(log) or ""
    if text:find("Envoke sandbox ready", 1, true) then return pid end
    if not shell.run("kill -0 " .. pid .. " 2>/dev/null && echo alive"):find("alive") then
      error("the sandbox line exited: " .. cmd .. "\n" .. text, 0)
    end
    socket.sleep(0.05)
  end
  shell.run("kill -TERM -" .. pid .. " 2>/dev/null")
  error("the sandbox line never became ready: " .. cmd .. "\n" .. (shell.read_file(log) or ""), 0)
end

-- Stops a process group and waits for it to end (nginx removes its prefix then).
local function stop_group(pid)
  shell.run("kill -TERM -" .. pid .. " 2>/dev/null; i=0; while kill -0 -" .. pid
    .. " 2>/dev/null && [ $i -lt 500 ]; do sleep 0.02; i=$((i+1)); done; kill -KILL -" .. pid .. " 2>/dev/null; true")
end

describe("README", function()
  it("carries the field table made from envoke.schema (spec/support/field_table.lua)", function()
    local table_text = readme:match("<!%-%- fields:[^\n]*\n(.-)<!%-%- end of fields %-%->")
    assert.is_string(table_text, "the fields markers are missing from README.md")
    assert.are.equal(field_table(), table_text)
  end)

  it("opens with install, make demo, make check and running a script from the checkout", function()
    local first_screen = table.concat({ readme:match(("([^\n]*)\n"):rep(30)) }, "\n")
    for _, what in ipairs{ "make deps", "make install", "make demo", "make check", "./run " } do
      assert.truthy(first_screen:find(what, 1, true), what .. " is not on the README's first screen")
    end
  end)

  it("runs Lua only through ./run, in code blocks and inline code alike", function()
    local direct = {}
    local function look(code)
      local c = code:gsub("^%s*", ""):gsub("^%u[%w_]*=%S+%s+", "")
      while c:match("^%u[%w_]*=%S+%s+") do c = c:gsub("^%u[%w_]*=%S+%s+", "") end
      if c:match("^lua5%.%d%s") or c:match("^luajit%s") or c:match("^lua%s") then direct[#direct + 1] = code end
    end
    for _, b in ipairs(fenced_blocks(readme)) do
      if b.lang == "sh" then for _, cmd in ipairs(commands(b.body)) do look(cmd) end end
    end
    for code in readme:gmatch("`([^`\n]+)`") do look(code) end
    assert.are.same({}, direct)
  end)
end)

describe("README shell lines", function()
  local dir
  setup(function() dir = shell.tmpdir("envoke-readme") end)
  teardown(function() if dir then shell.run("rm -rf " .. q(dir)) end end)

  for index, block in ipairs(fenced_blocks(readme)) do
    if block.lang == "sh" then
      local cmds, run_any = commands(block.body), false
      for _, cmd in ipairs(cmds) do
        local reason = not_run_reason(cmd)
        if reason then pending(("not run: %s (%s)"):format(cmd, reason)) else run_any = true end
      end
      if run_any then
        it(("block %d (README line %d) as written"):format(index, block.line), function()
          local ports = { http = free_port(), https = free_port() }
          local server
          local ok, problem = pcall(function()
            for _, cmd in ipairs(cmds) do
              if not not_run_reason(cmd) then
                local line = with_ports(cmd, ports)
                if cmd:match("^make sandbox") or cmd:match("^sandbox/run") then
                  assert(not server, "a second sandbox in one block")
                  server = start_sandbox(line, dir)
                else
                  local out, code = shell.run(CLEAN_ENV .. "timeout " .. LIMIT_S .. " sh -c " .. q(line))
                  assert(code == 0, ("README line failed (exit %d): %s\n%s"):format(code, line, out))
                end
              end
            end
          end)
          if server then stop_group(server) end
          if not ok then error(problem, 0) end
        end)
      end
    end
  end
end)

describe("README Lua blocks", function()
  local srv, dir
  setup(function()
    srv = sandbox_server.start()
    dir = shell.tmpdir("envoke-readme")
  end)
  teardown(function()
    if srv then srv:stop() end
    if dir then shell.run("rm -rf " .. q(dir)) end
  end)
  before_each(function() srv:reset() end)

  -- One line, so the block's line numbers are off by exactly one in errors.
  local PRELUDE = 'local envoke = require "envoke"; local client = envoke.new() -- spec/readme_spec.lua\n'

  for index, block in ipairs(fenced_blocks(readme)) do
    if block.lang == "lua" then
      local title = ("block %d (README line %d): %s"):format(index, block.line, block.lines[1] or "")
      if block.skip then
        pending(title .. " -- not run: " .. block.skip)
      else
        it(title, function()
          local file = dir .. "/block" .. index .. ".lua"
          local address = srv.url:match("^http://(.*)$")
          shell.write_file(file, PRELUDE .. block.body:gsub("127%.0%.0%.1:8080", address))
          local env = ("ENVOKE_BASE_URL=%s ENVOKE_API_ID=%s ENVOKE_API_KEY=%s "):format(
            q(srv.url), q(srv.api_id), q(srv.api_key))
          local out, code = shell.run(CLEAN_ENV .. env .. "timeout " .. LIMIT_S .. " ./run " .. lua_bin .. " "
            .. q(file))
          assert(code == 0, ("README line %d's block failed (exit %d):\n%s"):format(block.line, code, out))
        end)
      end
    end
  end
end)
