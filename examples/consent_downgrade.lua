-- Consent: a downgrade is refused (the old status stays) unless forced.
local envoke = require "envoke"
local client = envoke.new()

local c = assert(client:contact{ email = "consent@example.com" }:upsert())
assert(c:consent("Express", "Signed up on the homepage form"):save())
print("consent: " .. c.consent_status)

assert(c:consent("Implied - Inquiry", "Asked a question"):save())
print("downgrade without force: still " .. c.consent_status)

assert(c:consent("Implied - Inquiry", "Asked a question", { force_downgrade = true }):save())
print(("downgrade forced: %s, expires %s"):format(c.consent_status, c.consent_expiry))
