-- The suite of everything beyond contacts (tags, subscriptions, interests,
-- custom fields, hooks, sending, messages, SendEmails, reports), run once per
-- environment: the sandbox over HTTP, the in-process sandbox, inside nginx.
-- `env` gives, as for contact_suite:
--   env.client(opts)              a client on that environment (opts merged in)
--   env.control(method, path, t)  a test-control call: status, decoded body
--   env.busted                    describe, it, before_each, assert
return function(env)
  local describe, it, before_each, assert = env.busted.describe, env.busted.it, env.busted.before_each,
    env.busted.assert
  local client

  local function control(method, path, body)
    local status, data = env.control(method, path, body)
    assert(status and status < 300, "control " .. method .. " " .. path .. " failed: " .. tostring(status))
    return data.result_data
  end

  -- The API requests the sandbox received since the last reset (or clear).
  local function requests()
    local out = {}
    for _, r in ipairs(control("GET", "/_sandbox/log")) do
      if not r.path:find("^/_sandbox") then out[#out + 1] = r end
    end
    return out
  end

  local function stored(email)
    for _, c in ipairs(control("GET", "/_sandbox/contacts")) do
      if c.email == email then return c end
    end
  end

  local function names(list)
    local out = {}
    for i, item in ipairs(list) do out[i] = item.name end
    return out
  end

  local function has(list, value)
    for _, v in ipairs(list) do if v == value then return true end end
    return false
  end

  before_each(function()
    control("POST", "/_sandbox/reset")
    client = env.client()
  end)

  describe("tags", function()
    it("creates, reads, lists, updates and deletes a tag", function()
      local tag, err = client.tags:create{ name = "Attended 2025", group = "Events", description = "came",
                                           display_names = { en = "Attended", fr = "Présent" } }
      assert.is_nil(err)
      assert.is_string(tag.id)
      assert.are.equal(32, #tag.external_id)
      assert.are.equal("Events", tag.group)
      assert.are.equal("Présent", tag.display_names.fr)
      local got = assert(client.tags:get(tag.id))
      assert.are.equal("Attended 2025", got.name)
      assert.truthy(has(names(assert(client.tags:list{ limit = 100 })), "Attended 2025"))
      local changed = assert(client.tags:update(tag.id, { description = "was there", group = "" }))
      assert.are.equal("was there", changed.description)
      assert.are.equal("", changed.group)
      assert.is_true(client.tags:delete(tag.id))
      local gone, gerr = client.tags:get(tag.id)
      assert.is_nil(gone)
      assert.are.equal("not_found", gerr.kind)
      assert.are.equal(400, gerr.status)
      local r = requests()
      assert.are.equal("POST", r[1].method)
      assert.are.equal("/v2/tags", r[1].path)
      assert.are.equal("DELETE", r[#r - 1].method)
    end)

    it("sorts, filters (exact and not-equal), trims fields and pages by itself", function()
      for _, n in ipairs{ "Alpha", "Bravo", "Charlie" } do assert(client.tags:create{ name = n, group = "Events" }) end
      local desc = assert(client.tags:list{ sort = { name = "desc" }, filter = { group = "Events" } })
      assert.are.same({ "Charlie", "Bravo", "Alpha" }, names(desc))
      local others = assert(client.tags:list{ filter = { group = { ne = "Events" } }, limit = 100 })
      assert.are.same({ "Business Products", "Consumer", "International" }, names(others))
      local trimmed = assert(client.tags:list{ fields = { "id", "name" }, filter = { name = "Bravo" } })
      assert.are.equal(1, #trimmed)
      assert.is_nil(trimmed[1].description)
      local seen = {}
      for t, err in client.tags:each{ page_size = 2, sort = "name" } do
        assert.truthy(t, err and tostring(err))
        seen[#seen + 1] = t.name
      end
      assert.are.same({ "Alpha", "Bravo", "Business Products", "Charlie", "Consumer", "International" }, seen)
      local pages = 0
      for _, r in ipairs(requests()) do
        if r.method == "GET" and r.query:find("limit=2", 1, true) then pages = pages + 1 end
      end
      assert.are.equal(4, pages) -- 2 + 2 + 2, then an empty page ends the walk
      assert.are.equal(6, #assert(client.tags:all{ sort = "name" }))
    end)

    it("refuses an unknown group and a duplicate name, as validation errors", function()
      local t, err = client.tags:create{ name = "X", group = "No such group" }
      assert.is_nil(t)
      assert.are.equal("validation", err.kind)
      assert.are.equal(400, err.status)
      assert.truthy(tostring(err):find("Invalid 'group'", 1, true))
      local _, dup = client.tags:create{ name = "International" }
      assert.are.equal(400, dup.status)
    end)

    it("makes a tag contacts can use at once, by name", function()
      local tag = assert(client.tags:create{ name = "VIP" })
      local c = assert(client:contact{ email = "vip@example.com" }:interest("VIP"):insert())
      assert.are.same({ "VIP" }, c.interests)
      assert(client.tags:update(tag.id, { name = "Very VIP" }))
      assert.are.same({ "Very VIP" }, stored("vip@example.com").interests)
      assert(client.tags:delete(tag.id))
      assert.are.same({}, stored("vip@example.com").interests)
    end)

    it("adds and removes contacts in bulk, by email and by id, merging not_found", function()
      local tag = assert(client.tags:create{ name = "Bulk" })
      local a = assert(client:contact{ email = "a@example.com" }:insert())
      assert(client:contact{ email = "b@example.com" }:insert())
      local r = assert(client.tags:add_contacts(tag.id, { emails = { "a@example.com", "b@example.com",
                                                                     "ghost@example.com" } }))
      assert.are.equal(3, r.processed)
      assert.are.same({ "ghost@example.com" }, r.not_found)
      assert.are.same({}, r.failed)
      assert.are.equal(1, r.requests)
      assert.are.same({ "Bulk" }, stored("b@example.com").interests)
      r = assert(client.tags:remove_contacts(tag.id, { ids = { a.id, 999 } }))
      assert.are.same({ "999" }, r.not_found)
      assert.are.same({}, stored("a@example.com").interests)
      assert.are.same({ "Bulk" }, stored("b@example.com").interests)
      local last = requests()
      assert.are.equal("/v2/tags/" .. tag.id .. "/contacts", last[#last].path)
      assert.are.equal("DELETE", last[#last].method)
    end)

    it("splits 2,500 contacts into requests of at most 1,000 and merges their answers", function()
      local tag = assert(client.tags:create{ name = "Many" })
      local list = {}
      for i = 1, 3 do list[#list + 1] = { email = ("m%d@example.com"):format(i) } end
      control("POST", "/_sandbox/contacts", list)
      local stored_ids = {}
      for _, c in ipairs(control("GET", "/_sandbox/contacts")) do stored_ids[#stored_ids + 1] = tonumber(c.id) end
      local ids = {}
      for i = 1, 2500 do ids[i] = 100000 + i end
      ids[1], ids[1500], ids[2500] = stored_ids[1], stored_ids[2], stored_ids[3]
      control("DELETE", "/_sandbox/log")
      local r = assert(client.tags:add_contacts(tag.id, { ids = ids }))
      assert.are.equal(2500, r.processed)
      assert.are.equal(3, r.requests)
      assert.are.equal(2497, #r.not_found)
      local sizes = {}
      for _, q in ipairs(requests()) do
        local body = require("cjson").decode(q.body)
        sizes[#sizes + 1] = #body.contact_ids
      end
      assert.are.same({ 1000, 1000, 500 }, sizes)
      for i = 1, 3 do assert.are.same({ "Many" }, stored(("m%d@example.com"):format(i)).interests) end
    end)

    it("goes on after a request that failed, and accounts for every contact of it", function()
      local tag = assert(client.tags:create{ name = "Partly" })
      control("POST", "/_sandbox/contacts", { { email = "p@example.com" } })
      local id = tonumber(control("GET", "/_sandbox/contacts")[1].id)
      local ids = {}
      for i = 1, 1500 do ids[i] = 200000 + i end
      ids[1200] = id
      control("POST", "/_sandbox/faults", { kind = "status", status = 500, path = "/v2/tags/" .. tag.id .. "/contacts",
                                            count = 1 })
      local c = env.client{ retries = 0 }
      local r, err = c.tags:add_contacts(tag.id, { ids = ids })
      assert.is_nil(r)
      assert.are.equal("server", err.kind)
      assert.are.equal(2, err.result.requests)
      assert.are.equal(500, err.result.processed)         -- the second request's
      assert.are.equal(499, #err.result.not_found)
      assert.are.equal(1000, #err.result.failed)          -- every contact of the first
      assert.are.equal("200001", err.result.failed[1].contact_id)
      assert.truthy(err.result.failed[1].reason:find("HTTP 500", 1, true))
      assert.are.same({ "Partly" }, stored("p@example.com").interests)
      local group = c.tags:add_contacts_async(tag.id, { ids = { id } })
      assert(group:wait(5000))
    end)

    it("has the async forms, through the same pipeline", function()
      local h = client.tags:create_async{ name = "Async" }
      local tag, err = h:wait(5000)
      assert.is_nil(err)
      assert.are.equal("Async", tag.name)
      local got
      client.tags:get_async(tag.id, function(t) got = t end):wait(5000)
      assert.are.equal(tag.id, got.id)
      control("POST", "/_sandbox/contacts", { { email = "z1@example.com" } })
      local ids = {}
      for i = 1, 1001 do ids[i] = i end
      local group = client.tags:add_contacts_async(tag.id, { ids = ids })
      local r = assert(group:wait(10000))
      assert.are.equal(2, r.requests)
      assert.are.equal(1001, r.processed)
      assert.are.equal(1000, #r.not_found)
      assert.is_true(group:done())
      local deleted
      client.tags:delete_async(tag.id, function(ok) deleted = ok end):wait(5000)
      assert.is_true(deleted)
    end)

    it("retries a 503 on a list and logs each attempt", function()
      control("POST", "/_sandbox/faults", { kind = "status", status = 503, path = "/v2/tags", count = 1 })
      local events = {}
      local c = env.client{ logger = function(e) events[#events + 1] = e end,
                            retries = { max = 2, base_delay = 0.01 } }
      local list, err = c.tags:list()
      assert.is_nil(err)
      assert.are.equal(3, #list)
      local kinds = {}
      for _, e in ipairs(events) do kinds[#kinds + 1] = e.event end
      assert.are.same({ "request", "error", "retry", "request", "response" }, kinds)
      assert.are.equal("/v2/tags", events[1].path)
    end)
  end)

  describe("subscriptions", function()
    it("creates one with its own fields and filters on prefpage_access", function()
      local s = assert(client.subscriptions:create{ name = "Alumni news", group = "Newsletters",
                                                    prefpage_access = "private",
                                                    display_descriptions = { en = "For alumni" } })
      assert.are.equal("private", s.prefpage_access)
      assert.are.equal("For alumni", s.display_descriptions.en)
      local private = assert(client.subscriptions:list{ filter = { prefpage_access = "private" } })
      assert.are.same({ "Alumni news" }, names(private))
      local _, err = client.subscriptions:create{ name = "Wrong group", group = "Events" }
      assert.truthy(tostring(err):find("Invalid 'group'", 1, true))
    end)

    it("reports the contacts a bulk call failed for, with the merged result", function()
      local s = assert(client.subscriptions:create{ name = "Offers" })
      control("POST", "/_sandbox/contacts", { { email = "ok@example.com" },
        { email = "spam@example.com", consent_status = "External Spam Reported" } })
      local spam = stored("spam@example.com")
      local r, err = client.subscriptions:add_contacts(s.id, { emails = { "ok@example.com", "spam@example.com" } })
      assert.is_nil(r)
      assert.are.equal(400, err.status)
      assert.are.equal("Error setting to contacts", err.message)
      assert.are.equal(2, err.details.processed)
      assert.are.equal(("%d"):format(spam.id), err.details.failed[1].contact_id)
      assert.truthy(err.details.failed[1].reason:find("Spam", 1, true))
      assert.are.equal(2, err.result.processed)
      assert.are.equal(1, #err.result.failed)
      assert.are.same({ "Offers" }, stored("ok@example.com").interests)
    end)
  end)

  describe("interests (v2) and the v1 lookups", function()
    it("lists tags and subscriptions by type and group, and still maps names (v1)", function()
      assert(client.tags:create{ name = "Gala", group = "Events" })
      local tags = assert(client.interests:list{ type = "tag" })
      assert.are.same({ "Business Products", "Consumer", "Gala", "International" }, names(tags))
      for _, t in ipairs(tags) do assert.are.equal("interest", t.type) end
      local subs = assert(client.interests:list{ type = "subscription" })
      assert.truthy(has(names(subs), "Newsletter"))
      assert.are.same({ "Gala" }, names(assert(client.interests:list{ group = "Events" })))
      local by_name = assert(client:interests())
      assert.are.equal(1235, by_name.International)
      assert.truthy(by_name.Gala)
    end)
  end)

  describe("custom fields", function()
    it("creates, renames (moving contacts' values), describes and deletes a field", function()
      local f = assert(client.custom_fields:create{ name = "shoe_size", field_type = "text" })
      assert.is_string(f.id)
      assert.are.equal("text", f.field_type)
      assert.truthy(has(assert(client:custom_field_names()), "shoe_size"))
      assert(client:contact{ email = "f@example.com" }:custom_field("shoe_size", "42"):insert())
      local renamed = assert(client.custom_fields:update(f.id, { name = "shoe", description = "EU size" }))
      assert.are.equal("shoe", renamed.name)
      assert.are.equal("42", stored("f@example.com").custom_fields.shoe)
      local dated = assert(client.custom_fields:create{ name = "renewal", field_type = "date" })
      local by_type = assert(client.custom_fields:list{ sort = { field_type = "asc" }, limit = 100 })
      assert.are.equal("date", by_type[1].field_type)
      assert.is_true(client.custom_fields:delete(f.id))
      assert.is_nil(stored("f@example.com").custom_fields.shoe)
      assert.falsy(has(assert(client:custom_field_names()), "shoe"))
      assert.are.equal("renewal", assert(client.custom_fields:get(dated.id)).name)
    end)

    it("reads the v1 names whichever shape the server answers", function()
      control("POST", "/_sandbox/settings", { customfields_shape = "names" })
      local list = assert(client:custom_field_names())
      assert.are.same({ "custom_field_name1", "barcode", "birthday", "membership_level" }, list)
    end)
  end)

  describe("hooks", function()
    it("creates (201, a 32-hex id), lists, reads and deletes a hook, idempotently", function()
      local hook, err = client.hooks:create{ type = "new_contact", url = "http://127.0.0.1:9/in",
                                             filter = { form_id = "abc" } }
      assert.is_nil(err)
      assert.truthy(hook.id:find("^%x+$") and #hook.id == 32)
      assert(client.hooks:create{ type = "consent_change", url = "http://127.0.0.1:9/in" })
      assert.are.equal(2, #assert(client.hooks:list()))
      local only = assert(client.hooks:list{ type = "consent_change" })
      assert.are.equal(1, #only)
      local got = assert(client.hooks:get(hook.id))
      assert.are.equal("abc", got.filter.form_id)
      assert.is_true(client.hooks:delete(hook.id))
      assert.is_true(client.hooks:delete(hook.id))
      local none, nerr = client.hooks:get(hook.id)
      assert.is_nil(none)
      assert.are.equal("not_found", nerr.kind)
      assert.truthy(requests()[1].path:find("^/v1/hooks"))
    end)

    it("answers a duplicate type and URL with the existing hook's id", function()
      local hook = assert(client.hooks:create{ type = "new_contact", url = "https://crm.example.com/hook" })
      local again, err = client.hooks:create{ type = "new_contact", url = "https://crm.example.com/hook" }
      assert.is_nil(again)
      assert.are.equal("duplicate", err.kind)
      assert.are.equal(400, err.status)
      assert.are.equal(hook.id, err.existing_id)
      local h = client.hooks:create_async({ type = "new_contact", url = "https://crm.example.com/hook" })
      local _, aerr = h:wait(5000)
      assert.are.equal("duplicate", aerr.kind)
      assert.are.equal(hook.id, aerr.existing_id)
    end)
  end)

  describe("sending", function()
    local SENDER = "Jane Doe <jane@example.com>"

    it("sends to a list, creating unknown contacts without sending to them, and records what it sent", function()
      control("POST", "/_sandbox/contacts", { { email = "yes@example.com", consent_status = "Express",
                                                consent_description = "form" } })
      local r, err = client:send{ name = "Welcome", subject = "Welcome aboard", sender = SENDER,
                                  recipients = { "yes@example.com", "new@example.com" }, html = "<p>Hi</p>",
                                  track_recipient_activity = true }
      assert.is_nil(err)
      assert.are.equal(1, r.new_contacts_created)
      assert.are.equal(2, r.summary.total_selected)
      assert.are.equal(1, r.summary.emails_to_be_sent)
      assert.are.equal(1, r.summary.excluded_unsubscribed_contacts)
      assert.are.equal("Not provided", stored("new@example.com").consent_status)
      local sent = control("GET", "/_sandbox/messages")
      assert.are.equal(1, #sent)
      assert.are.equal("yes@example.com", sent[1].email)
      local more = assert(client:send{ id = r.id, recipients = { "yes@example.com" } })
      assert.are.equal(r.id, more.id)
      assert.are.equal(2, #control("GET", "/_sandbox/messages"))
    end)

    it("builds, schedules, cancels and sends a v2 message to a tag", function()
      local tag = assert(client.tags:create{ name = "Readers" })
      control("POST", "/_sandbox/contacts", { { email = "r@example.com", consent_status = "Express",
                                                consent_description = "form", interests = { "Readers" } } })
      local m = assert(client.messages:create{ name = "Issue 1", subject = "Our first issue", sender = SENDER,
                                               recipient_tag = tag.id, html = "<p>1</p>" })
      assert.are.equal("Draft", m.status)
      assert.are.equal("Readers", m.recipient_tag)
      m = assert(client.messages:update(m.id, { subject = "Our very first issue" }))
      assert.are.equal("Our very first issue", m.subject)
      assert.are.equal("<p>1</p>", assert(client.messages:get(m.id, { include_html = true })).html)
      local clock = control("GET", "/_sandbox/clock")
      local later = os.date("!%Y-%m-%d %H:%M:%S", clock.epoch + 3600)
      local scheduled = assert(client.messages:send(m.id, later))
      assert.are.equal(1, scheduled.recipients.emails_to_be_sent)
      assert.are.equal("Scheduled", assert(client.messages:get(m.id)).status)
      local _, busy = client.messages:update(m.id, { subject = "Too late now" })
      assert.are.equal("validation", busy.kind)
      assert.are.equal("Draft", assert(client.messages:cancel(m.id)).status)
      assert(client.messages:send(m.id, later))
      control("POST", "/_sandbox/clock", { advance = 7200 })
      assert.are.equal("Sent", assert(client.messages:get(m.id)).status)
      local sent = control("GET", "/_sandbox/messages")
      assert.are.equal("r@example.com", sent[#sent].email)
      local listed = assert(client.messages:list{ filter = { status = "Sent" } })
      assert.are.equal(1, #listed)
    end)

    it("sends with the legacy SendEmails call, whether or not text precedes its JSON", function()
      control("POST", "/_sandbox/contacts", { { email = "t@example.com", consent_status = "Express",
                                                consent_description = "form" } })
      local emails = { { to_email = "t@example.com", campaign_name = "Receipts", message_subject = "Your receipt",
                         message_html = "<p>Thanks</p>" },
                       { to_email = "unknown@example.com", campaign_name = "Receipts" } }
      local r, err = client:send_emails(emails)
      assert.is_nil(err)
      assert.is_true(r[1].ok)
      assert.is_false(r[2].ok)
      assert.are.equal("Not provided", stored("unknown@example.com").consent_status)
      control("POST", "/_sandbox/settings", { legacy_preamble = true })
      r, err = client:send_emails(emails)
      assert.is_nil(err)
      assert.is_true(r[1].ok)
      assert.are.equal(2, #r)
      assert.are.equal(2, #control("GET", "/_sandbox/messages"))
    end)

    it("has the async forms of the client's own calls and of messages and reports", function()
      control("POST", "/_sandbox/contacts", { { email = "as@example.com", consent_status = "Express",
                                                consent_description = "f" } })
      local sent = assert(client:send_async{ name = "Async", subject = "Async sending", sender = SENDER,
                                             recipients = { "as@example.com" }, html = "<p>a</p>" }:wait(5000))
      assert.are.equal(1, sent.summary.emails_to_be_sent)
      local results = assert(client:send_emails_async{ { to_email = "as@example.com", campaign_name = "c" } }
        :wait(5000))
      assert.is_true(results[1].ok)
      local names_got
      client:custom_field_names_async(function(list) names_got = list end):wait(5000)
      assert.are.equal("custom_field_name1", names_got[1])
      local rows = assert(client.reports:email_activity_async({ message_id = sent.id }):wait(5000))
      assert.are.equal(1, rows[1].sends)
      local m = assert(client.messages:create{ name = "Later", subject = "Later on", html = "<p>l</p>" })
      assert(client.messages:send_async(m.id, "2031-01-01 00:00:00"):wait(5000))
      assert.are.equal("Draft", assert(client.messages:cancel_async(m.id):wait(5000)).status)
      local listed = assert(client.messages:list_async({ filter = { name = "Later" } }):wait(5000))
      assert.are.equal(m.id, listed[1].id)
      local all
      client.messages:list_async(function(list) all = list end):wait(5000)
      assert.are.equal(3, #all)
      local updated = assert(client.custom_fields:update_async("1", { description = "d" }):wait(5000))
      assert.are.equal("d", updated.description)
    end)

    it("reports email activity per message, by date and segment", function()
      local tag = assert(client.tags:create{ name = "Members" })
      control("POST", "/_sandbox/contacts", {
        { email = "m1@example.com", consent_status = "Express", consent_description = "f", interests = { "Members" } },
        { email = "m2@example.com", consent_status = "Express", consent_description = "f" } })
      local r = assert(client:send{ name = "Report me", subject = "Subject line", sender = SENDER,
                                    recipients = { "m1@example.com", "m2@example.com" }, html = "<p>x</p>" })
      local today = os.date("!%Y-%m-%d", control("GET", "/_sandbox/clock").epoch)
      local rows = assert(client.reports:email_activity{ message_id = { r.id }, start_date = today, end_date = today })
      assert.are.equal(1, #rows)
      assert.are.equal(2, rows[1].sends)
      assert.are.equal("Report me", rows[1].message_name)
      rows = assert(client.reports:email_activity{ message_id = r.id, segment = { tag = tag.id } })
      assert.are.equal(1, rows[1].sends)
      assert.truthy(requests()[#requests()].query:find("segment=iid%7C" .. tag.id, 1, true))
    end)
  end)
end
