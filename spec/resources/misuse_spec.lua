-- Mistakes in calls beyond contacts raise at the caller's line, before
-- anything is sent: unknown or read-only fields, the documented field rules
-- (name required, group type, field_type and its immutability, lengths for
-- sending, hook types and URLs), and every id that would go into a path.
local envoke = require "envoke"
local Sandbox = require "envoke.sandbox"

local THIS = debug.getinfo(1, "S").short_src

describe("resources: misuse raises at the caller's line, nothing sent", function()
  local server, client
  before_each(function()
    server = Sandbox.new()
    client = envoke.new{ transport = "in_process", sandbox = { server = server } }
  end)

  local function raises(fn, pattern)
    local line = debug.getinfo(2, "l").currentline
    local ok, msg = pcall(fn)
    assert.is_false(ok, "did not raise")
    msg = tostring(msg)
    assert.truthy(msg:find(THIS .. ":%d+: envoke: "), msg)
    assert.truthy(msg:find(pattern), ("%q does not match %q"):format(msg, pattern))
    assert.truthy(line > 0)
    assert.are.equal(0, #server.log:list(), "a request was sent")
  end

  local SENDER = "Jane Doe <jane@example.com>"
  local GOOD_SEND = { name = "Hello", subject = "Hello there", sender = SENDER, recipients = { "a@example.com" },
                      html = "<p>x</p>" }
  local function send_with(changes)
    local t = {}
    for k, v in pairs(GOOD_SEND) do t[k] = v end
    for k, v in pairs(changes) do
      if v == "nil" then t[k] = nil else t[k] = v end
    end
    return t
  end

  local cases = {
    { "tags:create needs a name", function() return client.tags:create{} end, "field 'name' is required" },
    { "tags:create refuses a blank name", function() return client.tags:create{ name = "  " } end,
      "must not be blank" },
    { "tags:create refuses an unknown field", function() return client.tags:create{ name = "a", colour = "red" } end,
      "unknown field 'colour'" },
    { "tags:create refuses the read-only id", function() return client.tags:create{ name = "a", id = "7" } end,
      "'id' is read%-only" },
    { "tags:create refuses a group that is a table",
      function() return client.tags:create{ name = "a", group = {} } end,
      "group' must be a name or an id" },
    { "tags:create refuses display names in an unknown language",
      function() return client.tags:create{ name = "a", display_names = { xx = "?" } } end, "unknown language" },
    { "tags:update needs a field", function() return client.tags:update("1235", {}) end, "nothing to change" },
    { "subscriptions: prefpage_access is public or private",
      function() return client.subscriptions:create{ name = "a", prefpage_access = "secret" } end,
      "must be one of public, private" },
    { "custom_fields:create needs a field_type",
      function() return client.custom_fields:create{ name = "a" } end, "field 'field_type' is required" },
    { "custom_fields: field_type is text, note, date or url",
      function() return client.custom_fields:create{ name = "a", field_type = "number" } end,
      "must be one of text, note, date, url" },
    { "custom_fields: field_type cannot change",
      function() return client.custom_fields:update("1", { field_type = "date" }) end,
      "cannot be changed after creation" },
    { "hooks: the type is one of Envoke's",
      function() return client.hooks:create{ type = "new_thing", url = "https://x.example/h" } end,
      "must be one of new_contact" },
    { "hooks: the URL is http or https",
      function() return client.hooks:create{ type = "new_contact", url = "ftp://x.example/h" } end,
      "http:// or https://" },
    { "hooks: a URL with a space",
      function() return client.hooks:create{ type = "new_contact", url = "https://x.example/a b" } end,
      "without spaces" },
    { "hooks: the filter holds plain values",
      function()
        return client.hooks:create{ type = "new_contact", url = "https://x.example/h", filter = { a = {} } }
      end,
      "must be a string, number or boolean" },
    { "hooks cannot be updated", function() return client.hooks:update(("a"):rep(32), { url = "https://x" }) end,
      "cannot be changed: delete the hook" },
    { "messages have no delete", function() return client.messages:delete(5) end, "no delete" },
    { "messages:create needs html or template_id",
      function() return client.messages:create{ name = "Abc" } end, "exactly one of 'html' or 'template_id'" },
    { "messages: the name is 3 to 100 characters",
      function() return client.messages:create{ name = "ab", html = "x" } end,
      "too short %(2 characters, minimum 3%)" },
    { "messages: the status is read-only",
      function() return client.messages:update(5, { status = "Sent" }) end, "'status' is read%-only" },
    { "messages:send needs a send time",
      function() return client.messages:send(5, "tomorrow") end, "YYYY%-MM%-DD HH:MM:SS" },
    { "messages:get takes include_html only",
      function() return client.messages:get(5, { html = true }) end, "unknown option 'html'" },
    { "send: name at least 3 characters", function() return client:send(send_with{ name = "Hi" }) end,
      "too short" },
    { "send: name at most 100 characters", function() return client:send(send_with{ name = ("x"):rep(101) }) end,
      "too long %(101 characters, maximum 100%)" },
    { "send: subject at least 6 characters", function() return client:send(send_with{ subject = "Hello" }) end,
      "subject' is too short" },
    { "send: subject at most 120 characters, counted in characters",
      function() return client:send(send_with{ subject = ("é"):rep(121) }) end, "121 characters, maximum 120" },
    { "send: the sender's form", function() return client:send(send_with{ sender = "jane@example.com" }) end,
      "First Last <email@example.com>" },
    { "send: recipients are addresses", function() return client:send(send_with{ recipients = { "nope" } }) end,
      "%[1%] is not an email address" },
    { "send: html or template_id, not both", function() return client:send(send_with{ template_id = 3 }) end,
      "exactly one of 'html' or 'template_id'" },
    { "send: language en or fr", function() return client:send(send_with{ language = "de" }) end,
      "must be one of en, fr" },
    { "send: with an id only recipients", function() return client:send{ id = 5, recipients = { "a@b.co" },
                                                                         name = "Again" } end,
      "only 'recipients' may be given" },
    { "send_emails: campaign_name is required",
      function() return client:send_emails{ { to_email = "a@example.com" } } end, "campaign_name' is required" },
    { "send_emails: to_email or contact_id",
      function() return client:send_emails{ { campaign_name = "c" } } end, "give 'to_email' or 'contact_id'" },
    { "reports: dates are YYYY-MM-DD",
      function() return client.reports:email_activity{ start_date = "2024-13-01" } end, "must be a date" },
    { "reports: start before end",
      function() return client.reports:email_activity{ start_date = "2024-02-01", end_date = "2024-01-01" } end,
      "start_date is after end_date" },
    { "reports: a segment names a tag or a segment",
      function() return client.reports:email_activity{ segment = { list = 4 } } end, "segment must be" },
    { "list: limit at most 100", function() return client.tags:list{ limit = 101 } end,
      "option 'limit' must be an integer from 1 to 100" },
    { "list: an unknown filter field", function() return client.tags:list{ filter = { colour = "red" } } end,
      "cannot filter on 'colour'" },
    { "list: a sort direction", function() return client.tags:list{ sort = { name = "up" } } end,
      "must be 'asc' or 'desc'" },
    { "list: an unknown option", function() return client.tags:list{ page = 2 } end, "unknown option 'page'" },
    { "each: page_size, not limit", function() return client.tags:each{ limit = 5 } end, "unknown option 'limit'" },
    { "interests: type tag or subscription", function() return client.interests:list{ type = "tags" } end,
      "must be one of tag, subscription" },
    { "bulk: ids or emails", function() return client.tags:add_contacts("1235", { contacts = { 1 } }) end,
      "exactly one of" },
    { "bulk: not both", function() return client.tags:add_contacts("1235", { ids = { 1 }, emails = {} }) end,
      "exactly one of" },
    { "bulk: every id valid", function() return client.tags:add_contacts("1235", { ids = { 1, 0 } }) end,
      "ids%[2%] must be an integer" },
    { "bulk: every email valid", function() return client.tags:add_contacts("1235", { emails = { "x" } }) end,
      "emails%[1%] is not an email address" },
    { "a callback must be a function", function() return client.tags:list_async(nil, 5) end,
      "the callback must be a function" },
  }
  for _, case in ipairs(cases) do
    it(case[1], function() raises(case[2], case[3]) end)
  end

  -- Ids of tags, subscriptions and custom fields are strings: only characters
  -- that cannot change a path's shape may go into one.
  local BAD_IDS = { "a/b", "../settings", "..", ".", "1?upsert=1", "1#x", "%2F", "a b", "a\nb", "a\0b", "", "é",
                    ("a"):rep(65), {}, true, 1.5, 0 }
  for _, ns in ipairs{ "tags", "subscriptions", "custom_fields" } do
    it(ns .. " refuses every id that could change the path (get, update, delete, bulk)", function()
      for _, bad in ipairs(BAD_IDS) do
        raises(function() return client[ns]:get(bad) end, "id ")
        raises(function() return client[ns]:update(bad, { name = "x" }) end, "id ")
        raises(function() return client[ns]:delete_async(bad) end, "id ")
        if ns ~= "custom_fields" then
          raises(function() return client[ns]:add_contacts(bad, { ids = { 1 } }) end, "id ")
        end
      end
    end)
  end

  it("hooks take 32 hexadecimal digits, messages an integer id", function()
    for _, bad in ipairs{ "abc", ("g"):rep(32), ("a"):rep(31) .. "/", ("a"):rep(33), 5 } do
      raises(function() return client.hooks:get(bad) end, "32 hexadecimal digits")
    end
    for _, bad in ipairs{ "1/2", "x", 0, 4294967296, "1 " } do
      raises(function() return client.messages:get(bad) end, "must be an integer")
      raises(function() return client.messages:cancel(bad) end, "must be an integer")
    end
  end)

  it("accepts the ids Envoke hands out, as strings or numbers", function()
    assert(client.tags:get("1235"))
    assert(client.tags:get(1235))
    assert.are.equal("not_found", select(2, client.custom_fields:get("a-b_c.9")).kind)
    assert.are.equal("not_found", select(2, client.hooks:get(("A"):rep(32))).kind)
  end)

  it("raises 'client is closed' after close", function()
    client:close()
    raises(function() return client.tags:list() end, "client is closed")
    raises(function() return client:send(GOOD_SEND) end, "client is closed")
  end)
end)
