-- Listing with filters as Lua tables; the iterator pages by itself.
local envoke = require "envoke"
local client = envoke.new()

for i = 1, 5 do
  local c = client:contact{ email = ("list%d@example.com"):format(i), first_name = "List" .. i }
  if i % 2 == 1 then c:consent("Express", "Form " .. i) end
  assert(c:upsert())
end

for c, err in client:contacts{
  filter = { consent_status = "Express", email = { ["$regex"] = "^list" } },
  sort = { email = "ASC" },
  fields = { "id", "email", "consent_status" },
  page_size = 2,
} do
  if not c then error(tostring(err)) end
  print(c.email, c.consent_status)
end
