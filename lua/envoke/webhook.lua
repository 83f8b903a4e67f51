--- Receiving Envoke's webhooks (docs/envoke-api.md §8).
--
-- Envoke POSTs a JSON array of records to a hook's URL, signs nothing, tries
-- a failed delivery once more 10 minutes later, and removes the hook when the
-- receiver answers 410. So a receiver wants: the records, readable like a
-- contact; a shared secret in its URL, compared in constant time; a way to
-- notice the same batch delivered twice; and the 410 answer.
--
--    local webhook = require "envoke.webhook"
--    local seen = webhook.deduper{ ttl = 3600 }                 -- or { dict = ngx.shared.hooks }
--    local status = webhook.receive(body, {
--      secret = SECRET, given = args.secret,                    -- 403 unless they match
--      dedupe = seen,                                           -- a repeat is answered 200, not handled again
--      handle = function(records) for _, r in ipairs(records) do crm.update(r.email, r.consent_status) end end,
--    })
--
-- Nothing here raises on what a sender sends: a bad body is `nil, err`.
-- Runs in plain Lua and inside nginx; needs no C module.
-- @module envoke.webhook
local errors = require "envoke.errors"
local schema = require "envoke.schema"

local webhook = {}

--- Largest body `parse` accepts by default (bytes).
webhook.MAX_BODY = 1024 * 1024

local function fail(kind, message)
  return nil, errors.new(kind, { message = message })
end

-- Values read as a contact reads them: Envoke's spelling of a consent status,
-- an integer id, ids of submissions too.
local function normalize(record)
  local r = {}
  for k, v in pairs(record) do r[k] = v end
  if type(r.consent_status) == "string" then
    r.consent_status = schema.consent.canonical(r.consent_status) or r.consent_status
  end
  for _, k in ipairs{ "id", "contact_id" } do
    if r[k] ~= nil then r[k] = schema.normalize("id", r[k]) or r[k] end
  end
  if r.id == nil and type(r.contact_id) == "number" then r.id = r.contact_id end
  if r.external_id == nil and r.contact_external_id ~= nil then r.external_id = r.contact_external_id end
  if r.remote_id == nil and r.contact_remote_id ~= nil then r.remote_id = r.contact_remote_id end
  return r
end

--- The records of one delivery.
-- Each record is a plain table holding every field Envoke sent (submission
-- fields such as `form_name` or `submission_time` included), readable like a
-- contact: `r.email`, `r.consent_status` (in Envoke's spelling), `r.id` (an
-- integer; for a submission, its `contact_id`).
-- @tparam string body the request body
-- @tparam[opt] table opts `max_body` (bytes, default 1 MiB)
-- @treturn table|nil the list of records
-- @treturn table|nil err (`kind` "protocol", or "too_large"); never raises
function webhook.parse(body, opts)
  if type(body) ~= "string" then return fail("protocol", "the webhook body is not a string, got " .. type(body)) end
  local max = type(opts) == "table" and tonumber(opts.max_body) or webhook.MAX_BODY
  if #body > max then return fail("too_large", ("the webhook body is %d bytes; the limit is %d"):format(#body, max)) end
  local ok, data = pcall(require("cjson.safe").decode, body)
  if not ok or data == nil then return fail("protocol", "the webhook body is not JSON") end
  -- `{}` decodes as `[]` does: the text tells them apart.
  if type(data) ~= "table" or not body:find("^%s*%[") or (next(data) ~= nil and not schema.is_array(data)) then
    return fail("protocol", "the webhook body is not a JSON array (Envoke always posts one)")
  end
  local out = {}
  for i, record in ipairs(data) do
    if type(record) ~= "table" or (next(record) ~= nil and schema.is_array(record)) then
      return fail("protocol", ("record %d of the webhook body is not an object"):format(i))
    end
    out[i] = normalize(record)
  end
  return out
end

--- Compares a secret given in a request with the expected one in constant
-- time (the time does not depend on where they differ).
-- @tparam string given e.g. from the URL's query string
-- @tparam string expected
-- @treturn boolean
function webhook.secret_matches(given, expected)
  if type(given) ~= "string" or type(expected) ~= "string" or expected == "" then return false end
  local byte = string.byte
  local diff = #given == #expected and 0 or 1
  for i = 1, #expected do
    -- Only equality is needed: any difference makes `diff` non-zero for good.
    if (byte(given, i) or -1) ~= byte(expected, i) then diff = diff + 1 end
  end
  return diff == 0
