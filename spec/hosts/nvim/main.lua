-- The host game (spec/hosts/driver.lua) inside Neovim 0.7 (LuaJIT), as a
-- plugin would run it: the client is made when the script loads, a
-- vim.loop timer runs one frame every 16 ms on the main loop
-- (vim.schedule_wrap, so callbacks may use vim.api), and VimLeavePre closes
-- the client with a drain.
--    nvim --headless -u NONE -i NONE -n -c "luafile spec/hosts/nvim/main.lua"
-- (settings in the environment; the checkout is found from this file's path)
-- luacheck: globals vim
local game

-- Any error ends Neovim with a failure (headless, it would otherwise wait forever).
local function fail(message)
  local text = debug.traceback(tostring(message), 2)
  io.stderr:write("nvim host: ", text, "\n")
  pcall(function() require("driver").report_error(text) end)
  if game then pcall(game.quit, game) end
  vim.cmd("cquit 3")
end

local ok, problem = pcall(function()
  local file = debug.getinfo(1, "S").source:sub(2)
  if file:sub(1, 1) ~= "/" then file = vim.loop.cwd() .. "/" .. file end
  local root = assert(file:match("^(.*)/spec/hosts/nvim/[^/]*$"), "cannot find the checkout from " .. file)
  -- The checkout's modules and its LuaJIT build of envoke.core. lua-cjson comes
  -- from Debian's 5.1 tree, on Neovim's default cpath (it must be installed).
  package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. root .. "/spec/hosts/?.lua;" .. package.path
  package.cpath = root .. "/build/luajit/?.so;" .. package.cpath
  game = require("driver").new()
end)
if not ok then return fail(problem) end

vim.api.nvim_create_autocmd("VimLeavePre", {
  callback = function() game:quit() end, -- client:close{ drain_ms = HOST_DRAIN_MS }
})

local timer = vim.loop.new_timer()
timer:start(0, 16, vim.schedule_wrap(function()
  if timer:is_closing() then return end
  local fine, more = pcall(game.frame, game)
  if fine and more then return end
  timer:stop()
  timer:close()
  if not fine then return fail(more) end
  vim.cmd("qa!")
end))
