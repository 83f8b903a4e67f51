--- Sending and reports (docs/envoke-api.md §8): `POST /v1/send`,
-- `/v2/messages` (list, get, create, update, send, cancel), the legacy
-- `POST /api/v4legacy/send/SendEmails`, and
-- `GET /v1/reports/emailActivityMetrics`. Nothing leaves the machine: what
-- would have been sent is recorded, one entry per email, for
-- `GET /_sandbox/messages`.
-- @module envoke.sandbox.sending

local schema = require "envoke.schema"
local account = require "envoke.sandbox.account"
local contact = require "envoke.sandbox.contact"
local hooks = require "envoke.sandbox.hooks"
local items = require "envoke.sandbox.items"
local response = require "envoke.sandbox.response"
local json = require "envoke.sandbox.json"

local sending = {}

local MESSAGE_ORDER = { "id", "external_id", "preview_url", "create_time", "modified_time", "name", "group", "status",
                        "send_time", "sender", "subject", "language", "recipient_subscription", "recipient_tag",
                        "recipient_segment", "publish_archive", "utm_tag_links", "html", "template_id" }
local SUMMARY_ORDER = { "total_selected", "emails_to_be_sent", "excluded_unsubscribed_contacts",
                        "excluded_invalid_emails", "excluded_bounced_emails", "excluded_unverified_emails" }

local function chars(v) return type(v) == "string" and schema.utf8_len(v) end

