-- Update a contact by its email, with no id (PATCH /v1/contacts?keyfield=email).
local envoke = require "envoke"
local client = envoke.new()

assert(client:contact{ email = "example@api.com", first_name = "Original" }:upsert())

local c = assert(client:contact{ email = "example@api.com", first_name = "UPDATED" }:save{ keyfield = "email" })
print(("contact %d (%s): first name %s"):format(c.id, c.email, c.first_name))
