--- Hooks (docs/envoke-api.md §8): `/v1/hooks` (also spelt `/v1/hooks.json`),
-- the events that fire them, and their delivery.
--
-- When a hook exists, a contact written through the API fires `new_contact`
-- (a contact was created), `consent_change` (an existing contact's consent
-- status changed) and `api_submission` / `submission` (any contact write);
-- `/v1/send` fires `email_send` (one batch per message). Each matching hook
-- gets a delivery: a POST of a JSON array of records to its URL.
--
-- The sandbox does not open connections itself: it hands each delivery to the
-- `deliver` function its host gave (`Sandbox.new{ deliver = fn }`):
--
--     deliver({ id, hook_id, type, url, body, headers }, done)
--
-- which returns the HTTP status at once, or returns nil and calls
-- `done(status, error)` later (the nginx host posts from a timer). A 2xx ends
-- the delivery; a 410 removes the hook; anything else is tried once more 600 s
-- of sandbox clock later (`POST /_sandbox/clock` moves it). Without a
-- `deliver` function, deliveries wait, listed by `GET /_sandbox/deliveries`.
-- @module envoke.sandbox.hooks

local schema = require "envoke.schema"
local account = require "envoke.sandbox.account"
local response = require "envoke.sandbox.response"
local json = require "envoke.sandbox.json"

local hooks = {}

--- Seconds of sandbox clock before a failed delivery is tried again (Envoke: 10 minutes).
hooks.RETRY_AFTER = 600

local TYPES = {}
for _, t in ipairs{ "new_contact", "consent_change", "submission", "form_submission", "preference_page_submission",
                    "api_submission", "import_submission", "ui_submission", "email_send", "email_open",
                    "email_click", "email_autoresponder_send", "new_lead", "passed_to_sales", "lead_update",
                    "new_opportunity", "new_sale" } do
  TYPES[t] = true
end

local HOOK_ORDER = { "id", "type", "url", "filter" }

local function hook_view(h, fields)
  local v = json.object({ id = h.id, type = h.type, url = h.url, filter = json.object(h.filter_copy()) }, HOOK_ORDER)
  if not fields then return v end
  local t = json.object({}, HOOK_ORDER)
  for _, f in ipairs(fields) do t[f] = v[f] end
  return t
end

local function new_hook(id, kind, url, filter)
  local h = { id = id, type = kind, url = url, filter = filter }
  function h.filter_copy()
    local c = {}
    for k, v in pairs(filter) do c[k] = v end
    return c
  end
  return h
end

local function find(sb, id)
  for i, h in ipairs(account.state(sb).hooks.list) do
    if h.id == id then return h, i end
  end
end

local function hook_id(req)
  return req.id and (req.id:gsub("%.json$", ""))
end

