-- Neovim 0.7, headless (spec/hosts/nvim/main.lua): the client is made when
-- the script loads, a vim.loop timer runs one frame every 16 ms (writes, then
-- client:poll(0)), and VimLeavePre closes the client with a drain. Against
-- the sandbox over HTTP and over HTTPS (its CA in ca_file).
--
-- Runs only under busted's luajit run: Neovim brings its own LuaJIT and loads
-- build/luajit's envoke.core, which spec/check builds for that run; the other
-- interpreters' runs show it pending.
local harness = dofile("spec/hosts/harness.lua")

if harness.version() ~= "luajit" or not harness.installed("nvim") then
  describe("Neovim host", function()
    pending("runs under luajit only, with nvim installed (make deps): Neovim embeds LuaJIT")
  end)
  return
end

harness.host_suite{
  b = { describe = describe, it = it, setup = setup, teardown = teardown, before_each = before_each },
  title = "Neovim host (headless, vim.loop timer)", tag = "nvim", version = "luajit",
  command = function() return harness.command("nvim") end,
  env = function(dir) return harness.private_home(dir) end,
  http = "saves every contact over HTTP; VimLeavePre drains the quitting frame's calls",
  https = "saves every contact over HTTPS; a close with no drain time ends the rest as cancelled",
}
