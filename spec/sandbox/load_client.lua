--- One client of the load spec (spec/sandbox/load_spec.lua), run as its own
-- process:  lua5.4 spec/sandbox/load_client.lua PORT CLIENT REQUESTS OUTFILE
--
-- Sends REQUESTS mixed requests over one keep-alive connection, touching
-- only its own contacts (emails c<CLIENT>-<n>@load.test), and keeps a model
-- of what those contacts must be, built from what it sent (never from what
-- the server answered, except the ids and external ids it assigns).  Writes
-- `{client, sent, failures, contacts}` as JSON to OUTFILE.

package.path = "./lua/?.lua;./lua/?/init.lua;./?.lua;./spec/support/?.lua;" .. package.path

local cjson = require "cjson.safe"
local sandbox_server = require "sandbox_server"

local port, client, total, outfile = ...
client, total = tonumber(client), tonumber(total)

local srv = setmetatable({ port = tonumber(port), api_id = "sandbox", api_key = "sandbox", timeout = 60 },
  sandbox_server.methods)

-- A deterministic generator per client (no math.randomseed): 1..k.
local state = client * 7919 + 17
local function rand(k)
  state = (state * 1103515245 + 12345) % 2147483648
  return math.floor(state / 65536) % k + 1
end

local TEXT = { "first_name", "last_name", "city", "province", "phone", "company", "title" }
local WORDS = { "Ann", "Zoë", "Bob", "Chloé", "Dan", "Éva", "Li", "Omar", "日本", "Renée" }
local INTERESTS = { "International", "Consumer", "Business Products", "Newsletter", "Specials" }

local model, live = {}, {}  -- id -> expected contact; list of live ids
local sent, serial = 0, 0
local failures = {}

local function fail(what)
  if #failures < 20 then failures[#failures + 1] = what end
end

