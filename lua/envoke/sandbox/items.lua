--- The v2 item endpoints (docs/envoke-api.md §8): `/v2/tags`,
-- `/v2/subscriptions`, `/v2/interests`, `/v2/customfields`, the bulk
-- assignment of contacts to a tag or subscription, and v1 `/v1/customfields`.
-- Tags and subscriptions are the catalogue's interests (the ones contacts
-- write by name or id), so a tag made here can be set on a contact at once.
-- @module envoke.sandbox.items

local schema = require "envoke.schema"
local account = require "envoke.sandbox.account"
local consent = require "envoke.sandbox.consent"
local response = require "envoke.sandbox.response"
local json = require "envoke.sandbox.json"

local items = {}

local MAX_PAGE = 100      -- limit's cap (lifted with fields= or result_type=kvp)
local DEFAULT_PAGE = 10
local UNCAPPED_PAGE = 100000
local BULK_MAX = 1000

local LANGUAGES = {}
for _, l in ipairs(schema.fields.language.values) do LANGUAGES[l] = true end

local function not_found(id)
  return response.invalid({ "Item with id '" .. tostring(id) .. "' not found" })
end

local function item_order(kind)
  if kind == "field" then return { "id", "name", "field_type", "description" } end
  return { "id", "external_id", "type", "name", "group", "prefpage_access", "description", "display_names",
           "display_descriptions" }
end
local INTEREST_ORDER, FIELD_ORDER = item_order("interest"), item_order("field")

---------------------------------------------------------------------------
-- Tags and subscriptions
---------------------------------------------------------------------------

-- Which catalogue kinds each route serves. The mandatory consent reads as a
-- subscription (it is one to the contact) but cannot be deleted.
local KINDS = {
  tags = { interest = true },
  subscriptions = { subscription = true, mandatory_consent = true },
  interests = { interest = true, subscription = true, mandatory_consent = true },
}

local function meta_of(sb, entry)
  local st = account.state(sb)
  local m = st.meta[entry.id]
  if not m then
    m = { external_id = sb.store:new_external_id(), group = "", description = "",
          display_names = { en = "", fr = "" }, prefpage_access = "public", display_descriptions = {} }
    st.meta[entry.id] = m
  end
  return m
end

local function languages(t)
  local out = json.object()
  for k, v in pairs(t or {}) do out[k] = v end
  return out
end

local function interest_view(sb, entry, route, fields)
  local m = meta_of(sb, entry)
  local v = json.object({
    id = entry.id, external_id = m.external_id, name = entry.name, group = m.group,
    description = m.description, display_names = languages(m.display_names),
  }, INTEREST_ORDER)
  if route == "interests" then v.type = entry.kind == "interest" and "interest" or "subscription" end
  if route == "subscriptions" then
    v.prefpage_access = m.prefpage_access
    v.display_descriptions = languages(m.display_descriptions)
  end
  if fields then
    local trimmed = json.object({}, INTEREST_ORDER)
    for _, f in ipairs(fields) do trimmed[f] = v[f] end
    return trimmed
  end
  return v
end

local function entry_of(sb, route, id)
  local entry = sb.cat.interests.by_id[tostring(id)]
  if entry and KINDS[route][entry.kind] then return entry end
end

---------------------------------------------------------------------------
-- Custom fields
---------------------------------------------------------------------------