end

--- A new random secret (32 hexadecimal digits) for a hook's URL.
-- Needs `envoke.core` (the OS's random source).
function webhook.new_secret()
  local bytes = require("envoke.core").random_bytes(16)
  return (bytes:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

-- A key for a batch: its bytes' MD5 inside nginx, else two 32-bit hashes
-- and the length (a repeat delivery is the same bytes).
local function batch_key(body)
  local ngx = rawget(_G, "ngx")
  if type(ngx) == "table" and ngx.md5 then return ngx.md5(body) end
  local a, b = 5381, 0
  local byte = string.byte
  for i = 1, #body do
    local c = byte(body, i)
    a = (a * 33 + c) % 4294967296
    b = (b * 65599 + c) % 4294967296
  end
  return ("%08x%08x%d"):format(a, b, #body)
end
webhook.batch_key = batch_key

--- Remembers the batches handled, to notice one delivered again (Envoke
-- retries a delivery whose answer it did not get, though it may have been handled).
-- @type Deduper
local Deduper = {}
Deduper.__index = Deduper

--- A deduper keeping batches for `ttl` seconds.
-- @tparam[opt] table opts `ttl` (seconds, default 3600: Envoke retries after 10 minutes),
--   `dict` (an nginx `lua_shared_dict`, shared by the workers; else a table in this Lua state),
--   `clock` (function returning seconds; default os.time)
function webhook.deduper(opts)
  opts = opts or {}
  return setmetatable({ ttl = opts.ttl or 3600, dict = opts.dict, clock = opts.clock or os.time, seen = {},
                        count = 0 }, Deduper)
end

--- True the first time a batch is given (and it is remembered from then on);
-- false for a batch seen within `ttl`.
function Deduper:first(body)
  local key = batch_key(body)
  if self.dict then return (self.dict:add(key, true, self.ttl)) == true end
  local now = self.clock()
  local expires = self.seen[key]
  if expires and expires > now then return false end
  self.seen[key] = now + self.ttl
  self.count = self.count + 1
  if self.count > 1000 then self:expire(now) end
  return true
end

--- Forgets a batch (its handling failed, so the retry must be handled).
function Deduper:forget(body)
  local key = batch_key(body)
  if self.dict then self.dict:delete(key) else self.seen[key] = nil end
end

--- Drops what has expired (done by itself every 1000 new batches).
function Deduper:expire(now)
  now = now or self.clock()
  local n = 0
  for key, expires in pairs(self.seen) do
    if expires <= now then self.seen[key] = nil else n = n + 1 end
  end
  self.count = n
end

--- The answer that makes Envoke remove the hook: status 410, headers, body.
-- @treturn integer 410
-- @treturn table headers
-- @treturn string body
function webhook.gone()
  return 410, { ["content-type"] = "application/json" }, '{"unsubscribed":true}'
end

--- Handles one delivery: the secret, the body, a repeat, your handler.
-- @tparam string body the request body
-- @tparam table opts
--   `handle(records)` (required): returns nothing or true when done, `"gone"` to
--   unsubscribe the hook (410); raising or returning false answers 500, so Envoke retries;
--   `secret` and `given`: when `secret` is set, a `given` that differs answers 403;
--   `dedupe`: a `webhook.deduper`, so a repeat is answered 200 without calling `handle`;
--   `max_body`
-- @treturn integer the status to answer: 200, 400 (bad body), 403, 410, 413 or 500
-- @return the records, or the error (a parse failure, or what `handle` raised)
function webhook.receive(body, opts)
  if type(opts) ~= "table" or type(opts.handle) ~= "function" then
    errors.raise("webhook.receive: opts.handle must be a function")
  end
  if opts.secret ~= nil and not webhook.secret_matches(opts.given, opts.secret) then
    return 403, errors.new("auth", { message = "the webhook URL's secret does not match" })
  end
  local records, err = webhook.parse(body, opts)
  if not records then return err.kind == "too_large" and 413 or 400, err end
  if opts.dedupe and not opts.dedupe:first(body) then return 200, records end
  local ok, result = pcall(opts.handle, records)
  if ok and result == "gone" then return 410, records end
  if ok and result ~= false then return 200, records end
  if opts.dedupe then opts.dedupe:forget(body) end
  return 500, ok and errors.new("server", { message = "the webhook handler returned false" })
    or errors.new("server", { message = "the webhook handler raised: " .. tostring(result) })
end

return webhook