local function deep_equal(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do
    if not deep_equal(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

local function call(method, target, body, want_status)
  sent = sent + 1
  local status, _, text = srv:request(method, target, body and cjson.encode(body))
  if status ~= want_status then
    fail(("%s %s -> %s (wanted %d): %s"):format(method, target, tostring(status), want_status, tostring(text)))
    return nil
  end
  return cjson.decode(text)
end

local function blank_contact()
  local c = {
    remote_id = "", first_name = "", last_name = "", title = "", email = "", company = "", phone = "",
    address_1 = "", address_2 = "", city = "", country = "", province = "", postal_code = "", website = "",
    language = "", feedback = "", consent_status = "Not provided", consent_description = "",
    consent_effective_date = "", consent_expiry = "", custom_fields = {}, interests = {}, autoresponders = {},
  }
  return c
end

local function pick()
  return live[rand(#live)]
end

local function word()
  return WORDS[rand(#WORDS)] .. rand(1000)
end

local ops = {}

function ops.insert()
  serial = serial + 1
  local name = ("c%d-%d"):format(client, serial)
  local c = blank_contact()
  c.email, c.remote_id, c.first_name = name .. "@load.test", name, word()
  local body = { email = c.email, remote_id = c.remote_id, first_name = c.first_name }
  if rand(2) == 1 then
    local interest = INTERESTS[rand(#INTERESTS)]
    body.interests = { interest }
    c.interests = { interest }
  end
  local upsert = rand(3) == 1
  local out = call("POST", upsert and "/v1/contacts?upsert=1" or "/v1/contacts", body, 200)
  if not out then return end
  if out.result_text ~= "Created" then fail("insert answered " .. tostring(out.result_text)) end
  c.id, c.external_id = out.result_data.id, out.result_data.external_id
  c.date_created = out.result_data.date_created -- the server's clock: taken as answered
  model[c.id] = c
  live[#live + 1] = c.id
end

function ops.patch_id()
  local id = pick()
  local field, value = TEXT[rand(#TEXT)], word()
  if call("PATCH", ("/v1/contacts/%d"):format(id), { [field] = value }, 200) then model[id][field] = value end
end

function ops.patch_email()
  local id = pick()
  local value = word()
  -- The key matches case-insensitively and is not rewritten.
  if call("PATCH", "/v1/contacts", { email = model[id].email:upper(), city = value }, 200) then
    model[id].city = value
  end
end

function ops.patch_remote_id()
  local id = pick()
  local value = word()
  if call("PATCH", "/v1/contacts?keyfield=remote_id", { remote_id = model[id].remote_id, last_name = value }, 200) then
    model[id].last_name = value
  end
end

function ops.upsert_existing()
  local id = pick()
  local value = word()
  local out = call("POST", "/v1/contacts?upsert=1", { email = model[id].email, company = value }, 200)
  if out then
    if out.result_text ~= "Updated" then fail("upsert answered " .. tostring(out.result_text)) end
    model[id].company = value
  end
end

function ops.interests()
  local id = pick()
  local name = INTERESTS[rand(#INTERESTS)]
  local action = rand(2) == 1 and "Set" or "Unset"
  if call("PATCH", ("/v1/contacts/%d"):format(id), { interests = { [name] = action } }, 200) then
    local list, at = model[id].interests, nil
    for i, v in ipairs(list) do if v == name then at = i end end
    if action == "Set" and not at then list[#list + 1] = name end
    if action == "Unset" and at then table.remove(list, at) end
  end
end

function ops.consent()
  local id = pick()
  local date = ("2030-01-%02dT08:00:00Z"):format(rand(28))
  local c = model[id]
  if rand(4) == 1 then
    local body = { consent_status = "Revoked", consent_effective_date = date }
    if call("PATCH", ("/v1/contacts/%d"):format(id), body, 200) then
      c.consent_status, c.consent_description = "Revoked", ""
      c.consent_effective_date = date:gsub("Z$", "+00:00")
    end
  else
    local why = "form " .. rand(100)
    local body = { consent_status = "express", consent_description = why, consent_effective_date = date }
    if call("PATCH", ("/v1/contacts/%d"):format(id), body, 200) then
      c.consent_status, c.consent_description = "Express", why
      c.consent_effective_date = date:gsub("Z$", "+00:00")
    end
  end
end

function ops.get()
  local id = pick()
  local out = call("GET", ("/v1/contacts/%d"):format(id), nil, 200)
  if out and not deep_equal(out, model[id]) then
    fail("GET " .. id .. " differs: " .. cjson.encode(out) .. " vs " .. cjson.encode(model[id]))
  end
end

function ops.list()
  local id = pick()
  local out = call("GET", "/v1/contacts?fields=id,remote_id&filter%5Bremote_id%5D=" .. model[id].remote_id, nil, 200)
  if out and not (#out == 1 and out[1].id == id) then
    fail("list by remote_id " .. model[id].remote_id .. ": " .. cjson.encode(out))
  end
end

function ops.invalid()
  local id = pick()
  call("PATCH", ("/v1/contacts/%d"):format(id), { first_name = ("x"):rep(21), city = "Nowhere" }, 400)
end

function ops.delete()
  local id = pick()
  if model[id].consent_status == "Revoked" then
    call("DELETE", ("/v1/contacts/%d"):format(id), nil, 400)
    return
  end
  if call("DELETE", ("/v1/contacts/%d"):format(id), nil, 200) then
    model[id] = nil
    for i, v in ipairs(live) do
      if v == id then
        table.remove(live, i)
        break
      end
    end
  end
end

-- Weights out of 100.
local MIX = {
  { ops.insert, 18 }, { ops.patch_id, 18 }, { ops.patch_email, 9 }, { ops.patch_remote_id, 9 },
  { ops.upsert_existing, 5 }, { ops.interests, 10 }, { ops.consent, 6 }, { ops.get, 10 },
  { ops.list, 5 }, { ops.invalid, 5 }, { ops.delete, 5 },
}

while sent < total do
  local op = ops.insert
  if #live > 0 then
    local r, acc = rand(100), 0
    for _, m in ipairs(MIX) do
      acc = acc + m[2]
      if r <= acc then
        op = m[1]
        break
      end
    end
  end
  op()
end

local contacts = {}
for _, id in ipairs(live) do contacts[#contacts + 1] = model[id] end
local f = assert(io.open(outfile .. ".tmp", "wb"))
f:write(cjson.encode({ client = client, sent = sent, failures = failures, contacts = contacts }))
f:close()
assert(os.rename(outfile .. ".tmp", outfile))
