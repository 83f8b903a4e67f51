-- Setters validate at once and raise, naming the field and the problem;
-- nothing here reaches a server (the base URL points nowhere on purpose).
local envoke = require "envoke"

local client = envoke.new{ api_id = "id", api_key = "key", base_url = "http://127.0.0.1:9" }

local function raises(pattern, f)
  local ok, msg = pcall(f)
  assert.is_false(ok, "expected an error matching " .. pattern)
  assert.truthy(tostring(msg):find(pattern), ("%q does not match %q"):format(tostring(msg), pattern))
end

describe("contact setters", function()
  local c
  before_each(function() c = client:contact() end)

  it("chain and record only what changed", function()
    c:set("city", "Toronto"):set{ province = "ON", country = "CA" }
     :interest("Newsletter", "Set"):interest("Specials", "unset"):mandatory_consent()
     :autoresponder("Whitepaper Download", "dequeue"):custom_field("barcode", "A-1")
     :consent("express", "Signed up on the homepage form",
              { effective_date = "2024-05-01T10:00:00", force_downgrade = true })
    assert.are.same({
      city = "Toronto", province = "ON", country = "CA",
      interests = { Newsletter = "Set", Specials = "Unset", ["Mandatory consent"] = "Set" },
      autoresponders = { ["Whitepaper Download"] = "Dequeue" },
      custom_fields = { barcode = "A-1" },
      consent_status = "Express", consent_description = "Signed up on the homepage form",
      consent_effective_date = "2024-05-01T10:00:00+00:00", consent_force_downgrade = true,
    }, c:changes())
  end)

  it("read back pending plain values as fields", function()
    c:set("city", "Toronto")
    c.province = "ON" -- assignment goes through set
    assert.are.equal("Toronto", c.city)
    assert.are.equal("ON", c.province)
    assert.is_nil(c.first_name)
  end)

  it("refuse an unknown field", function()
    raises("contact field 'citty' is an unknown field", function() c:set("citty", "x") end)
    raises("contact field 'nope' is an unknown field", function() c.nope = 1 end)
  end)

  it("refuse a wrong type", function()
    raises("contact field 'city' must be a string, got number", function() c:set("city", 12) end)
    raises("contact field 'consent_force_downgrade' must be true or false", function()
      c:consent("Revoked", nil, { force_downgrade = "yes" })
    end)
  end)

  it("count length in characters, not bytes", function()
    c:set("first_name", ("é"):rep(20)) -- 40 bytes, 20 characters: fits
    raises("contact field 'first_name' is too long %(21 characters, maximum 20%)", function()
      c:set("first_name", ("é"):rep(21))
    end)
    raises("contact field 'email' is too long %(61 characters, maximum 60%)", function()
      c:set("email", ("a"):rep(49) .. "@example.com")
    end)
  end)

  it("know every maximum length of the seed page", function()
    local max = { remote_id = 60, first_name = 20, last_name = 20, title = 50, company = 50, phone = 25,
                  address_1 = 100, address_2 = 100, city = 20, country = 50, province = 50,
                  postal_code = 15, website = 255, feedback = 65535, consent_description = 65535 }
    for field, n in pairs(max) do
      c:set(field, ("x"):rep(n))
      raises("contact field '" .. field .. "' is too long %(" .. (n + 1) .. " characters, maximum " .. n .. "%)",
        function() c:set(field, ("x"):rep(n + 1)) end)
    end
  end)

  it("refuse invalid UTF-8", function()
    raises("contact field 'city' is not valid UTF%-8", function() c:set("city", "\255") end)
  end)

  it("take the fields a table's pairs yields, as given", function()
    local defaults = setmetatable({ city = "Toronto" }, { __index = { id = 7 } })
    local from_defaults = client:contact(defaults)
    assert.is_nil(from_defaults.id) -- pairs never sees an inherited id
    assert.are.equal("Toronto", from_defaults.city)
    local backing = { id = "42", external_id = "x-1" }
    local proxy = setmetatable({}, { __pairs = function() return next, backing, nil end })
    local from_proxy = client:contact(proxy)
    if from_proxy.external_id then -- this Lua honours __pairs
      assert.are.equal(42, from_proxy.id)
      assert.are.equal("/v1/contacts/42", require("envoke.contact").plan(from_proxy:set("city", "Oslo"), "save").path)
    end
  end)

  it("judge text at the edges of plain ASCII as the schema does", function()
    c:set("city", ("x"):rep(20)):set("province", "a\0b"):set("country", "")
    assert.are.same({ city = ("x"):rep(20), province = "a\0b" }, c:changes())
    raises("contact field 'city' is not valid UTF%-8", function() c:set("city", "Toront\128") end)
    raises("contact field 'city' is too long %(21 characters", function() c:set("city", ("\0"):rep(21)) end)
    raises("contact field 'email' is not an email address", function() c:set("email", "jane") end)
    c:set("city", ("é"):rep(20))
    assert.are.equal(("é"):rep(20), c.city)
  end)

  it("accept the 11 languages and nothing else", function()
    for _, l in ipairs{ "en", "fr", "ar", "zh", "de", "it", "ja", "ko", "pt", "ru", "es" } do c:set("language", l) end
    c:set("language", "FR")
    assert.are.equal("fr", c.language)
    raises("contact field 'language' is not one of en, fr", function() c:set("language", "nl") end)
  end)

  it("accept consent statuses in both spellings, any case, keeping the spelling the caller chose", function()
    c:consent("implied - no expiry", "member")
    assert.are.equal("Implied - No Expiry", c.consent_status)
    c:consent("Not Provided")
    assert.are.equal("Not Provided", c.consent_status)
    c:consent("not provided")
    assert.are.equal("Not provided", c.consent_status)
    c:consent("IMPLIED: NO EXPIRY", "member")
    assert.are.equal("Implied: No Expiry", c.consent_status)
    raises("contact field 'consent_status' is not one of", function() c:consent("Maybe", "x") end)
    raises("only Envoke sets it", function() c:consent("Expired") end)
    raises("only Envoke sets it", function() c:consent("Envoke Spam Reported") end)
  end)

  it("require a description with every sendable consent, before anything is sent", function()
    for _, s in ipairs{ "Express", "Implied - Inquiry", "Implied - Transaction", "Implied: No Expiry" } do
      raises("consent '" .. s:gsub("%-", "%%-") .. "' needs a description", function() c:consent(s) end)
      raises("needs a description", function() c:consent(s, "") end)
    end
    c:consent("Revoked") -- not sendable: no description needed
    c:set("consent_status", "Express") -- bypassing consent() is caught at save
    raises("consent 'Express' needs a description", function() c:save() end)
  end)

  it("refuse a malformed RFC 3339 date", function()
    raises("contact field 'consent_effective_date' is not an RFC 3339 date%-time", function()
      c:consent("Express", "x", { effective_date = "27/10/2017" })
    end)
    raises("is not an RFC 3339", function() c:consent("Express", "x", { effective_date = "2017-02-30T00:00:00Z" }) end)
    c:consent("Express", "x", { effective_date = "2017-10-27T14:19:57-04:00" })
    assert.are.equal("2017-10-27T18:19:57+00:00", c.consent_effective_date)
  end)

  it("refuse read-only fields", function()
    raises("contact field 'id' is read%-only", function() c:set("id", 5) end)
    raises("contact field 'external_id' is read%-only", function() c:set("external_id", "x") end)
    raises("contact field 'consent_expiry' is read%-only", function() c:set("consent_expiry", "2020-01-01") end)
    raises("contact field 'id' is read%-only", function() c:clear("id") end)
  end)

  it("refuse an id outside 1..4294967295 or not a plain integer", function()
    for _, bad in ipairs{ 0, -1, 4294967296, 1.5, "12/../x", "1 2", "0x10", {} } do
      raises("contact field 'id' must be an integer from 1 to 4294967295", function() client:contact{ id = bad } end)
      raises("get: id must be an integer from 1 to 4294967295", function() client:get(bad) end)
    end
    assert.are.equal(4294967295, client:contact{ id = "4294967295" }.id)
    raises("interest id must be an integer", function() c:interest(0) end)
  end)

  it("refuse bad interest and autoresponder actions", function()
    raises("'Newsletter' must be Set, Unset, got 'Dequeue'", function() c:interest("Newsletter", "Dequeue") end)
    raises("'Seq' must be Set, Unset, Dequeue, got 'Stop'", function() c:autoresponder("Seq", "Stop") end)
    raises("interest must be named by a non%-empty string or an id", function() c:interest("") end)
    c:interest(1235, "Set")
    assert.are.same({ ["1235"] = "Set" }, c:changes().interests)
  end)

  it("refuse nil values and point to clear", function()
    raises("contact field 'city' needs a value %(use clear to empty it%)", function() c:set("city", nil) end)
  end)

  it("ignore blank values, as the API does, and clear only on request", function()
    c:set("city", "")
    assert.are.same({}, c:changes())
    c:clear("title"):clear("custom_fields.barcode")
    assert.are.same({ title = "", custom_fields = { barcode = "" } }, c:changes())
    raises("cannot be cleared", function() c:clear("interests") end)
  end)

  it("take the whole-table forms of interests, autoresponders and custom fields", function()
    c:set("interests", { "International", "Consumer" })
     :set("interests", { ["1235"] = "set", ["4377"] = "Unset" })
     :set("autoresponders", { "Marketing Sequence 1" })
     :set("custom_fields", { a = "1" })
     :set("custom_fields.b", "2")
    assert.are.same({
      interests = { International = "Set", Consumer = "Set", ["1235"] = "Set", ["4377"] = "Unset" },
      autoresponders = { ["Marketing Sequence 1"] = "Set" },
      custom_fields = { a = "1", b = "2" },
    }, c:changes())
    raises("custom_fields.n' must be a string", function() c:custom_field("n", 5) end)
  end)

  it("refuse bad save options before sending", function()
    c:set("city", "x")
    raises("save: option 'keyfield' must be id, email or remote_id", function() c:save{ keyfield = "phone" } end)
    raises("save: unknown option 'key'", function() c:save{ key = "email" } end)
  end)

  it("refuse bad client options, naming them", function()
    raises("envoke.new: unknown option 'timout'", function() envoke.new{ timout = 1 } end)
    raises("envoke.new: option 'timeout' must be a number, got string", function() envoke.new{ timeout = "1" } end)
    raises("envoke.new: option 'timeout' must be from 0 to 86400", function() envoke.new{ timeout = 0 } end)
    raises("option 'transport' must be 'curl', 'ngx', 'haproxy' or 'in_process'",
      function() envoke.new{ transport = "smoke" } end)
    raises("option 'base_url' must start with http", function() envoke.new{ base_url = "ftp://x" } end)
  end)

  -- "sandbox" is the transport's name in 0.1.0; code written for it keeps working.
  for _, name in ipairs{ "in_process", "sandbox" } do
    it("take transport = '" .. name .. "': the in-process transport, no credentials needed", function()
      local in_process = envoke.new{ transport = name }
      assert.are.equal(require("envoke.transport.in_process"), getmetatable(in_process.transport))
      assert.is_truthy(in_process:ping())
      assert.are.equal(1, in_process:contact{ email = "a@example.com" }:insert().id)
      in_process:close()
    end)
  end

  it("refuse bad list options", function()
    raises("list: option 'limit' must be an integer from 1 to 100", function() client:list{ limit = 101 } end)
    raises("contacts: option 'page_size' must be an integer from 1 to 100",
      function() client:contacts{ page_size = 0 } end)
    raises("list: unknown option 'filtre'", function() client:list{ filtre = {} } end)
    raises("find takes exactly one of id, email, remote_id", function() client:find{ email = "a@b.co", id = 1 } end)
    raises("find takes exactly one of id, email, remote_id", function() client:find{ phone = "1" } end)
  end)
end)
