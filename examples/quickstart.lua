-- The quickstart: one contact, every kind of change, one save.
-- Runs against ENVOKE_BASE_URL with ENVOKE_API_ID / ENVOKE_API_KEY
-- (`make demo` points them at a sandbox it starts).
local envoke = require "envoke"

local client = envoke.new()
local email = arg[1] or "jane@example.com"

-- Make sure Jane exists (an upsert inserts her or updates her by email).
local jane = assert(client:contact{ email = email, first_name = "Jane", title = "Intern" }:upsert())
print(("contact %d: %s %s"):format(jane.id, jane.first_name, jane.email))

local c = client:contact{ email = email, first_name = "Jane" }
c:set("city", "Toronto"):set{ province = "ON", country = "CA" }
 :interest("Newsletter", "Set")
 :interest("Specials", "Unset")
 :mandatory_consent("Set")
 :autoresponder("Whitepaper Download", "Set")
 :custom_field("barcode", "A-1")
 :consent("Express", "Signed up on the homepage form")
 :clear("title")
local saved, err = c:save{ keyfield = "email" }
if not saved then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
table.sort(c.interests)
print(("saved contact %d: %s, %s; consent %s; interests %s; nurtures %s; barcode %s; title %q")
  :format(c.id, c.city, c.province, c.consent_status, table.concat(c.interests, ", "),
          table.concat(c.autoresponders, ", "), c.custom_fields.barcode, c.title))
