-- The README's "Game and app hosts" recipes, run as written inside their
-- hosts against the sandbox: the LÖVE main.lua, the Neovim script, the C host
-- with its game.lua, and the "HAProxy" section's configuration with its service. Only the
-- checkout's path (/opt/lua-envoke), the service's path and HAProxy's port
-- are replaced. Each host runs under one busted interpreter only, the one
-- whose envoke.core it loads (LÖVE and Neovim: luajit; the C host: 5.4;
-- HAProxy: 5.3); the other runs show it pending.
local harness = dofile("spec/hosts/harness.lua")
local sandbox_server = require "sandbox_server"
local socket = require "socket"

local shell, q = harness.shell, harness.shell.quote
local readme = assert(shell.read_file("README.md"))
local section = assert(readme:match("\n## Game and app hosts\n(.-)\n## "), "README has no 'Game and app hosts'")
-- HAProxy's recipe is in a section of its own.
section = section .. "\n" .. assert(readme:match("\n## HAProxy\n(.-)\n## "), "README has no 'HAProxy'")

-- The section's fenced blocks: { lang, body }.
local blocks = {}
for lang, body in section:gmatch("\n```(%w*)\n(.-\n)```") do blocks[#blocks + 1] = { lang = lang, body = body } end

-- The block of `lang` whose first line starts with `head`, checkout path replaced.
local function block(lang, head)
  for _, b in ipairs(blocks) do
    if b.lang == lang and b.body:sub(1, #head) == head then
      return (b.body:gsub("/opt/lua%-envoke", function() return harness.root end))
    end
  end
  error(("README's hosts section has no %s block starting %q"):format(lang, head))
end

local version = harness.version()

describe("README: game and app hosts", function()
  local srv, dir

  setup(function()
    dir = harness.tmpdir("envoke-readme-hosts")
    srv = sandbox_server.start()
  end)

  teardown(function()
    if srv then srv:stop() end
    harness.cleanup(dir)
  end)

  before_each(function() srv:reset() end)

  local function env()
    local e = harness.private_home(dir)
    e.ENVOKE_BASE_URL, e.ENVOKE_API_ID, e.ENVOKE_API_KEY = srv.url, srv.api_id, srv.api_key
    return e
  end

  local function has_contact(email)
    for _, c in ipairs(srv:contacts()) do
      if c.email == email then return true end
    end
    return false
  end

  local function only(want, host, program)
    if version ~= want or not harness.installed(program) then
      pending(("%s: runs under %s only, with %s installed"):format(host, want, program))
      return false
    end
    return true
  end

  if only("luajit", "LÖVE", "love") then
    it("LÖVE: main.lua saves in love.load's call and love.quit drains it", function()
      local game = dir .. "/love"
      shell.run("mkdir -p " .. q(game))
      shell.write_file(game .. "/conf.lua", assert(shell.read_file("spec/hosts/love/conf.lua")))
      -- A game runs until its player quits: this one quits after 30 frames.
      shell.write_file(game .. "/main.lua", block("lua", "-- main.lua of the game directory") .. [[
local frames, update = 0, love.update
function love.update(dt)
  update(dt)
  frames = frames + 1
  if frames == 30 then love.event.quit() end
end
]])
      local code, log = harness.run_host("love " .. q(game), env(), dir .. "/love.log", 60)
      assert.are.equal(0, code, log)
      assert.matches("saved", log)
      assert.is_true(has_contact("player@example.com"))
    end)
  end

  if only("luajit", "Neovim", "nvim") then
    it("Neovim: the timer polls and VimLeavePre drains the call still in flight", function()
      local script = dir .. "/signup.lua"
      shell.write_file(script, block("lua", "-- signup.lua: nvim"))
      -- :qa! right after the script: only the drain in VimLeavePre can send the upsert.
      local code, log = harness.run_host("nvim --headless -u NONE -i NONE -n -c " .. q("luafile " .. script)
                                         .. " -c 'qa!'", env(), dir .. "/nvim.log", 60)
      assert.are.equal(0, code, log)
      assert.is_true(has_contact("editor@example.com"), log)
    end)
  end

  if only("5.4", "C host", "cc") then
    it("C host: host.c builds without a warning, runs game.lua at 60 Hz and closes with a drain", function()
      local src, bin, game = dir .. "/host.c", dir .. "/host", dir .. "/game.lua"
      shell.write_file(src, block("c", "/* host.c"))
      shell.write_file(game, block("lua", "-- game.lua"))
      local out, code = shell.run(("cc -std=c99 -Wall -Wextra -Werror %s -o %s $(pkg-config --cflags --libs lua5.4)")
        :format(q(src), q(bin)))
      assert.are.equal(0, code, out)
      local log
      code, log = harness.run_host(q(bin) .. " " .. q(game), env(), dir .. "/c.log", 60)
      assert.are.equal(0, code, log)
      assert.matches("saved", log)
      assert.is_true(has_contact("c-host@example.com"))
    end)
  end

  if only("5.3", "HAProxy", "haproxy") then
    it("HAProxy: the service saves the contact through HAProxy's own sockets", function()
      local probe = assert(socket.bind("127.0.0.1", 0))
      local _, port = probe:getsockname()
      probe:close()
      local service = dir .. "/signup.lua"
      shell.write_file(service, block("lua", "-- /etc/haproxy/signup.lua"))
      local cfg = block("haproxy", "global"):gsub("/etc/haproxy/signup%.lua", service)
        :gsub("127%.0%.0%.1:8000", "127.0.0.1:" .. port)
      shell.write_file(dir .. "/haproxy.cfg", cfg)
      local e = {}
      for k, v in pairs(env()) do e[#e + 1] = k .. "=" .. q(v) end
      local pid, problem = harness.daemon(("env %s haproxy -db -f %s >%s 2>&1 & echo $! >%s"):format(
        table.concat(e, " "), q(dir .. "/haproxy.cfg"), q(dir .. "/haproxy.log"), q(dir .. "/haproxy.pid")),
        dir .. "/haproxy.pid")
      assert(pid, problem)
      local ok, err = pcall(function()
        local conn
        for _ = 1, 500 do
          conn = socket.connect("127.0.0.1", port)
          if conn then break end
          socket.sleep(0.01)
        end
        assert(conn, "haproxy does not listen: " .. (shell.read_file(dir .. "/haproxy.log") or ""))
        conn:settimeout(30)
        conn:send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        local text = conn:receive("*a") or ""
        conn:close()
        assert.matches("^HTTP/1%.1 200", text)
        assert.matches("\r\n\r\nsaved\n$", text)
        assert.is_true(has_contact("visitor@example.com"))
      end)
      harness.stop(pid)
      if not ok then error(err, 0) end
    end)
  end
end)