local function length_problem(name, v, min, max, problems)
  local n = chars(v)
  if not n then
    problems[#problems + 1] = "'" .. name .. "' must be a string"
  elseif n < min or n > max then
    problems[#problems + 1] = ("'%s' must be %d to %d characters (got %d)"):format(name, min, max, n)
  end
end

local function is_email(v)
  return type(v) == "string" and v ~= "" and schema.normalize("email", v) ~= nil and #v <= 60
end

local function sender_problem(v, problems)
  if type(v) == "number" and schema.normalize("id", v) then return end
  local email = type(v) == "string" and v:match("^[^<>]-%s*<([^<>]+)>$")
  if not (email and is_email(email)) then
    problems[#problems + 1] = "'sender' must be 'First Last <email>' or a sender id"
  end
end

local function sendable(record, now)
  return schema.consent.sendable[contact.status(record, now)] == true
end

---------------------------------------------------------------------------
-- Recipients
---------------------------------------------------------------------------

-- The contact of an address, created with consent "Not provided" when the
-- account has none (Envoke: nothing is then sent to it).
local function contact_for(sb, email, created)
  local record = sb.store:find_email(email)[1]
  if record then return record end
  record = contact.new()
  record.email = email
  sb.store:insert(record)
  created[#created + 1] = record
  return record
end

local function new_summary()
  local s = json.object({}, SUMMARY_ORDER)
  for _, k in ipairs(SUMMARY_ORDER) do s[k] = 0 end
  return s
end

local function record_sent(sb, message, record, via)
  local st = account.state(sb)
  st.sent[#st.sent + 1] = json.object({
    message_id = message.id, message_name = message.name, subject = message.subject, via = via,
    contact_id = record.id, email = record.email, time = account.timestamp(sb:now()),
  }, { "message_id", "message_name", "subject", "via", "contact_id", "email", "time" })
end

local function emit_sends(sb, message, records)
  local batch = {}
  for i, record in ipairs(records) do
    batch[i] = json.object({ event = "email_send", message_id = message.id, message_name = message.name,
      contact_id = record.id, email = record.email, time = account.timestamp(sb:now()) })
  end
  if batch[1] then hooks.emit(sb, "email_send", batch) end
end

local function emit_created(sb, created)
  for _, record in ipairs(created) do
    local view = contact.view(record, sb:now(), sb.cat)
    view.date_created = account.timestamp(sb:now())
    hooks.emit(sb, "new_contact", { view })
  end
end

---------------------------------------------------------------------------
-- Messages
---------------------------------------------------------------------------

local function new_message(sb, fields)
  local st = account.state(sb)
  local now = account.timestamp(sb:now())
  local m = { id = st.messages.next_id, external_id = sb.store:new_external_id(), create_time = now,
              modified_time = now, status = "Draft", send_time = "", group = "", language = "en",
              recipient_subscription = "", recipient_tag = "", recipient_segment = "", publish_archive = false,
              utm_tag_links = true, sender = "", subject = "", name = "" }
  m.preview_url = "https://sandbox.invalid/m/" .. m.external_id
  for k, v in pairs(fields) do m[k] = v end
  st.messages.next_id = st.messages.next_id + 1
  st.messages.list[#st.messages.list + 1] = m
  st.messages.by_id[m.id] = m
  return m
end

local function message_view(m, with_html)
  local v = json.object({}, MESSAGE_ORDER)
  for _, k in ipairs(MESSAGE_ORDER) do
    if k ~= "html" and k ~= "template_id" then v[k] = m[k] end
  end
  v.id = ("%d"):format(m.id)
  if with_html then v.html = m.html or "" end
  return v
end

-- The contacts a message built in v2 goes to: its tag's or subscription's.
local function audience(sb, m)
  local out = {}
  local keys = { m.recipient_tag, m.recipient_subscription }
  local ids = {}
  for _, key in ipairs(keys) do
    local entry = key ~= "" and sb.cat:interest(key)
    if entry then ids[entry.id] = true end
  end
  if next(ids) == nil then return out end
  for _, record in ipairs(sb.store:all()) do
    for _, id in ipairs(record.interests) do
      if ids[id] then out[#out + 1] = record break end
    end
  end
  return out
end

-- Scheduled messages whose time has come are sent (at the sandbox's clock).
function sending.tick(sb)
  local st = sb.extra
  if not st then return end
  local now = sb:now()
  for _, m in ipairs(st.messages.list) do
    if m.status == "Scheduled" and m.send_at <= now then
      m.status = "Sent"
      local sent = {}
      for _, record in ipairs(audience(sb, m)) do
        if sendable(record, now) then
          record_sent(sb, m, record, "messages")
          sent[#sent + 1] = record
        end
      end
      emit_sends(sb, m, sent)
    end
  end
end

local MESSAGE_FIELDS = { name = true, group = true, sender = true, subject = true, language = true, html = true,
                         template_id = true, recipient_subscription = true, recipient_tag = true,
                         recipient_segment = true, publish_archive = true, utm_tag_links = true }
local IGNORED = { create_time = true, modified_time = true, external_id = true, preview_url = true, id = true }

local function message_problems(sb, body, creating)
  local problems = {}
  for k, v in pairs(body) do
    if IGNORED[k] then
      body[k] = nil -- Envoke ignores them
    elseif k == "status" or k == "send_time" then
      problems[#problems + 1] = "'" .. k .. "' cannot be changed here: use /send or /cancel"
    elseif not MESSAGE_FIELDS[k] then
      problems[#problems + 1] = "Unknown field '" .. tostring(k) .. "'"
    elseif k == "name" then length_problem(k, v, 3, 100, problems)
    elseif k == "subject" then length_problem(k, v, 6, 120, problems)
    elseif k == "sender" then sender_problem(v, problems)
    elseif k == "language" and v ~= "en" and v ~= "fr" then problems[#problems + 1] = "'language' must be en or fr"
    elseif (k == "publish_archive" or k == "utm_tag_links") and type(v) ~= "boolean" then
      problems[#problems + 1] = "'" .. k .. "' must be true or false"
    elseif (k == "recipient_tag" or k == "recipient_subscription") and v ~= "" then
      local entry = sb.cat:interest(v)
      local want = k == "recipient_tag" and "interest" or "subscription"
      if not entry or (entry.kind == "interest") ~= (want == "interest") then
        problems[#problems + 1] = "Invalid '" .. k .. "': '" .. tostring(v) .. "'"
      end
    end
  end
  if creating then
    if body.name == nil then problems[#problems + 1] = "The field 'name' is required" end
    if (body.html == nil) == (body.template_id == nil) then
      problems[#problems + 1] = "One of the fields 'template_id' or 'html' is required"
    end
  end
  return problems
end

local function apply_message(sb, m, body)
  for k, v in pairs(body) do
    if MESSAGE_FIELDS[k] then
      if k == "recipient_tag" or k == "recipient_subscription" then
        local entry = v ~= "" and sb.cat:interest(v)
        v = entry and entry.name or ""
      end
      m[k] = v
    end
  end
  m.modified_time = account.timestamp(sb:now())
end

local function messages_list(sb, req)
  sending.tick(sb)
  local all = {}
  for i, m in ipairs(account.state(sb).messages.list) do all[i] = message_view(m) end
  local spec = { filters = { id = true, name = true, group = true, status = true, subject = true, language = true,
                             sender = true },
                 sorts = { id = true, name = true, create_time = true, modified_time = true, send_time = true },
                 order = MESSAGE_ORDER }
  return items.list(req, all, spec, function(v, fields)
    if not fields then return v end
    local t = json.object({}, MESSAGE_ORDER)
    for _, f in ipairs(fields) do t[f] = v[f] end
    return t
  end)
end

local function message_of(sb, req)
  sending.tick(sb)
  local id = schema.normalize("id", req.id)
  return id and account.state(sb).messages.by_id[id]
end

local function not_found(req)
  return response.invalid({ "Message with id '" .. tostring(req.id) .. "' not found" })
end

local function messages_get(sb, req)
  local m = message_of(sb, req)
  if not m then return not_found(req) end
  return response.json(200, message_view(m, require("envoke.sandbox.query").flag(req.params.include_html)))
end

local function messages_create(sb, req)
  local body, fail = req:json_object()
  if not body then return fail() end
  local problems = message_problems(sb, body, true)
  if #problems > 0 then return response.invalid(problems) end
  local m = new_message(sb, {})
  apply_message(sb, m, body)
  m.modified_time = m.create_time
  return response.ok("Successfully created", message_view(m))
end

local function messages_update(sb, req)
  local body, fail = req:json_object()
  if not body then return fail() end
  local m = message_of(sb, req)
  if not m then return not_found(req) end
  if m.status ~= "Draft" then return response.invalid({ "Only draft messages may be edited" }) end
  local problems = message_problems(sb, body, false)
  if #problems > 0 then return response.invalid(problems) end
  apply_message(sb, m, body)
  return response.ok("Updated", message_view(m))
end

local function messages_send(sb, req)
  local m = message_of(sb, req)
  if not m then return not_found(req) end
  local body, fail = req:json_object()
  if not body then return fail() end
  if m.status ~= "Draft" then
    return response.invalid({ "Only a draft message can be sent (it is '" .. m.status .. "')" })
  end
  local y, mo, d, h, mi, s = tostring(body.send_time):match("^(%d%d%d%d)%-(%d%d)%-(%d%d) (%d%d):(%d%d):(%d%d)$")
  local at = y and schema.time.parse_datetime(("%s-%s-%sT%s:%s:%sZ"):format(y, mo, d, h, mi, s))
  if not at then return response.invalid({ "'send_time' must be 'YYYY-MM-DD HH:MM:SS'" }) end
  local summary, now = new_summary(), sb:now()
  for _, record in ipairs(audience(sb, m)) do
    summary.total_selected = summary.total_selected + 1
    if sendable(record, now) then
      summary.emails_to_be_sent = summary.emails_to_be_sent + 1
    else
      summary.excluded_unsubscribed_contacts = summary.excluded_unsubscribed_contacts + 1
    end
  end
  m.status, m.send_time, m.send_at = "Scheduled", body.send_time, at
  m.modified_time = account.timestamp(now)
  return response.ok("Message scheduled for send", json.object({ id = ("%d"):format(m.id), send_time = m.send_time,
    recipients = summary }, { "id", "send_time", "recipients" }))
end

local function messages_cancel(sb, req)
  local m = message_of(sb, req)
  if not m then return not_found(req) end
  if m.status ~= "Scheduled" then
    return response.invalid({ "Only a scheduled message can be cancelled (it is '" .. m.status .. "')" })
  end
  m.status, m.send_time, m.send_at = "Draft", "", nil
  m.modified_time = account.timestamp(sb:now())
  return response.ok("Message reverted to draft status", message_view(m))
end

---------------------------------------------------------------------------
-- POST /v1/send
---------------------------------------------------------------------------

local SEND_FIELDS = { name = true, group = true, sender = true, subject = true, recipients = true, html = true,
                      template_id = true, language = true, track_recipient_activity = true,
                      enable_merge_fields = true }

local function send_problems(sb, body)
  local problems = {}
  local r = body.recipients
  if type(r) ~= "table" or not schema.is_array(r) or r[1] == nil then
    problems[#problems + 1] = "'recipients' must be a non-empty array of email addresses"
  end
  if body.id ~= nil then
    for k in pairs(body) do
      if k ~= "id" and k ~= "recipients" then
        problems[#problems + 1] = "If 'id' is provided, no other field but 'recipients' is allowed ('" .. k .. "')"
      end
    end
    local id = schema.normalize("id", body.id)
    if not (id and account.state(sb).messages.by_id[id]) then
      problems[#problems + 1] = "Message with id '" .. tostring(body.id) .. "' not found"
    end
    return problems
  end
  for k, v in pairs(body) do
    if not SEND_FIELDS[k] then problems[#problems + 1] = "Unknown field '" .. tostring(k) .. "'"
    elseif (k == "track_recipient_activity" or k == "enable_merge_fields") and type(v) ~= "boolean" then
      problems[#problems + 1] = "'" .. k .. "' must be true or false"
    end
  end
  length_problem("name", body.name, 3, 100, problems)
  length_problem("subject", body.subject, 6, 120, problems)
  sender_problem(body.sender, problems)
  if (body.html == nil) == (body.template_id == nil) then
    problems[#problems + 1] = "One of the fields 'template_id' or 'html' is required"
  end
  if body.language ~= nil and body.language ~= "en" and body.language ~= "fr" then
    problems[#problems + 1] = "'language' must be en or fr"
  end
  return problems
end

--- `POST /v1/send`: a message to a list of addresses (or more addresses for one).
function sending.send(sb, req)
  local body, fail = req:json_object()
  if not body then return fail() end
  local problems = send_problems(sb, body)
  if #problems > 0 then return response.invalid(problems) end
  local m
  if body.id ~= nil then
    m = account.state(sb).messages.by_id[schema.normalize("id", body.id)]
  else
    local fields = {}
    for k, v in pairs(body) do if k ~= "recipients" then fields[k] = v end end
    m = new_message(sb, fields)
    m.status, m.send_time = "Sent", account.timestamp(sb:now())
  end
  local summary, now, created, sent = new_summary(), sb:now(), {}, {}
  local recipients = json.array()
  for _, email in ipairs(body.recipients) do
    summary.total_selected = summary.total_selected + 1
    if not is_email(email) then
      summary.excluded_invalid_emails = summary.excluded_invalid_emails + 1
    else
      local record = contact_for(sb, email, created)
      local ok = sendable(record, now)
      if ok then
        summary.emails_to_be_sent = summary.emails_to_be_sent + 1
        record_sent(sb, m, record, "send")
        sent[#sent + 1] = record
      else
        summary.excluded_unsubscribed_contacts = summary.excluded_unsubscribed_contacts + 1
      end
      recipients[#recipients + 1] = json.object({ id = record.id, email = record.email,
        emails_to_be_sent = ok and 1 or 0 }, { "id", "email", "emails_to_be_sent" })
    end
  end
  sb:changed()
  emit_created(sb, created)
  emit_sends(sb, m, sent)
  return response.ok("Message is sending", json.object({ id = m.id, new_contacts_created = #created,
    summary = summary, recipients = recipients }, { "id", "new_contacts_created", "summary", "recipients" }))
end

---------------------------------------------------------------------------
-- Legacy SendEmails
---------------------------------------------------------------------------

-- What Envoke's PHP sometimes prints before the JSON (clients cut at the first '[').
sending.LEGACY_PREAMBLE = "<br />\n<b>Warning</b>:  Undefined array key \"reply_name\" in "
  .. "<b>/var/www/api/v4legacy/send.php</b> on line <b>87</b><br />\n"

local LEGACY_FIELDS = { contact_id = true, to_email = true, to_name = true, from_name = true, from_email = true,
                        reply_name = true, reply_email = true, campaign_name = true, message_subject = true,
                        message_html = true }

local function legacy_emails(body)
  local outer = type(body) == "table" and body.SendEmails
  local list = {}
  if type(outer) ~= "table" then return nil end
  for _, batch in ipairs(outer) do
    local arrays = type(batch) == "table" and type(batch.EmailDataArray) == "table" and batch.EmailDataArray or {}
    for _, data in ipairs(arrays) do
      for _, e in ipairs(type(data) == "table" and type(data.email) == "table" and data.email or {}) do
        list[#list + 1] = e
      end
    end
  end
  return list[1] and list
end

local function legacy_one(sb, e, created, sent_to)
  local function result(value, text, record)
    return json.object({ result_value = value, result_text = text, to_email = type(e) == "table" and e.to_email or nil,
      contact_id = record and record.id or nil }, { "result_value", "result_text", "to_email", "contact_id" })
  end
  if type(e) ~= "table" then return result("false", "each email must be an object") end
  for k in pairs(e) do
    if not LEGACY_FIELDS[k] then return result("false", "Unknown field '" .. tostring(k) .. "'") end
  end
  if type(e.campaign_name) ~= "string" or e.campaign_name == "" then
    return result("false", "campaign_name is required")
  end
  local record
  if e.contact_id ~= nil then
    record = sb.store:get(schema.normalize("id", e.contact_id) or -1)
    if not record then return result("false", "Contact not found") end
  elseif is_email(e.to_email) then
    record = contact_for(sb, e.to_email, created)
  else
    return result("false", "to_email is required unless contact_id is given")
  end
  if not sendable(record, sb:now()) then
    return result("false", "The contact's consent does not allow sending", record)
  end
  sent_to[#sent_to + 1] = { record = record, email = e }
  return result("true", "Email queued", record)
end

--- `POST /api/v4legacy/send/SendEmails`: a JSON array, one result per email
-- (`result_value` "true" when queued). With the account setting
-- `legacy_preamble = true` the answer starts with a PHP warning, as Envoke's sometimes does.
function sending.legacy(sb, req)
  local body, fail = req:json_value()
  if body == nil then return fail() end
  local list = legacy_emails(body)
  if not list then
    return response.invalid({ "expected {\"SendEmails\": [{\"EmailDataArray\": [{\"email\": [...]}]}]}" })
  end
  local out, created, sent_to = json.array(), {}, {}
  for i, e in ipairs(list) do out[i] = legacy_one(sb, e, created, sent_to) end
  local by_campaign = {}
  for _, s in ipairs(sent_to) do
    local name = s.email.campaign_name
    local m = by_campaign[name]
    if not m then
      m = new_message(sb, { name = name, subject = s.email.message_subject or "" })
      m.status, m.send_time = "Sent", account.timestamp(sb:now())
      by_campaign[name] = m
    end
    record_sent(sb, m, s.record, "legacy")
  end
  sb:changed()
  emit_created(sb, created)
  local status, headers, text = response.json(200, out)
  if sb.settings.legacy_preamble == true then
    headers["content-type"] = "text/html; charset=UTF-8"
    text = sending.LEGACY_PREAMBLE .. text
  end
  return status, headers, text
end

---------------------------------------------------------------------------
-- Reports
---------------------------------------------------------------------------

local function report_params(sb, p)
  local problems, ids = {}, nil
  if p.message_id ~= nil then
    ids = {}
    for _, v in ipairs(type(p.message_id) == "table" and p.message_id or { p.message_id }) do
      local id = schema.normalize("id", v)
      if id then ids[id] = true else problems[#problems + 1] = "message_id must be a message id" end
    end
  end
  local range = {}
  for _, k in ipairs{ "start_date", "end_date" } do
    if p[k] ~= nil then
      range[k] = schema.time.parse_date(p[k])
      if not range[k] then problems[#problems + 1] = k .. " must be YYYY-MM-DD" end
    end
  end
  local members
  if p.segment ~= nil then
    local kind, id = tostring(p.segment):match("^([if]id)|(.+)$")
    local entry = kind == "iid" and sb.cat.interests.by_id[id]
    if kind == "iid" and entry then
      members = function(record)
        for _, x in ipairs(record.interests) do if x == entry.id then return true end end
        return false
      end
    elseif kind == "fid" then
      members = function() return false end -- the sandbox has no segments: an empty one
    else
      problems[#problems + 1] = "segment must be iid|<tag id> or fid|<segment id>"
    end
  end
  return problems, ids, range, members
end

--- `GET /v1/reports/emailActivityMetrics`: per message, what the sandbox sent
-- (opens, clicks and bounces stay 0: nothing is really sent).
function sending.report(sb, req)
  sending.tick(sb)
  local problems, ids, range, members = report_params(sb, req.params)
  if #problems > 0 then return response.invalid(problems) end
  local out, now = json.array(), sb:now()
  local last_day = range.end_date and range.end_date + 86399
  for _, m in ipairs(account.state(sb).messages.list) do
    if (not ids or ids[m.id]) and m.status == "Sent" then
      local row = json.object({ message_id = m.id, message_name = m.name, subject = m.subject, sends = 0, opens = 0,
        clicks = 0, bounces = 0, revoked_consent = 0 },
        { "message_id", "message_name", "subject", "sends", "opens", "clicks", "bounces", "revoked_consent" })
      for _, s in ipairs(account.state(sb).sent) do
        local t = schema.time.parse_datetime((s.time:gsub(" ", "T")) .. "Z")
        local record = sb.store:get(s.contact_id)
        if s.message_id == m.id and (not range.start_date or t >= range.start_date)
           and (not last_day or t <= last_day) and (not members or (record and members(record))) then
          row.sends = row.sends + 1
          if record and contact.status(record, now) == "Revoked" then row.revoked_consent = row.revoked_consent + 1 end
        end
      end
      out[#out + 1] = row
    end
  end
  return response.json(200, out)
end

--- `GET /_sandbox/messages`: every email the sandbox would have sent, oldest first.
function sending.sent(sb)
  sending.tick(sb)
  local out = json.array()
  for i, s in ipairs(sb.extra and sb.extra.sent or {}) do out[i] = s end
  return response.ok("Sent", out)
end

--- The routes, in the router's format (see `envoke.sandbox`).
sending.routes = {
  { "^/v1/send$", { POST = sending.send } },
  { "^/v2/messages$", { GET = messages_list, POST = messages_create } },
  { "^/v2/messages/([^/]+)/send$", { POST = messages_send } },
  { "^/v2/messages/([^/]+)/cancel$", { POST = messages_cancel } },
  { "^/v2/messages/([^/]+)$", { GET = messages_get, PATCH = messages_update } },
  { "^/api/v4legacy/send/SendEmails$", { POST = sending.legacy } },
  { "^/v1/reports/emailActivityMetrics$", { GET = sending.report } },
}

return sending
