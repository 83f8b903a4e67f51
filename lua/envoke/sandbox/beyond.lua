--- What the sandbox serves beyond contacts (docs/envoke-api.md §8), in one
-- place for `envoke.sandbox` to plug in: the routes of `envoke.sandbox.items`,
-- `envoke.sandbox.hooks` and `envoke.sandbox.sending`, their test controls,
-- the webhook events around contact writes, deliveries, and the reset.
--
-- Test controls added here:
--
-- | route | what it does |
-- |---|---|
-- | `GET /_sandbox/deliveries` | every webhook delivery: hook, URL, records, state, attempts |
-- | `POST /_sandbox/deliveries` | deliver what is due now (the same list back) |
-- | `GET /_sandbox/messages` | every email the sandbox would have sent |
-- | `GET`, `POST /_sandbox/groups` | interest groups; add one with `{"type": "interest"|"subscription", "name": …}` |
-- @module envoke.sandbox.beyond

local account = require "envoke.sandbox.account"
local hooks = require "envoke.sandbox.hooks"
local items = require "envoke.sandbox.items"
local sending = require "envoke.sandbox.sending"
local response = require "envoke.sandbox.response"
local json = require "envoke.sandbox.json"

local beyond = {}

--- Every API route beyond contacts, in the router's format.
beyond.routes = {}
for _, list in ipairs{ items.routes, hooks.routes, sending.routes } do
  for _, r in ipairs(list) do beyond.routes[#beyond.routes + 1] = r end
end

--- Whether a path is under one of Envoke's API prefixes (others are a 404 before auth).
function beyond.api_path(path)
  return path:find("^/v[12]/") ~= nil or path:find("^/api/v4legacy/") ~= nil
end

local function groups(sb)
  local out = json.array()
  for i, g in ipairs(account.state(sb).groups.list) do
    out[i] = json.object({ id = g.id, name = g.name, type = g.type }, { "id", "name", "type" })
  end
  return response.ok("Groups", out)
end

local function add_group(sb, req)
  local body, fail = req:json_object()
  if not body then return fail() end
  if (body.type ~= "interest" and body.type ~= "subscription") or type(body.name) ~= "string"
     or not body.name:find("%S") then
    return response.invalid({ "expected {\"type\": \"interest\"|\"subscription\", \"name\": \"...\"}" })
  end
  if account.group(sb, body.name) then return response.invalid({ "a group named '" .. body.name .. "' exists" }) end
  account.add_group(sb, body.type, body.name)
  return groups(sb)
end

--- The test controls, in the router's format.
beyond.controls = {
  { "^/_sandbox/deliveries$", { GET = hooks.deliveries, POST = hooks.run_deliveries } },
  { "^/_sandbox/messages$", { GET = sending.sent } },
  { "^/_sandbox/groups$", { GET = groups, POST = add_group } },
}

--- Their lines for `GET /_sandbox`.
beyond.control_names = { "GET /_sandbox/deliveries", "POST /_sandbox/deliveries", "GET /_sandbox/messages",
                         "GET /_sandbox/groups", "POST /_sandbox/groups" }

--- Before a handler runs: what the webhook events need (nil: nothing to watch).
beyond.before = hooks.watch

--- After a handler ran.
function beyond.after(sb, watch, status, body)
  if watch then hooks.observe(sb, watch, status, body) end
end

--- After every answer: scheduled messages whose time came, deliveries that are due.
function beyond.pump(sb)
  if not sb.extra then return end
  sending.tick(sb)
  hooks.pump(sb)
end

--- On a reset.
beyond.reset = account.reset

return beyond
