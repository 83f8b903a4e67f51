-- Update a contact by its Envoke id (PATCH /v1/contacts/{id}), as the seed page's first example.
local envoke = require "envoke"
local client = envoke.new()

local created = assert(client:contact{ email = "by-id@example.com", city = "Toronto" }:upsert())

local c = client:contact{ id = created.id }:set{ province = "MB", city = "Winnipeg" }
assert(c:save())
print(("contact %d now lives in %s, %s"):format(c.id, c.city, c.province))
