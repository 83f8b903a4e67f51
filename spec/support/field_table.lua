--- The README's field reference, made from `envoke.schema.fields`: the README
-- carries it and spec/readme_spec.lua checks the two agree. Run as a script
-- (`./run spec/support/field_table.lua`) it prints the table to paste.
local schema = require "envoke.schema"

local TYPE_TEXT = {
  id = "integer 1..4294967295", string = "string", enum = "one of", consent = "consent status (docs/envoke-api.md §5)",
  datetime = "RFC 3339 date-time", date = "date yyyy-mm-dd", boolean = "boolean",
  timestamp = "date-time (RFC 3339 or yyyy-mm-dd hh:mm:ss)",
  custom_fields = "object: name -> string", interests = "names, or name/id -> Set/Unset",
  autoresponders = "names, or name/id -> Set/Unset/Dequeue",
}

--- The field reference as a Markdown table.
-- @treturn string
local function field_table()
  local rows = { "| field | type | max characters | notes |", "|---|---|---|---|" }
  for _, name in ipairs(schema.order) do
    local f = schema.fields[name]
    local kind = TYPE_TEXT[f.type]
    if f.type == "enum" then kind = kind .. " " .. table.concat(f.values, " ") end
    local notes = {}
    if f.readonly then notes[#notes + 1] = "read-only" end
    if f.writeonly then notes[#notes + 1] = "write-only" end
    if f.format == "email" then notes[#notes + 1] = "an email address" end
    rows[#rows + 1] = ("| `%s` | %s | %s | %s |"):format(name, kind, f.max or "", table.concat(notes, ", "))
  end
  return table.concat(rows, "\n") .. "\n"
end

-- `require` passes the module's name; a script run gets no arguments.
if ... == nil then io.write(field_table()) end

return field_table
