-- The host game (spec/hosts/driver.lua) inside LÖVE (LuaJIT): the client is
-- made in love.load, each love.update is one frame at 60 Hz, and love.quit
-- closes the client with a drain.
--    love spec/hosts/love ROOT      (ROOT: the lua-envoke checkout; settings in the environment)
-- luacheck: globals love
local game

function love.load(args)
  local root = assert(args[1], "usage: love spec/hosts/love ROOT")
  -- The checkout's modules and its LuaJIT build of envoke.core. lua-cjson comes
  -- from Debian's 5.1 tree, on LÖVE's default cpath (it must be installed).
  package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. root .. "/spec/hosts/?.lua;" .. package.path
  package.cpath = root .. "/build/luajit/?.so;" .. package.cpath
  game = require("driver").new()
end

function love.update()
  local start = love.timer.getTime()
  if not game:frame() then love.event.quit() end
  -- No window, so no vsync to hold the frame: sleep out the rest of 1/60 s.
  local rest = 1 / 60 - (love.timer.getTime() - start)
  if rest > 0 then love.timer.sleep(rest) end
end

function love.quit()
  if game then game:quit() end -- client:close{ drain_ms = HOST_DRAIN_MS }
end

-- Headless, LÖVE's own error screen shows nothing: write the error for the
-- spec and end with a failure.
function love.errorhandler(message)
  local text = debug.traceback(tostring(message), 2)
  io.stderr:write("love: ", text, "\n")
  pcall(function() require("driver").report_error(text) end)
  if game then pcall(game.quit, game) end
  os.exit(3)
end
