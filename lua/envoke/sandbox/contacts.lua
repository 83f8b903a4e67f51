--- The API's endpoints (docs/envoke-api.md §3): contacts, interests, autoresponders,
-- settings.  Each handler is `handler(sb, req)` and returns
-- `status, headers, body`; `req` carries the parsed query and, for writes,
-- the decoded body (see `envoke.sandbox`).
-- @module envoke.sandbox.contacts

local schema = require "envoke.schema"
local contact = require "envoke.sandbox.contact"
local consent = require "envoke.sandbox.consent"
local write = require "envoke.sandbox.write"
local filter = require "envoke.sandbox.filter"
local query = require "envoke.sandbox.query"
local response = require "envoke.sandbox.response"
local json = require "envoke.sandbox.json"

local contacts = {}

local NOT_FOUND = "Contact not found"

local function append(list, more)
  for _, v in ipairs(more) do list[#list + 1] = v end
  return list
end

-- The duplicate checks: email unless the account allows duplicates
-- (docs/envoke-api.md §7), remote_id always (it keys updates with keyfield=remote_id).
local function check_unique(sb, plan, record, errors)
  local email = plan.values.email
  if email and email ~= "" and not sb.settings.allow_duplicate_emails then
    for _, other in ipairs(sb.store:find_email(email)) do
      if other ~= record then
        errors[#errors + 1] = "A contact with email '" .. email .. "' already exists"
        break
      end
    end
  end
  local remote_id = plan.values.remote_id
  if remote_id and remote_id ~= "" then
    local other = sb.store:find_remote_id(remote_id)
    if other and other ~= record then
      errors[#errors + 1] = "A contact with remote_id '" .. remote_id .. "' already exists"
    end
  end
end

local function check_external_id(plan, record, errors)
  if plan.external_id and (not record or plan.external_id ~= record.external_id) then
    errors[#errors + 1] = "external_id is read-only"
  end
end

-- Finds the contact a write is about (docs/envoke-api.md §7).
-- @return record or nil, the key used ("id", "email", "remote_id"), problems
local function identify(sb, req, plan, path_id)
  local problems = {}
  if path_id then
    local id, why = schema.normalize("id", path_id)
    if not id then
      problems[#problems + 1] = "id in the path " .. why
    elseif plan.id and plan.id ~= id then
      problems[#problems + 1] = "id in the body (" .. plan.id .. ") does not match the id in the path (" .. id .. ")"
    end
    return id and sb.store:get(id), "id", problems
  end

  local keyfield = req.params.keyfield
  if keyfield ~= nil and keyfield ~= "id" and keyfield ~= "email" and keyfield ~= "remote_id" then
    problems[#problems + 1] = "keyfield must be one of id, email, remote_id"
    return nil, nil, problems
  end
  keyfield = keyfield or "id"
  if keyfield == "id" and not plan.id then keyfield = "email" end -- Envoke: email is the default without an id

  if keyfield == "id" then
    return sb.store:get(plan.id), "id", problems
  elseif keyfield == "email" then
    local email = plan.values.email
    if not email then
      problems[#problems + 1] = req.params.keyfield == "email" and "email is required with keyfield=email"
        or "id or email is required to identify the contact"
      return nil, "email", problems
    end
    local matches = sb.store:find_email(email)
    if #matches > 1 then
      problems[#problems + 1] = "more than one contact has email '" .. email .. "': identify it with id or remote_id"
    end
    -- The key finds the contact; it is not rewritten (not even its case).
    if #matches > 0 then plan.values.email = nil end
    return matches[1], "email", problems
  end
  local remote_id = plan.values.remote_id
  if not remote_id then
    problems[#problems + 1] = "remote_id is required with keyfield=remote_id"
    return nil, "remote_id", problems
  end
  return sb.store:find_remote_id(remote_id), "remote_id", problems
end

local function write_options(sb, req, insert)
  local s = sb.settings
  return { catalogue = sb.cat, write_empty = query.flag(req.params.write_empty_values), insert = insert,
           ignore_unknown = s.unknown_names == "ignore", truncate = s.overlong == "truncate" }
end

-- A write's success, with the status the setting `write_status` picks (200 or 201).
local function written(sb, text, view)
  local status, headers, body = response.ok(text, view)
  if sb.settings.write_status == 201 then status = 201 end
  return status, headers, body
end

-- The other reading of a refused consent downgrade: a 400, nothing applied
-- (the setting `refused_downgrade = "error"`; by default it is refused silently).
local function refused_downgrade(sb, record, plan, now)
  local c = plan.consent
  if not c or sb.settings.refused_downgrade ~= "error" then return nil end
  local expires = consent.expires_at(c.status, c.effective or now)
  local ok, why = consent.change_allowed(contact.status(record, now), record.consent_expires, c.status, expires,
                                         plan.force)
  if not ok then return "consent_status: " .. why end
end

local function do_insert(sb, plan, errors)
  if not plan.values.email and not plan.invalid.email then table.insert(errors, 1, "email is required") end
  check_external_id(plan, nil, errors)
  check_unique(sb, plan, nil, errors)
  if #errors > 0 then return response.invalid(errors) end
  local record = contact.new()
  local now = sb:now()
  record.created = now
  local notes = contact.apply(record, plan, now)
  sb.store:insert(record)
  sb:changed(notes)
  return written(sb, "Created", contact.view(record, now, sb.cat))
end

local function do_update(sb, record, plan, errors)
  check_external_id(plan, record, errors)
  check_unique(sb, plan, record, errors)
  local now = sb:now()
  errors[#errors + 1] = refused_downgrade(sb, record, plan, now)
  if #errors > 0 then return response.invalid(errors) end
  local notes = sb.store:update(record, function(r) return contact.apply(r, plan, now) end)
  sb:changed(notes)
  return written(sb, "Updated", contact.view(record, now, sb.cat))
end

--- `POST /v1/contacts` (insert) and `POST /v1/contacts?upsert=1`.
function contacts.create(sb, req)
  local body, fail = req:json_object()
  if not body then return fail() end
  if not query.flag(req.params.upsert) then
    local plan, errors = write.parse(body, write_options(sb, req, true))
    return do_insert(sb, plan, errors)
  end
  local plan, errors = write.parse(body, write_options(sb, req, false))
  local record, key, problems = identify(sb, req, plan, nil)
  -- With no key at all an upsert is an insert, which then needs an email.
  if key == "email" and not plan.values.email and not record then problems = {} end
  if record then return do_update(sb, record, plan, append(problems, errors)) end
  if key == "id" and #problems == 0 then
    -- Ids come from Envoke: an unknown one cannot be inserted.
    table.insert(problems, NOT_FOUND)
  end
  if #problems > 0 then return response.invalid(append(problems, errors)) end
  return do_insert(sb, plan, errors)
end

--- `PATCH /v1/contacts` and `PATCH /v1/contacts/{id}`.
function contacts.update(sb, req)
  local body, fail = req:json_object()
  if not body then return fail() end
  local plan, errors = write.parse(body, write_options(sb, req, false))
  local record, _, problems = identify(sb, req, plan, req.id)
  if not record and #problems == 0 then problems[1] = NOT_FOUND end
  if not record then return response.invalid(append(problems, errors)) end
  return do_update(sb, record, plan, append(problems, errors))
end

local function path_id(req)
  local id, why = schema.normalize("id", req.id)
  if not id then return nil, { "id in the path " .. why } end
  return id
end

--- `GET /v1/contacts/{id}`: the contact, or JSON null. No Envoke page
-- confirms this route: with the setting `get_by_id = false` it is a 404.
function contacts.get(sb, req)
  if sb.settings.get_by_id == false then
    return response.fail(404, "Not Found", { "no route for GET /v1/contacts/" .. tostring(req.id) })
  end
  local id, problems = path_id(req)
  if not id then return response.invalid(problems) end
  local fields
  if req.params.fields ~= nil then
    local why
    fields, why = filter.fields(req.params.fields)
    if not fields then return response.invalid({ why }) end
  end
  local record = sb.store:get(id)
  if not record then return response.json(200, json.null) end
  return response.json(200, contact.view(record, sb:now(), sb.cat, fields))
end

--- `DELETE /v1/contacts/{id}`; refused for Revoked and spam statuses.
function contacts.delete(sb, req)
  local id, problems = path_id(req)
  if not id then return response.invalid(problems) end
  local record = sb.store:get(id)
  if not record then return response.invalid({ NOT_FOUND }) end
  local status = contact.status(record, sb:now())
  if status == "Revoked" or consent.spam[status] then
    return response.invalid({ "A contact whose consent is '" .. status .. "' cannot be deleted" })
  end
  sb.store:delete(id)
  sb:changed()
  return response.ok("Deleted", json.array())
end

--- `GET /v1/contacts`: a bare JSON array.
function contacts.list(sb, req)
  local out, problems = filter.list(sb.store:all(), req.params, req.ordered, sb:now(), sb.cat)
  if not out then return response.invalid(problems) end
  return response.json(200, out)
end

local function id_map(ns)
  local map, order = {}, {}
  for i, entry in ipairs(ns.list) do
    map[entry.id] = entry.name
    order[i] = entry.id
  end
  return json.object(map, order)
end

--- `GET /v1/interests`: `{"<id>": "<name>"}` for interests, subscriptions
-- and mandatory consent (one namespace, as the API writes them).
function contacts.interests(sb)
  return response.json(200, id_map(sb.cat.interests))
end

--- `GET /v1/autoresponders`: `{"<id>": "<name>"}` of the nurtures.
function contacts.autoresponders(sb)
  return response.json(200, id_map(sb.cat.nurtures))
end

--- `GET /v1/settings`: the account object.
function contacts.settings(sb)
  return response.json(200, json.object(contact.copy_map(sb.settings), { "id", "name" }))
end

return contacts
