-- The contact API suite, run once per environment (the sandbox over HTTP, the
-- in-process sandbox, and inside nginx). `env` gives:
--   env.client(opts)              a client on that environment (opts merged in)
--   env.control(method, path, t)  a test-control call: status, decoded body
--   env.busted                    the spec file's busted functions (they are not globals)
--   env.settings                  (optional) sandbox settings that pick the other reading of
--                                 what Envoke's documentation leaves open (sandbox/README.md);
--                                 the client must be right under every one
local envoke = require "envoke"
local cjson = require "cjson"

return function(env)
  local describe, it, before_each, assert = env.busted.describe, env.busted.it, env.busted.before_each,
    env.busted.assert
  local client
  local readings = env.settings or {}
  -- Unknown names ignored instead of refused: the write succeeds, and unapplied() tells.
  local ignores_unknown = readings.unknown_names == "ignore"

  local function control(method, path, body)
    local status, data = env.control(method, path, body)
    assert(status and status < 300, "control " .. method .. " " .. path .. " failed: " .. tostring(status))
    return data
  end

  local function log()
    return control("GET", "/_sandbox/log")
  end

  -- The API requests (not controls) the sandbox received since the last reset.
  local function api_requests()
    local out = {}
    local entries = log().result_data
    for _, r in ipairs(entries) do
      if not r.path:find("^/_sandbox") then out[#out + 1] = r end
    end
    return out
  end

  local function last_body()
    local list = api_requests()
    local body = list[#list].body
    return type(body) == "string" and cjson.decode(body) or body
  end

  local function load(contacts)
    control("POST", "/_sandbox/contacts", contacts)
  end

  local function new_contact(fields)
    local c = assert(client:contact(fields):insert())
    control("DELETE", "/_sandbox/log")
    return c
  end

  before_each(function()
    control("POST", "/_sandbox/reset")
    if next(readings) then control("POST", "/_sandbox/settings", readings) end
    client = env.client()
  end)

  describe("insert", function()
    it("creates a contact and reads back what the server answered", function()
      local c, err = client:contact{ email = "Jane@Example.com", first_name = "Jane" }:insert()
      assert.is_nil(err)
      assert.is_number(c.id)
      assert.are.equal("Jane", c.first_name)
      assert.are.equal("Not provided", c.consent_status) -- the default of a new contact
      assert.are.equal(32, #c.external_id)
      assert.are.same({}, c:changes())
      local r = api_requests()[1]
      assert.are.equal("POST", r.method)
      assert.are.equal("/v1/contacts", r.path)
    end)

    it("refuses a duplicate email (case-insensitive) as kind duplicate", function()
      new_contact{ email = "dup@example.com" }
      local c, err = client:contact{ email = "DUP@example.com" }:insert()
      assert.is_nil(c)
      assert.are.equal("duplicate", err.kind)
      assert.are.equal(400, err.status)
      assert.is_false(err.retryable)
      assert.truthy(tostring(err):find("HTTP 400", 1, true))
    end)

    it("needs an email, and says so without sending", function()
      local c, err = client:contact{ first_name = "No" }:insert()
      assert.is_nil(c)
      assert.are.equal("validation", err.kind)
      assert.truthy(err.message:find("email", 1, true))
      assert.are.equal(0, #api_requests())
    end)
  end)

  describe("save (update)", function()
    it("updates by path id: the seed's example for contact 1234", function()
      load{ { id = 1234, email = "example@api.com", city = "Toronto", province = "ON" } }
      local c = assert(client:contact{ id = 1234 }:set{ province = "MB", city = "Winnipeg" }:save())
      assert.are.equal("Winnipeg", c.city)
      assert.are.equal("MB", c.province)
      assert.are.equal("example@api.com", c.email)
      local r = api_requests()[1]
      assert.are.equal("PATCH", r.method)
      assert.are.equal("/v1/contacts/1234", r.path)
      assert.are.same({ province = "MB", city = "Winnipeg" }, last_body())
    end)

    it("updates by email in the body: the seed's second example", function()
      load{ { id = 7, email = "example@api.com", first_name = "Old" } }
      local c = assert(client:contact{ email = "example@api.com", first_name = "UPDATED" }:save())
      assert.are.equal(7, c.id)
      assert.are.equal("UPDATED", c.first_name)
      local r = api_requests()[1]
      assert.are.equal("/v1/contacts", r.path)
      assert.truthy(r.query:find("keyfield=email", 1, true))
    end)

    it("updates by remote_id, and with duplicate emails allowed two contacts share one", function()
      control("POST", "/_sandbox/settings", { allow_duplicate_emails = true })
      load{ { id = 1, email = "shared@example.com", remote_id = "A-1" },
            { id = 2, email = "shared@example.com", remote_id = "436D-SF92-J4G5" } }
      local c = assert(client:contact{ remote_id = "436D-SF92-J4G5", email = "shared@example.com", first_name = "John" }
        :save{ keyfield = "remote_id" })
      assert.are.equal(2, c.id)
      assert.are.equal("John", c.first_name)
      assert.are.equal("", assert(client:get(1)).first_name) -- the other one is untouched
    end)

    it("answers not_found for an unknown key", function()
      local c, err = client:contact{ email = "nobody@example.com", city = "X" }:save()
      assert.is_nil(c)
      assert.are.equal("not_found", err.kind)
      assert.are.equal(400, err.status)
      local c2, err2 = client:contact{ id = 999999, city = "X" }:save()
      assert.is_nil(c2)
      assert.are.equal("not_found", err2.kind)
    end)

    it("sends only what changed since the contact was loaded", function()
      new_contact{ email = "a@example.com", first_name = "A", city = "Toronto" }
      local c = assert(client:find{ email = "a@example.com" })
      c:set("city", "Ottawa")
      assert(c:save())
      assert.are.same({ city = "Ottawa" }, last_body())
      assert.are.equal("A", c.first_name)
    end)

    it("sends nothing when nothing changed", function()
      local c = new_contact{ email = "same@example.com" }
      assert.are.equal(c, c:save())
      assert.are.equal(0, #api_requests())
    end)

    it("ignores blank values by default and clears with clear()", function()
      local c = new_contact{ email = "clear@example.com", first_name = "Keep", title = "Boss" }
      c:set("first_name", "")
      assert(c:save())
      assert.are.equal("Keep", c.first_name)
      c:clear("title")
      assert(c:save())
      assert.are.equal("", c.title)
      assert.are.equal("Keep", c.first_name)
      local r = api_requests()[1]
      assert.truthy(r.query:find("write_empty_values=1", 1, true))
      assert.are.same({ title = "" }, last_body())
    end)

    it("reports every problem of a request in one error", function()
      local c = new_contact{ email = "many@example.com" }
      -- Bypass the setters to prove the server's side: two unknown names at once.
      c:interest("No Such Interest"):autoresponder("No Such Nurture")
      local ok, err = c:save()
      if ignores_unknown then
        assert.are.equal(c, ok)
        assert.are.same({ "autoresponders", "interests" }, c:unapplied())
        return
      end
      assert.is_nil(ok)
      assert.are.equal("validation", err.kind)
      assert.are.equal(2, #err.errors)
      local text = tostring(err)
      assert.truthy(text:find("No Such Interest", 1, true))
      assert.truthy(text:find("No Such Nurture", 1, true))
    end)
  end)

  describe("consent", function()
    it("records Express with its description and effective date", function()
      local c = new_contact{ email = "c@example.com" }
      assert(c:consent("Express", "Signed up", { effective_date = "2024-05-01T10:00:00-04:00" }):save())
      assert.are.equal("Express", c.consent_status)
      assert.are.equal("Signed up", c.consent_description)
      assert.are.equal("2024-05-01T14:00:00+00:00", c.consent_effective_date)
      assert.are.equal("", c.consent_expiry)
    end)

    it("gives Implied - Inquiry an expiry 6 months on, and Implied - Transaction 2 years", function()
      control("POST", "/_sandbox/clock", { set = "2024-02-01T00:00:00Z" })
      local c = new_contact{ email = "i@example.com" }
      assert(c:consent("Implied - Inquiry", "Form", { effective_date = "2024-01-15T00:00:00Z" }):save())
      assert.are.equal("2024-07-15", c.consent_expiry)
      local t = new_contact{ email = "t@example.com" }
      assert(t:consent("implied - transaction", "Bought", { effective_date = "2024-01-15T00:00:00Z" }):save())
      assert.are.equal("Implied - Transaction", t.consent_status)
      assert.are.equal("2026-01-15", t.consent_expiry)
    end)

    it("refuses a downgrade without force, keeping the old status while the rest applies", function()
      local c = new_contact{ email = "d@example.com" }
      assert(c:consent("Express", "Signed up"):save())
      c:consent("Implied: No Expiry", "Member"):set("city", "Halifax")
      if readings.refused_downgrade == "error" then
        -- The other reading: a 400 and nothing applied.
        local ok, err = c:save()
        assert.is_nil(ok)
        assert.are.equal("validation", err.kind)
        assert.truthy(tostring(err):find("downgrade", 1, true))
        c:set("city", "Halifax")
        c:consent("Express", "Signed up")
      end
      assert(c:save())
      assert.are.equal("Express", c.consent_status) -- refused: shows the old status
      assert.are.equal("Halifax", c.city)
      if readings.refused_downgrade ~= "error" then
        assert.are.same({ "consent_description", "consent_status" }, c:unapplied()) -- and says so
      end
      assert(c:consent("Implied: No Expiry", "Member", { force_downgrade = true }):save())
      assert.are.equal("Implied: No Expiry", c.consent_status)
      assert(c:consent("Not provided", nil, { force_downgrade = true }):save())
      assert.are.equal("Not provided", c.consent_status)
    end)

    it("always allows Revoked, and spam reports never change", function()
      local c = new_contact{ email = "r@example.com" }
      assert(c:consent("Express", "Yes"):save())
      assert(c:consent("Revoked"):save())
      assert.are.equal("Revoked", c.consent_status)
      assert(c:consent("External Spam Reported"):save())
      c:consent("Express", "Again", { force_downgrade = true })
      if readings.refused_downgrade == "error" then
        local ok, err = c:save()
        assert.is_nil(ok)
        assert.are.equal("validation", err.kind)
        assert(c:reload())
      else
        assert(c:save())
        assert.are.same({ "consent_description", "consent_status" }, c:unapplied())
      end
      assert.are.equal("External Spam Reported", c.consent_status)
    end)

    it("reads an expired Implied consent as Expired once the clock passes it", function()
      local c = new_contact{ email = "e@example.com" }
      assert(c:consent("Implied - Inquiry", "Form"):save())
      control("POST", "/_sandbox/clock", { advance_days = 200 })
      assert(c:reload())
      assert.are.equal("Expired", c.consent_status)
    end)
  end)

  describe("interests and autoresponders", function()
    it("sets and unsets by name and by id, with mandatory consent", function()
      local by_name = assert(client:interests())
      local c = new_contact{ email = "tags@example.com" }
      assert(c:interest("International"):interest(by_name.Consumer, "Set"):mandatory_consent():save())
      table.sort(c.interests)
      assert.are.same({ "Consumer", "International", "Mandatory consent" }, c.interests)
      assert(c:interest("International", "Unset"):save())
      table.sort(c.interests)
      assert.are.same({ "Consumer", "Mandatory consent" }, c.interests)
    end)

    it("maps names and ids both ways", function()
      local by_name, by_id = assert(client:interests())
      for _, name in ipairs{ "International", "Consumer", "Business Products", "Newsletter",
                             "Newsletter Subscription", "Specials", "Mandatory consent" } do
        assert.is_number(by_name[name], name)
        assert.are.equal(name, by_id[by_name[name]])
      end
      local nurtures = assert(client:autoresponders())
      assert.is_number(nurtures["Marketing Sequence 1"])
      assert.is_number(nurtures["Whitepaper Download"])
    end)

    it("refuses an unknown interest, naming it (or, ignored, reports it unapplied)", function()
      local c = new_contact{ email = "unknown@example.com" }
      local ok, err = c:interest("Gardening"):save()
      if ignores_unknown then
        assert.are.equal(c, ok)
        assert.are.same({ "interests" }, c:unapplied())
        return
      end
      assert.is_nil(ok)
      assert.are.equal("validation", err.kind)
      assert.truthy(tostring(err):find("Gardening", 1, true))
    end)

    it("sets nurtures only with sendable consent, and dequeues and unsets them", function()
      local c = new_contact{ email = "n@example.com" }
      assert(c:autoresponder("Whitepaper Download"):save())
      assert.are.same({}, c.autoresponders) -- Not provided: nothing is set
      assert.are.same({ "autoresponders" }, c:unapplied()) -- and the caller can tell
      assert(c:consent("Express", "Yes"):autoresponder("Whitepaper Download")
              :autoresponder("Marketing Sequence 1"):save())
      table.sort(c.autoresponders)
      assert.are.same({ "Marketing Sequence 1", "Whitepaper Download" }, c.autoresponders)
      assert(c:autoresponder("Marketing Sequence 1", "Dequeue"):autoresponder("Whitepaper Download", "Unset"):save())
      assert.are.same({ "Marketing Sequence 1" }, c.autoresponders)
    end)
  end)

  describe("custom fields", function()
    it("are written and read as strings", function()
      local c = new_contact{ email = "cf@example.com" }
      assert(c:custom_field("barcode", "A-1"):custom_field("birthday", "2024-01-01"):save())
      assert.are.equal("A-1", c.custom_fields.barcode)
      assert.are.equal("2024-01-01", c.custom_fields.birthday)
      assert(c:clear("custom_fields.barcode"):save())
      assert.are.equal("", c.custom_fields.barcode or "")
    end)

    it("read as a table whether the server answers {} or []", function()
      local c = new_contact{ email = "empty@example.com" }
      assert.are.equal("table", type(c.custom_fields))
      assert.is_nil(next(c.custom_fields))
    end)
  end)

  describe("upsert", function()
    it("inserts when absent and updates when present, adding tags without dropping any", function()
      local c = assert(client:contact{ email = "up@example.com", first_name = "One" }:interest("Consumer"):upsert())
      local id = c.id
      local again = assert(client:contact{ email = "up@example.com", city = "Calgary" }:interest("Specials"):upsert())
      assert.are.equal(id, again.id)
      assert.are.equal("One", again.first_name)
      assert.are.equal("Calgary", again.city)
      table.sort(again.interests)
      assert.are.same({ "Consumer", "Specials" }, again.interests)
    end)
  end)

  describe("reading", function()
    it("gets by id, and answers not_found for a missing one", function()
      local c = new_contact{ email = "g@example.com" }
      local got = assert(client:get(c.id))
      assert.are.equal("g@example.com", got.email)
      local missing, err = client:get(4294967295)
      assert.is_nil(missing)
      assert.are.equal("not_found", err.kind)
    end)

    it("accepts an id the server sends as a string", function()
      load{ { id = "77", email = "s@example.com" } }
      local c = assert(client:find{ email = "s@example.com" })
      assert.are.equal(77, c.id)
    end)

    it("finds by email (values percent-encoded), remote_id and id", function()
      new_contact{ email = "o'brien+tag&x=1@example.com", remote_id = "R 1/2" }
      local c = assert(client:find{ email = "o'brien+tag&x=1@example.com" })
      assert.are.equal("R 1/2", c.remote_id)
      assert.are.equal(c.id, assert(client:find{ remote_id = "R 1/2" }).id)
      assert.are.equal(c.email, assert(client:find{ id = c.id }).email)
      local none, err = client:find{ email = "none@example.com" }
      assert.is_nil(none)
      assert.are.equal("not_found", err.kind)
    end)

    it("iterates every match across pages, with filters, sort and fields", function()
      local list = {}
      for i = 1, 7 do
        list[i] = { id = i, email = ("p%d@example.com"):format(i),
                    consent_status = i % 2 == 0 and "Express" or "Not provided",
                    consent_description = i % 2 == 0 and "yes" or "",
                    consent_effective_date = ("2024-01-%02dT00:00:00+00:00"):format(i) }
      end
      load(list)
      local seen = {}
      for c, err in client:contacts{ filter = { consent_status = "Express" }, sort = { id = "DESC" }, page_size = 2 } do
        assert.is_nil(err)
        seen[#seen + 1] = c.id
      end
      assert.are.same({ 6, 4, 2 }, seen)
      seen = {}
      for c in client:contacts{ filter = { consent_effective_date = { ["$gte"] = "2024-01-05T00:00:00Z" } },
                                sort = "id", page_size = 2 } do
        seen[#seen + 1] = c.id
      end
      assert.are.same({ 5, 6, 7 }, seen)
      seen = {}
      local either = { ["$or"] = { { email = "p1@example.com" }, { id = { ["$in"] = { 3, 4 } } } } }
      for c in client:contacts{ filter = either,
                                sort = "id", fields = { "id", "email" } } do
        seen[#seen + 1] = c.id
        assert.is_nil(c.first_name)
      end
      assert.are.same({ 1, 3, 4 }, seen)
    end)

    it("yields false, err once when a page fails", function()
      local bad = env.client{ api_key = "wrong-key" }
      local results = {}
      for c, err in bad:contacts() do results[#results + 1] = { c, err } end
      assert.are.equal(1, #results)
      assert.is_false(results[1][1])
      assert.are.equal("auth", results[1][2].kind)
    end)
  end)

  describe("delete and reload", function()
    it("deletes by id, refuses revoked contacts, and reloads", function()
      local c = new_contact{ email = "del@example.com" }
      assert.is_true(c:delete())
      local gone, err = c:reload()
      assert.is_nil(gone)
      assert.are.equal("not_found", err.kind)
      local r = new_contact{ email = "rev@example.com" }
      assert(r:consent("Revoked"):save())
      local ok, err2 = r:delete()
      assert.is_nil(ok)
      assert.are.equal("validation", err2.kind)
      local fresh = client:contact()
      local none, err3 = fresh:delete()
      assert.is_nil(none)
      assert.are.equal("validation", err3.kind)
    end)
  end)

  describe("fidelity to the real Envoke", function()
    it("sends a consent status as the caller spelled it, reading both spellings as one status", function()
      local c = new_contact{ email = "spell@example.com" }
      assert(c:consent("Implied - No Expiry", "Member"):save())
      assert.are.equal("Implied - No Expiry", last_body().consent_status)
      assert.are.equal("Implied: No Expiry", envoke.schema.consent.canonical(c.consent_status))
      assert.are.same({}, c:unapplied())
      assert(c:consent("Not Provided", nil, { force_downgrade = true }):save())
      assert.are.equal("Not Provided", last_body().consent_status)
      assert(c:consent("not provided", nil, { force_downgrade = true }):save())
      assert.are.equal("Not provided", last_body().consent_status)
    end)

    it("round-trips a contact's fields and exported rows, never sending what the server owns", function()
      local got = new_contact{ email = "rt@example.com", first_name = "Ann" }
      assert(got:consent("Implied - Inquiry", "Asked"):save())
      local copy = client:contact(got:fields())
      assert.are.equal(got.external_id, copy.external_id)
      assert(copy:set("city", "Laval"):save())
      local body = last_body()
      assert.is_nil(body.consent_expiry)
      assert.is_nil(body.external_id)
      assert.is_nil(body.date_created)
      local rows = { got:fields(), got:fields() }
      rows[1].email, rows[2].email = "rt2@example.com", "rt3@example.com"
      local results, summary = client:upsert_all(rows, { keyfield = "email" })
      assert.are.equal(2, summary.succeeded, tostring(results[1].err))
      assert.is_true(pcall(function() copy:set("consent_expiry", "2030-01-01") end) == false)
    end)

    it("upserts by the keyfield, so a contact deleted in Envoke since it was read is created again", function()
      local c = new_contact{ email = "stale@example.com", first_name = "Old" }
      local old_id = c.id
      control("POST", "/_sandbox/reset")
      if next(readings) then control("POST", "/_sandbox/settings", readings) end
      assert(c:set("first_name", "New"):upsert())
      assert.is_nil(last_body().id)
      assert.are_not.equal(nil, c.id)
      assert.are.equal("New", c.first_name)
      assert.are.equal(1, #assert(client:list{}))
      assert.is_number(old_id)
      local by_id, err = client:contact{ id = 424242, city = "X" }:upsert{ keyfield = "id" }
      assert.is_nil(by_id)
      assert.are.equal("not_found", err.kind)
    end)

    it("walks by id, so deletes during the walk never skip a live contact", function()
      local list = {}
      for i = 1, 240 do list[i] = { id = i, email = ("w%d@example.com"):format(i) } end
      load(list)
      local seen, n = {}, 0
      for c, err in client:contacts{ page_size = 20 } do
        assert.is_nil(err)
        n = n + 1
        assert.is_nil(seen[c.id], "repeated " .. tostring(c.id))
        seen[c.id] = true
        if n == 20 then -- the whole first page goes away mid-walk
          for id = 1, 20 do assert.is_true(assert(client:contact{ id = id }:delete())) end
        end
      end
      for id = 21, 240 do assert.is_true(seen[id], "live contact " .. id .. " was never returned") end
      local r = api_requests()
      assert.truthy(r[#r].query:find("sort%5Bid%5D=ASC", 1, true))
    end)

    it("reads date_created, and filters and sorts by it", function()
      local a = new_contact{ email = "dc1@example.com" }
      control("POST", "/_sandbox/clock", { advance_days = 2 })
      local b = new_contact{ email = "dc2@example.com" }
      assert.is_string(a.date_created)
      assert.truthy(a.date_created < b.date_created, a.date_created .. " " .. b.date_created)
      local later = assert(client:list{ filter = { date_created = { ["$gt"] = a.date_created } },
                                        fields = { "id", "date_created" } })
      assert.are.equal(1, #later)
      assert.are.equal(b.id, later[1].id)
      local newest = assert(client:list{ sort = { date_created = "DESC" }, limit = 1 })
      assert.are.equal(b.id, newest[1].id)
    end)

    it("tells what a write did not apply, in bulk results too", function()
      local results = client:upsert_all{ { email = "u1@example.com", autoresponders = { "Whitepaper Download" } },
                                         { email = "u2@example.com", city = "Laval" } }
      assert.are.same({ "autoresponders" }, results[1].unapplied)
      assert.are.same({}, results[2].unapplied)
    end)

    it("cuts over-long texts when asked, at the limit in characters", function()
      local events = {}
      local cut = env.client{ on_overlong = "truncate", logger = function(e)
        if e.event == "truncated" then events[#events + 1] = e end
      end }
      local c = assert(cut:contact{ email = "qc@example.com", city = "Saint-Jean-sur-Richelieu",
                                    first_name = ("é"):rep(30) }:insert())
      assert.are.equal("Saint-Jean-sur-Riche", c.city)
      assert.are.equal(("é"):rep(20), c.first_name)
      assert.are.equal(2, #events)
      assert.has_error(function() client:contact{ city = "Saint-Jean-sur-Richelieu" } end)
    end)

    it("decides not_found and duplicate from the request and the texts together", function()
      new_contact{ email = "k@example.com" }
      local _, dup = client:contact{ email = "k@example.com" }:insert()
      assert.are.equal("duplicate", dup.kind)
      local _, missing = client:contact{ id = 31337, city = "X" }:save()
      assert.are.equal("not_found", missing.kind)
      -- The same words to a request that cannot be about a missing contact stay a validation error.
      local _, raw = client:request("PATCH", "/v1/contacts/31337", { city = "X" })
      assert.are.equal("validation", raw.kind)
    end)

    it("reads one contact through the documented filter, not GET /v1/contacts/{id}", function()
      local c = new_contact{ email = "doc@example.com" }
      control("POST", "/_sandbox/settings", { get_by_id = false })
      assert.are.equal("doc@example.com", assert(client:get(c.id)).email)
      assert(c:reload())
      for _, r in ipairs(api_requests()) do
        assert.are.equal("/v1/contacts", r.path)
        assert.truthy(r.query:find("filter%5Bid%5D=" .. c.id, 1, true), r.query)
      end
    end)
  end)

  describe("credentials and errors", function()
    it("pings with good credentials and fails with kind auth, never showing the key", function()
      assert.is_table(assert(client:ping()))
      local events = {}
      local bad = env.client{ api_key = "s3cr3t-KEY-value", logger = function(e) events[#events + 1] = e end }
      local ok, err = bad:ping()
      assert.is_nil(ok)
      assert.are.equal("auth", err.kind)
      assert.are.equal(401, err.status)
      assert.falsy(tostring(err):find("s3cr3t", 1, true))
      assert.are.equal(2, #events)
      for _, e in ipairs(events) do
        local seen = {}
        for k, v in pairs(e) do seen[#seen + 1] = tostring(k) .. "=" .. tostring(v) end
        assert.falsy(table.concat(seen, " "):find("s3cr3t", 1, true))
      end
      assert.are.equal("request", events[1].event)
      assert.are.equal("error", events[2].event)
    end)

    it("carries kind, status, message, errors and retryable on every error", function()
      local c = new_contact{ email = "err@example.com" }
      local ok, err, want
      if ignores_unknown then -- an unknown name is no error then: take another 400
        ok, err = client:contact{ id = 999999, city = "X" }:save()
        want = "not_found"
      else
        ok, err = c:set("language", "fr"):interest("Nope"):save()
        want = "validation"
      end
      assert.is_nil(ok)
      assert.is_true(envoke.errors.is(err))
      assert.are.equal(want, err.kind)
      assert.are.equal(400, err.status)
      assert.is_string(err.message)
      assert.is_table(err.errors)
      assert.is_false(err.retryable)
    end)
  end)
end