-- The custom fields with ids: the catalogue's names get ids 1..n in order on first use.
local function field_table(sb)
  local st = account.state(sb)
  if not st.fields then
    local t = { list = {}, by_id = {}, next_id = 1 }
    for _, name in ipairs(sb.cat.custom_fields) do
      local f = { id = tostring(t.next_id), name = name, field_type = "text", description = "" }
      t.next_id = t.next_id + 1
      t.list[#t.list + 1] = f
      t.by_id[f.id] = f
    end
    st.fields = t
  end
  return st.fields
end

local function field_view(f, fields)
  local v = json.object({ id = f.id, name = f.name, field_type = f.field_type, description = f.description },
    FIELD_ORDER)
  if fields then
    local trimmed = json.object({}, FIELD_ORDER)
    for _, name in ipairs(fields) do trimmed[name] = v[name] end
    return trimmed
  end
  return v
end

---------------------------------------------------------------------------
-- Lists: filter[f]=v, filter[f][(ne)]=v, sort[f]=asc|desc, limit, skip, fields
---------------------------------------------------------------------------

local function whole(v, name, min, max, problems)
  if v == nil then return nil end
  local n = type(v) == "string" and v:find("^%d+$") and tonumber(v)
  if not n or n < min or (max and n > max) then
    problems[#problems + 1] = name .. " must be an integer from " .. min .. (max and " to " .. max or " up")
    return nil
  end
  return n
end

-- A predicate from filter[...] over views; problems collected.
local function compile_filter(filter, allowed, problems)
  if filter == nil then return function() return true end end
  if type(filter) ~= "table" then
    problems[#problems + 1] = "filter must be filter[field]=value"
    return nil
  end
  local tests = {}
  for field, cond in pairs(filter) do
    if not allowed[field] then
      problems[#problems + 1] = "Unknown filter field '" .. tostring(field) .. "'"
    elseif type(cond) == "table" then
      local ne = cond["(ne)"]
      if type(ne) ~= "string" or next(cond, "(ne)") ~= nil then
        problems[#problems + 1] = "filter[" .. field .. "] takes a value or [(ne)]=value"
      else
        tests[#tests + 1] = function(v) return tostring(v[field]) ~= ne end
      end
    else
      tests[#tests + 1] = function(v) return tostring(v[field]) == cond end
    end
  end
  return function(v)
    for _, t in ipairs(tests) do if not t(v) then return false end end
    return true
  end
end

local function sorter(sort, allowed, problems)
  local field, dir = "name", "asc"
  if sort ~= nil then
    local n = 0
    if type(sort) ~= "table" then
      problems[#problems + 1] = "sort must be sort[field]=asc|desc"
      return nil
    end
    for f, d in pairs(sort) do
      n = n + 1
      field, dir = f, type(d) == "string" and d:lower() or ""
      if not allowed[f] then problems[#problems + 1] = "Cannot sort by '" .. tostring(f) .. "'" end
      if dir ~= "asc" and dir ~= "desc" then
        problems[#problems + 1] = "sort[" .. tostring(f) .. "] must be asc or desc"
      end
    end
    if n > 1 then problems[#problems + 1] = "sort takes one field" end
  end
  return function(a, b)
    local x, y = tostring(a[field]):lower(), tostring(b[field]):lower()
    if x == y then x, y = tonumber(a.id) or 0, tonumber(b.id) or 0 end
    if dir == "desc" then return x > y end
    return x < y
  end
end

local function parse_fields(v, order, problems)
  if v == nil then return nil end
  local known, out = {}, {}
  for _, k in ipairs(order) do known[k] = true end
  for name in tostring(v):gmatch("[^,%s]+") do
    if known[name] then out[#out + 1] = name else problems[#problems + 1] = "fields: unknown field '" .. name .. "'" end
  end
  if #out == 0 then problems[#problems + 1] = "fields: name at least one field" end
  return out
end

--- Lists views: `all` is a list of full views, `spec` says what may be
-- filtered and sorted. Answers the JSON array, or `{id: name}` with result_type=kvp.
-- @local
function items.list(req, all, spec, trim)
  local p, problems = req.params, {}
  local pred = compile_filter(p.filter, spec.filters, problems)
  local less = sorter(p.sort, spec.sorts, problems)
  local fields = parse_fields(p.fields, spec.order, problems)
  local kvp = p.result_type == "kvp"
  if p.result_type ~= nil and not kvp then problems[#problems + 1] = "result_type must be kvp" end
  local uncapped = fields ~= nil or kvp or spec.uncapped
  local limit = whole(p.limit, "limit", 1, not uncapped and MAX_PAGE or nil, problems)
  local skip = whole(p.skip, "skip", 0, nil, problems) or 0
  if #problems > 0 then return response.invalid(problems) end
  local hits = {}
  for _, v in ipairs(all) do if pred(v) then hits[#hits + 1] = v end end
  table.sort(hits, less)
  limit = limit or (uncapped and UNCAPPED_PAGE or DEFAULT_PAGE)
  local out = kvp and json.object() or json.array()
  for i = skip + 1, math.min(#hits, skip + limit) do
    if kvp then out[hits[i].id] = hits[i].name else out[#out + 1] = trim(hits[i], fields) end
  end
  return response.json(200, out)
end

local function interest_views(sb, route)
  local out = {}
  for _, entry in ipairs(sb.cat.interests.list) do
    if KINDS[route][entry.kind] then out[#out + 1] = interest_view(sb, entry, route) end
  end
  return out
end

local function trimmer(order)
  return function(v, fields)
    if not fields then return v end
    local t = json.object({}, order)
    for _, f in ipairs(fields) do t[f] = v[f] end
    return t
  end
end

local LIST_SPECS = {
  tags = { filters = { id = true, name = true, external_id = true, group = true, description = true },
           sorts = { name = true }, order = INTEREST_ORDER },
  subscriptions = { filters = { id = true, name = true, external_id = true, group = true, prefpage_access = true },
                    sorts = { name = true }, order = INTEREST_ORDER },
  customfields = { filters = { id = true, name = true, field_type = true, description = true },
                   sorts = { name = true, field_type = true }, order = FIELD_ORDER },
}

---------------------------------------------------------------------------
-- Writes of tags and subscriptions
---------------------------------------------------------------------------

local WRITABLE = {
  tags = { name = true, group = true, description = true, display_names = true },
  subscriptions = { name = true, group = true, description = true, display_names = true, prefpage_access = true,
                    display_descriptions = true },
}

local function check_languages(name, v, problems)
  if type(v) ~= "table" or (next(v) ~= nil and schema.is_array(v)) then
    problems[#problems + 1] = "'" .. name .. "' must be an object keyed by language"
    return
  end
  for k, text in pairs(v) do
    if not LANGUAGES[k] then
      problems[#problems + 1] = "'" .. name .. "' has an unknown language '" .. tostring(k) .. "'"
    end
    if type(text) ~= "string" then
      problems[#problems + 1] = "'" .. name .. "." .. tostring(k) .. "' must be a string"
    end
  end
end

-- Checks a tag or subscription body; returns the changes or nil and problems.
local function interest_changes(sb, route, body, entry)
  local problems, changes = {}, {}
  local kind = route == "tags" and "interest" or "subscription"
  for k, v in pairs(body) do
    local ignored = k == "external_id" or (k == "id" and entry) -- (the id is checked by the caller)
    if ignored then
      changes.ignored = true
    elseif not WRITABLE[route][k] then
      problems[#problems + 1] = "Unknown field '" .. tostring(k) .. "'"
    elseif k == "name" then
      if type(v) ~= "string" or not v:find("%S") then
        problems[#problems + 1] = "The field 'name' is required"
      else
        local other = sb.cat.interests.by_name[v:lower()]
        if other and other ~= entry then problems[#problems + 1] = "An interest named '" .. v .. "' already exists" end
        changes.name = v
      end
    elseif k == "group" then
      if v == "" or v == json.null then
        changes.group = ""
      else
        local g = account.group(sb, v)
        if not g or g.type ~= kind then
          problems[#problems + 1] = "Invalid 'group': '" .. tostring(v) .. "'"
        else
          changes.group = g.name
        end
      end
    elseif k == "description" then
      if type(v) ~= "string" then problems[#problems + 1] = "'description' must be a string" end
      changes.description = v
    elseif k == "prefpage_access" then
      if v ~= "public" and v ~= "private" then
        problems[#problems + 1] = "'prefpage_access' must be public or private"
      end
      changes.prefpage_access = v
    else
      check_languages(k, v, problems)
      changes[k] = v
    end
  end
  if not entry and changes.name == nil and not problems[1] then problems[1] = "The field 'name' is required" end
  if #problems > 0 then return nil, problems end
  return changes
end

local function next_interest_id(cat)
  local max = 0
  for _, e in ipairs(cat.interests.list) do max = math.max(max, tonumber(e.id)) end
  return ("%d"):format(max + 1)
end

local function apply_interest(sb, entry, changes)
  local m = meta_of(sb, entry)
  if changes.name and changes.name ~= entry.name then
    local ns = sb.cat.interests
    ns.by_name[entry.name:lower()] = nil
    entry.name = changes.name
    ns.by_name[entry.name:lower()] = entry
  end
  for _, k in ipairs{ "group", "description", "prefpage_access" } do
    if changes[k] ~= nil then m[k] = changes[k] end
  end
  for _, k in ipairs{ "display_names", "display_descriptions" } do
    if changes[k] ~= nil then
      local t = {}
      for lang, text in pairs(changes[k]) do t[lang] = text end
      m[k] = t
    end
  end
end

local function create_interest(sb, req, route)
  local body, fail = req:json_object()
  if not body then return fail() end
  if next(body) == nil then return response.invalid({ "Request body may not be empty" }) end
  local changes, problems = interest_changes(sb, route, body, nil)
  if not changes then return response.invalid(problems) end
  local cat = account.writable_catalogue(sb)
  local entry = { id = next_interest_id(cat), name = changes.name,
                  kind = route == "tags" and "interest" or "subscription" }
  cat.interests.list[#cat.interests.list + 1] = entry
  cat.interests.by_id[entry.id] = entry
  cat.interests.by_name[entry.name:lower()] = entry
  apply_interest(sb, entry, changes)
  sb:changed()
  return response.ok("Created", interest_view(sb, entry, route))
end

local function update_interest(sb, req, route)
  local body, fail = req:json_object()
  if not body then return fail() end
  if next(body) == nil then return response.invalid({ "At least one field must be provided" }) end
  local entry = entry_of(sb, route, req.id)
  if not entry then return not_found(req.id) end
  if body.id ~= nil and tostring(body.id) ~= entry.id then
    return response.invalid({ ("Provided 'id': %s does not match 'id' in request body (%s)")
      :format(entry.id, tostring(body.id)) })
  end
  local changes, problems = interest_changes(sb, route, body, entry)
  if not changes then return response.invalid(problems) end
  account.writable_catalogue(sb)
  entry = entry_of(sb, route, req.id) -- the catalogue's copy
  apply_interest(sb, entry, changes)
  sb:changed()
  return response.ok("Updated", interest_view(sb, entry, route))
end

local function delete_interest(sb, req, route)
  local entry = entry_of(sb, route, req.id)
  if not entry then return not_found(req.id) end
  if entry.kind == "mandatory_consent" then return response.invalid({ "The mandatory consent cannot be deleted" }) end
  local cat = account.writable_catalogue(sb)
  local ns = cat.interests
  for i, e in ipairs(ns.list) do
    if e.id == entry.id then table.remove(ns.list, i) break end
  end
  ns.by_id[entry.id], ns.by_name[entry.name:lower()] = nil, nil
  account.state(sb).meta[entry.id] = nil
  for _, record in ipairs(sb.store:all()) do
    for i = #record.interests, 1, -1 do
      if record.interests[i] == entry.id then table.remove(record.interests, i) end
    end
  end
  sb:changed()
  return response.ok("Deleted", json.array())
end

---------------------------------------------------------------------------
-- Bulk assignment
---------------------------------------------------------------------------

local function bulk_targets(body)
  local ids, emails = body.contact_ids, body.contact_emails
  if (ids == nil) == (emails == nil) then
    return nil, { "Provide exactly one of 'contact_ids' or 'contact_emails'" }
  end
  local list, key = ids or emails, ids and "contact_ids" or "contact_emails"
  if type(list) ~= "table" or (next(list) ~= nil and not schema.is_array(list)) then
    return nil, { "'" .. key .. "' must be an array" }
  end
  if #list > BULK_MAX then
    return nil, { ("At most %d items per request ('%s' has %d)"):format(BULK_MAX, key, #list) }
  end
  local problems = {}
  for i, v in ipairs(list) do
    if ids and not (type(v) == "number" and schema.normalize("id", v)) then
      problems[#problems + 1] = ("contact_ids[%d] must be an integer contact id"):format(i - 1)
    elseif emails and type(v) ~= "string" then
      problems[#problems + 1] = ("contact_emails[%d] must be a string"):format(i - 1)
    end
  end
  if #problems > 0 then return nil, problems end
  return list, key
end

-- Subscribing a contact that reported spam fails (the sandbox's reading of
-- Envoke's per-contact `failed`): its consent forbids any subscription.
local function assign(sb, record, entry, add)
  local has
  for i, id in ipairs(record.interests) do
    if id == entry.id then has = i break end
  end
  if add and not has then
    local status = require("envoke.sandbox.contact").status(record, sb:now())
    if entry.kind ~= "interest" and consent.spam[status] then
      return "the contact's consent is '" .. status .. "'"
    end
    record.interests[#record.interests + 1] = entry.id
  elseif not add and has then
    table.remove(record.interests, has)
  end
end

local function bulk(sb, req, route, add)
  local entry = entry_of(sb, route, req.id)
  if not entry then return not_found(req.id) end
  local body, fail = req:json_object()
  if not body then return fail() end
  local list, key = bulk_targets(body)
  if not list then return response.invalid(key) end
  local missing, failed = json.array(), json.array()
  for _, v in ipairs(list) do
    local records = key == "contact_ids" and { sb.store:get(schema.normalize("id", v)) } or sb.store:find_email(v)
    if not records[1] then missing[#missing + 1] = v end
    for _, record in ipairs(records) do
      local why = assign(sb, record, entry, add)
      if why then failed[#failed + 1] = json.object({ contact_id = ("%d"):format(record.id), reason = why },
        { "contact_id", "reason" }) end
    end
  end
  sb:changed()
  local data = json.object({ processed = #list }, { "processed", "not_found", "failed" })
  if #missing > 0 then data.not_found = missing end
  local done = add and "Set to contacts" or "Removed from contacts"
  if #failed > 0 then
    data.failed = failed
    return response.json(400, json.object({ success = false, result_text = "Error setting to contacts",
      result_data = data }, { "success", "result_text", "result_data" }))
  end
  return response.ok(#missing > 0 and done .. ". Some contacts not found" or done, data)
end

---------------------------------------------------------------------------
-- Custom fields
---------------------------------------------------------------------------

local FIELD_TYPES = { text = true, note = true, date = true, url = true }

local function field_changes(sb, body, field)
  local problems, changes = {}, {}
  for k, v in pairs(body) do
    if k == "id" and field then
      if tostring(v) ~= field.id then problems[#problems + 1] = "Provided 'id' does not match the id in the path" end
    elseif k == "name" then
      local other = sb.cat.custom_by_name[type(v) == "string" and v:lower() or ""]
      if type(v) ~= "string" or not v:find("%S") or v:find("%.") then
        problems[#problems + 1] = "The field 'name' is required (a name without '.')"
      elseif other and (not field or other ~= field.name) then
        problems[#problems + 1] = "A custom field named '" .. v .. "' already exists"
      end
      changes.name = v
    elseif k == "field_type" then
      if field then
        problems[#problems + 1] = "'field_type' cannot be changed"
      elseif not FIELD_TYPES[v] then
        problems[#problems + 1] = "'field_type' must be one of text, note, date, url"
      end
      changes.field_type = v
    elseif k == "description" then
      if type(v) ~= "string" then problems[#problems + 1] = "'description' must be a string" end
      changes.description = v
    else
      problems[#problems + 1] = "Unknown field '" .. tostring(k) .. "'"
    end
  end
  if not field then
    if changes.name == nil and not problems[1] then problems[#problems + 1] = "The field 'name' is required" end
    if changes.field_type == nil then problems[#problems + 1] = "The field 'field_type' is required" end
  end
  if #problems > 0 then return nil, problems end
  return changes
end

local function rename_field(sb, f, name)
  local cat = account.writable_catalogue(sb)
  for i, n in ipairs(cat.custom_fields) do
    if n == f.name then cat.custom_fields[i] = name end
  end
  cat.custom_by_name[f.name:lower()] = nil
  cat.custom_by_name[name:lower()] = name
  for _, record in ipairs(sb.store:all()) do
    local v = record.custom_fields[f.name]
    record.custom_fields[f.name] = nil
    record.custom_fields[name] = v
  end
  f.name = name
end

local function create_field(sb, req)
  local body, fail = req:json_object()
  if not body then return fail() end
  if next(body) == nil then return response.invalid({ "Request body may not be empty" }) end
  local t = field_table(sb)
  local changes, problems = field_changes(sb, body, nil)
  if not changes then return response.invalid(problems) end
  local cat = account.writable_catalogue(sb)
  local f = { id = tostring(t.next_id), name = changes.name, field_type = changes.field_type,
              description = changes.description or "" }
  t.next_id = t.next_id + 1
  t.list[#t.list + 1], t.by_id[f.id] = f, f
  cat.custom_fields[#cat.custom_fields + 1] = f.name
  cat.custom_by_name[f.name:lower()] = f.name
  sb:changed()
  return response.ok("Created", field_view(f))
end

local function update_field(sb, req)
  local body, fail = req:json_object()
  if not body then return fail() end
  local f = field_table(sb).by_id[req.id]
  if not f then return not_found(req.id) end
  if next(body) == nil then return response.invalid({ "At least one field must be provided" }) end
  local changes, problems = field_changes(sb, body, f)
  if not changes then return response.invalid(problems) end
  if changes.name and changes.name ~= f.name then rename_field(sb, f, changes.name) end
  if changes.description then f.description = changes.description end
  sb:changed()
  return response.ok("Updated", field_view(f))
end

local function delete_field(sb, req)
  local t = field_table(sb)
  local f = t.by_id[req.id]
  if not f then return not_found(req.id) end
  local cat = account.writable_catalogue(sb)
  for i, n in ipairs(cat.custom_fields) do
    if n == f.name then table.remove(cat.custom_fields, i) break end
  end
  cat.custom_by_name[f.name:lower()] = nil
  for i, g in ipairs(t.list) do
    if g == f then table.remove(t.list, i) break end
  end
  t.by_id[f.id] = nil
  -- Envoke: deleting a field deletes every contact's value of it.
  for _, record in ipairs(sb.store:all()) do record.custom_fields[f.name] = nil end
  sb:changed()
  return response.ok("Deleted", json.array())
end

---------------------------------------------------------------------------
-- Handlers
---------------------------------------------------------------------------

local function route_handlers(route)
  return {
    list = function(sb, req)
      return items.list(req, interest_views(sb, route), LIST_SPECS[route], trimmer(INTEREST_ORDER))
    end,
    get = function(sb, req)
      local entry = entry_of(sb, route, req.id)
      if not entry then return not_found(req.id) end
      return response.json(200, interest_view(sb, entry, route))
    end,
    create = function(sb, req) return create_interest(sb, req, route) end,
    update = function(sb, req) return update_interest(sb, req, route) end,
    delete = function(sb, req) return delete_interest(sb, req, route) end,
    add = function(sb, req) return bulk(sb, req, route, true) end,
    remove = function(sb, req) return bulk(sb, req, route, false) end,
  }
end

local tags, subs = route_handlers("tags"), route_handlers("subscriptions")

--- `GET /v2/interests`: tags and subscriptions; `type=tag|subscription`, `group=…`,
-- `result_type=kvp`; every one unless `limit` is given (no paging documented).
function items.interests(sb, req)
  local p = req.params
  local want = p.type
  if want ~= nil and want ~= "tag" and want ~= "subscription" then
    return response.invalid({ "type must be tag or subscription" })
  end
  local all = {}
  for _, v in ipairs(interest_views(sb, "interests")) do
    local t = v.type == "interest" and "tag" or "subscription"
    if (not want or want == t) and (p.group == nil or v.group == p.group) then all[#all + 1] = v end
  end
  return items.list({ params = { result_type = p.result_type, limit = p.limit, skip = p.skip } }, all,
    { filters = {}, sorts = { name = true }, order = INTEREST_ORDER, uncapped = true }, trimmer(INTEREST_ORDER))
end

local function field_list(sb, req)
  local all = {}
  for i, f in ipairs(field_table(sb).list) do all[i] = field_view(f) end
  return items.list(req, all, LIST_SPECS.customfields, trimmer(FIELD_ORDER))
end

local function field_get(sb, req)
  local f = field_table(sb).by_id[req.id]
  if not f then return not_found(req.id) end
  return response.json(200, field_view(f))
end

--- `GET /v1/customfields`: the account's custom fields. Envoke's pages do
-- not show this shape: `[{"key": name, "label": name}]` by default, a plain
-- array of names with the account setting `customfields_shape = "names"`.
function items.v1_custom_fields(sb)
  local out = json.array()
  for i, name in ipairs(sb.cat.custom_fields) do
    out[i] = sb.settings.customfields_shape == "names" and name
      or json.object({ key = name, label = name }, { "key", "label" })
  end
  return response.json(200, out)
end

--- The routes, in the router's format (see `envoke.sandbox`).
items.routes = {
  { "^/v2/tags$", { GET = tags.list, POST = tags.create } },
  { "^/v2/tags/([^/]+)/contacts$", { POST = tags.add, DELETE = tags.remove } },
  { "^/v2/tags/([^/]+)$", { GET = tags.get, PATCH = tags.update, DELETE = tags.delete } },
  { "^/v2/subscriptions$", { GET = subs.list, POST = subs.create } },
  { "^/v2/subscriptions/([^/]+)/contacts$", { POST = subs.add, DELETE = subs.remove } },
  { "^/v2/subscriptions/([^/]+)$", { GET = subs.get, PATCH = subs.update, DELETE = subs.delete } },
  { "^/v2/interests$", { GET = items.interests } },
  { "^/v2/customfields$", { GET = field_list, POST = create_field } },
  { "^/v2/customfields/([^/]+)$", { GET = field_get, PATCH = update_field, DELETE = delete_field } },
  { "^/v1/customfields$", { GET = items.v1_custom_fields } },
}

return items
