-- Blank values are ignored by default; clear() empties a field (write_empty_values=1).
local envoke = require "envoke"
local client = envoke.new()

local c = assert(client:contact{ email = "clear@example.com", first_name = "Keep", title = "Drop" }:upsert())
c:set("first_name", "")        -- ignored, as the API ignores blanks
c:clear("title")               -- sent as "" with write_empty_values=1
assert(c:save())
print(("first_name %q kept, title %q cleared"):format(c.first_name, c.title))
