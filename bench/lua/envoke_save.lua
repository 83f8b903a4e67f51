--- envoke-save, envoke-save-luajit: the sequential save loop a user writes.
--    lua5.4|luajit bench/lua/envoke_save.lua BASE_URL COUNT
local measure = require "measure"

local url, count = measure.args()
local client = measure.envoke_client(url)

measure.each(count, function()
  return client:contact{ id = 1234 }:set("city", "Toronto"):save() ~= nil
end)