--- `GET /v1/hooks`: every hook (no default limit); `limit`, `skip`, `fields`, `type`.
function hooks.list(sb, req)
  local p, problems = req.params, {}
  local function whole(name, min)
    local v = p[name]
    if v == nil then return nil end
    local n = type(v) == "string" and v:find("^%d+$") and tonumber(v)
    if not n or n < min then problems[#problems + 1] = name .. " must be an integer from " .. min .. " up" end
    return n
  end
  local limit, skip = whole("limit", 1), whole("skip", 0) or 0
  local fields
  if p.fields ~= nil then
    fields = {}
    for name in tostring(p.fields):gmatch("[^,%s]+") do
      if name == "id" or name == "type" or name == "url" or name == "filter" then fields[#fields + 1] = name
      else problems[#problems + 1] = "fields: unknown field '" .. name .. "'" end
    end
  end
  if p.type ~= nil and not TYPES[p.type] then
    problems[#problems + 1] = "Invalid webhook type '" .. tostring(p.type) .. "'"
  end
  if #problems > 0 then return response.invalid(problems) end
  local out, seen = json.array(), 0
  for _, h in ipairs(account.state(sb).hooks.list) do
    if p.type == nil or h.type == p.type then
      seen = seen + 1
      if seen > skip and (not limit or #out < limit) then out[#out + 1] = hook_view(h, fields) end
    end
  end
  return response.json(200, out)
end

--- `GET /v1/hooks/{id}`: the hook, or JSON null.
function hooks.get(sb, req)
  local h = find(sb, hook_id(req))
  if not h then return response.json(200, json.null) end
  return response.json(200, hook_view(h))
end

local function check_hook(body)
  local problems = {}
  if body.type == nil or body.type == "" then
    problems[#problems + 1] = "'type' is required"
  elseif not TYPES[body.type] then
    problems[#problems + 1] = "Invalid webhook type '" .. tostring(body.type) .. "'"
  end
  local url = body.url
  if url == nil or url == "" then
    problems[#problems + 1] = "'url' is required"
  elseif type(url) ~= "string" or not url:find("^[hH][tT][tT][pP][sS]?://[^/%s]") or url:find("[%s%c]") then
    problems[#problems + 1] = "'url' must be an http:// or https:// URL"
  end
  local filter = body.filter
  if filter ~= nil and filter ~= json.null and
     (type(filter) ~= "table" or (next(filter) ~= nil and schema.is_array(filter))) then
    problems[#problems + 1] = "'filter' must be an object"
  elseif type(filter) == "table" then
    for k, v in pairs(filter) do
      if type(v) == "table" then problems[#problems + 1] = "'filter." .. tostring(k) .. "' must be a plain value" end
    end
  end
  for k in pairs(body) do
    if k ~= "type" and k ~= "url" and k ~= "filter" then
      problems[#problems + 1] = "Unknown field '" .. tostring(k) .. "'"
    end
  end
  return problems
end

--- `POST /v1/hooks`: 201 `{"id": "<32 hex>"}`; the same type and URL again is a
-- 400 carrying the existing hook's id.
function hooks.create(sb, req)
  local body, fail = req:json_object()
  if not body then return fail() end
  local problems = check_hook(body)
  if #problems > 0 then return response.invalid(problems) end
  local st = account.state(sb)
  for _, h in ipairs(st.hooks.list) do
    if h.type == body.type and h.url == body.url then
      return response.json(400, json.object({ success = false,
        result_text = "A webhook subscription with this type and URL already exists",
        result_data = json.object({ id = h.id }) }, { "success", "result_text", "result_data" }))
    end
  end
  local filter = {}
  for k, v in pairs(type(body.filter) == "table" and body.filter or {}) do filter[k] = v end
  local h = new_hook(sb.store:new_external_id(), body.type, body.url, filter)
  st.hooks.list[#st.hooks.list + 1] = h
  return response.json(201, json.object({ id = h.id }))
end

--- `DELETE /v1/hooks/{id}`: idempotent.
function hooks.delete(sb, req)
  local h, i = find(sb, hook_id(req))
  if h then table.remove(account.state(sb).hooks.list, i) end
  return response.ok("Deleted", json.array())
end

---------------------------------------------------------------------------
-- Events
---------------------------------------------------------------------------

-- Which hook types an event fires: a submission also fires the generic type.
local FIRES = {
  new_contact = { "new_contact" }, consent_change = { "consent_change" },
  api_submission = { "api_submission", "submission" }, email_send = { "email_send" },
}

local function matches(filter, record)
  for k, v in pairs(filter) do
    if record[k] == nil or tostring(record[k]) ~= tostring(v) then return false end
  end
  return true
end

local function copy_record(record)
  local c = json.object({}, getmetatable(record) and getmetatable(record).order)
  for k, v in pairs(record) do c[k] = v end
  return c
end

--- Queues a delivery to every hook the event fires whose filter matches.
-- @tparam string event new_contact, consent_change, api_submission, email_send
-- @tparam table records the records of the JSON array (one, or a batch of email events)
function hooks.emit(sb, event, records)
  local st = sb.extra
  if not st or not st.hooks.list[1] then return end
  for _, kind in ipairs(FIRES[event]) do
    for _, h in ipairs(st.hooks.list) do
      if h.type == kind then
        local batch = json.array()
        for _, r in ipairs(records) do
          if matches(h.filter, r) then batch[#batch + 1] = copy_record(r) end
        end
        if batch[1] then
          local d = { id = st.next_delivery, hook_id = h.id, type = kind, url = h.url, body = json.encode(batch),
                      state = "pending", attempts = {}, due = sb:now(), created = sb:now() }
          st.next_delivery = st.next_delivery + 1
          st.deliveries[#st.deliveries + 1] = d
          st.queue[#st.queue + 1] = d
        end
      end
    end
  end
end

-- The contact a write is about, before it runs (to see its consent change).
local function target(sb, req, body)
  if req.id then return sb.store:get(schema.normalize("id", req.id) or -1) end
  if type(body) ~= "table" then return nil end
  if body.id ~= nil then return sb.store:get(schema.normalize("id", body.id) or -1) end
  if req.params.keyfield == "remote_id" and type(body.remote_id) == "string" then
    return sb.store:find_remote_id(body.remote_id)
  end
  if type(body.email) == "string" then return sb.store:find_email(body.email)[1] end
end

--- Before a contact write: what the events need to know of the contact as it was.
-- Nil (no work at all) unless a hook exists and this is a contact write.
function hooks.watch(sb, req)
  local st = sb.extra
  if not st or not st.hooks.list[1] then return nil end
  if (req.method ~= "POST" and req.method ~= "PATCH") or not req.path:find("^/v1/contacts") then return nil end
  local record = target(sb, req, json.decode(req.body or "") or nil)
  local status = record and require("envoke.sandbox.contact").status(record, sb:now())
  return { status = status }
end

--- After a contact write: fires new_contact, consent_change and api_submission.
function hooks.observe(sb, watch, status, body)
  if status ~= 200 then return end
  local answer = json.decode(body)
  local data = type(answer) == "table" and answer.result_data
  local stored = type(data) == "table" and sb.store:get(schema.normalize("id", data.id) or -1)
  if not stored then return end
  -- The records are read from the store, so lists stay lists in the JSON.
  local view = require("envoke.sandbox.contact").view(stored, sb:now(), sb.cat)
  local now = account.timestamp(sb:now())
  local created = answer.result_text == "Created"
  local record = copy_record(view)
  if created then
    record.date_created = now
    hooks.emit(sb, "new_contact", { record })
  elseif watch.status and watch.status ~= view.consent_status then
    local changed = copy_record(view)
    changed.previous_consent_status = watch.status
    hooks.emit(sb, "consent_change", { changed })
  end
  local submission = copy_record(view)
  submission.contact_id, submission.contact_external_id = view.id, view.external_id
  submission.contact_remote_id, submission.contact_created = view.remote_id, created
  submission.submission_time, submission.submission_type = now, "api"
  submission.form_name, submission.form_url = "", ""
  hooks.emit(sb, "api_submission", { submission })
end

---------------------------------------------------------------------------
-- Delivery
---------------------------------------------------------------------------

local function drop_hook(sb, id)
  local st = account.state(sb)
  local _, i = find(sb, id)
  if i then table.remove(st.hooks.list, i) end
  for _, d in ipairs(st.deliveries) do
    if d.hook_id == id and (d.state == "pending" or d.state == "retry") then d.state = "dropped" end
  end
end

-- Records one attempt's outcome.
local function settle(sb, d, status, problem)
  d.attempts[#d.attempts + 1] = { time = schema.time.format_datetime(sb:now()), status = status or 0,
                                  error = problem }
  if d.state == "dropped" then return end
  if status and status >= 200 and status < 300 then
    d.state = "delivered"
  elseif status == 410 then
    d.state = "gone"
    drop_hook(sb, d.hook_id)
  elseif #d.attempts < 2 then
    d.state, d.due = "retry", sb:now() + hooks.RETRY_AFTER
    local queue = account.state(sb).queue
    queue[#queue + 1] = d
  else
    d.state = "failed"
  end
end

local function start(sb, d)
  d.state = "sending"
  local request = { id = d.id, hook_id = d.hook_id, type = d.type, url = d.url, body = d.body,
                    headers = { ["content-type"] = "application/json" } }
  local settled = false
  local function done(status, problem)
    if settled then return end
    settled = true
    settle(sb, d, tonumber(status), problem)
  end
  local ok, status, problem = pcall(sb.deliver, request, done)
  if not ok then return done(nil, tostring(status)) end
  if status ~= nil then done(status, problem) end
end

--- Hands every delivery that is due to the host's `deliver` function.
-- Runs after each request the sandbox answers (and never re-enters itself).
function hooks.pump(sb)
  local st = sb.extra
  if not st or not sb.deliver or st.pumping then return end
  st.pumping = true
  -- Only the waiting ones are looked at: the list of every delivery grows.
  local ok, problem = pcall(function()
    local now, queue = sb:now(), st.queue
    st.queue = {}
    for _, d in ipairs(queue) do
      if d.state == "pending" or d.state == "retry" then
        if d.due <= now then start(sb, d) else st.queue[#st.queue + 1] = d end
      end
    end
  end)
  st.pumping = false
  if not ok then error(problem, 0) end
end

--- `GET /_sandbox/deliveries`: every delivery, oldest first.
function hooks.deliveries(sb)
  local out = json.array()
  local order = { "id", "hook_id", "type", "url", "state", "records", "attempts", "due" }
  for i, d in ipairs(sb.extra and sb.extra.deliveries or {}) do
    local attempts = json.array()
    for j, a in ipairs(d.attempts) do
      attempts[j] = json.object({ time = a.time, status = a.status, error = a.error }, { "time", "status", "error" })
    end
    out[i] = json.object({ id = d.id, hook_id = d.hook_id, type = d.type, url = d.url, state = d.state,
      records = json.decode(d.body), attempts = attempts, due = schema.time.format_datetime(d.due) }, order)
  end
  return response.ok("Deliveries", out)
end

--- `POST /_sandbox/deliveries`: delivers what is due now (the answer lists every delivery).
function hooks.run_deliveries(sb)
  hooks.pump(sb)
  return hooks.deliveries(sb)
end

--- The routes, in the router's format (see `envoke.sandbox`).
hooks.routes = {
  { "^/v1/hooks$", { GET = hooks.list, POST = hooks.create } },
  { "^/v1/hooks%.json$", { GET = hooks.list, POST = hooks.create } },
  { "^/v1/hooks/(%x+%.json)$", { GET = hooks.get, DELETE = hooks.delete } },
  { "^/v1/hooks/([^/]+)$", { GET = hooks.get, DELETE = hooks.delete } },
}

return hooks
