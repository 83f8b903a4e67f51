-- Update a contact by your own CRM id (PATCH /v1/contacts?keyfield=remote_id).
local envoke = require "envoke"
local client = envoke.new()

assert(client:contact{ email = "new-contact@api-testing.com", remote_id = "436D-SF92-J4G5" }:upsert())

local c = client:contact{ remote_id = "436D-SF92-J4G5", email = "new-contact@api-testing.com", first_name = "John" }
assert(c:save{ keyfield = "remote_id" })
print(("contact %d with remote_id %s: %s"):format(c.id, c.remote_id, c.first_name))
