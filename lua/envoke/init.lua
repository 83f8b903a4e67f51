--- lua-envoke: Envoke's contacts API from Lua.
--    local envoke = require "envoke"
-- @module envoke
local core = require "envoke.core"

local envoke = {
  --- The library's version, from the C core.
  _VERSION = core._VERSION,
  --- Encodes as JSON null (the same value as `cjson.null`).
  null = core.null,
  --- Encodes as an empty JSON array.
  empty_array = core.empty_array,
  --- A metatable that makes a table encode as a JSON array, even when empty.
  array_mt = core.array_mt,
  errors = require "envoke.errors",
  schema = require "envoke.schema",
}

--- Makes a client; see `envoke.client.new` for the options.
-- @tparam[opt] table opts
-- @treturn envoke.client
function envoke.new(opts)
  return require("envoke.client").new(opts)
end

return envoke
