--- The webhook receiver of examples/openresty/webhook.conf: keeps a CRM's
-- consent in step with Envoke.
--
-- POST /envoke/webhook?secret=… (Envoke's delivery, a JSON array of records)
--   200  handled (or a batch handled before: Envoke's retry after a lost answer)
--   400  the body is not a delivery;  403  the secret is wrong;  405  not a POST
--   500  the CRM update failed: Envoke tries once more, 10 minutes later
--   503  ENVOKE_WEBHOOK_SECRET is not set
-- GET /crm?email=…  the stand-in CRM's record: { email, consent_status, contact_id, updates }

-- luacheck: globals ngx
local webhook = require "envoke.webhook"
local cjson = require "cjson.safe"

local M = {}

local function reply(status, body)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Cache-Control"] = "no-store"
  ngx.print(cjson.encode(body))
  return ngx.exit(ngx.HTTP_OK)
end

local function read_body()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if body then return body end
  local file = ngx.req.get_body_file() -- a body nginx kept on disk
  if not file then return "" end
  local f = io.open(file, "rb")
  if not f then return "" end
  body = f:read("*a")
  f:close()
  return body
end

-- The CRM update. Replace this with a call to your CRM (a cosocket client:
-- it may yield). Raising makes the delivery answer 500, so Envoke retries.
local function crm_update(record)
  local crm = ngx.shared.crm
  local key = record.email:lower()
  local old = cjson.decode(crm:get(key) or "{}") or {}
  local ok, err = crm:set(key, cjson.encode{
    email = record.email, consent_status = record.consent_status, contact_id = record.id,
    updates = (old.updates or 0) + 1,
  })
  if not ok then error("CRM update failed: " .. tostring(err)) end
end

-- Every record that carries an email and a consent status updates the CRM
-- (consent_change and new_contact both do; other types are acknowledged).
local function handle(records)
  for _, r in ipairs(records) do
    if type(r.email) == "string" and r.email ~= "" and type(r.consent_status) == "string" then crm_update(r) end
  end
end

local deduper

function M.handle()
  if ngx.req.get_method() ~= "POST" then
    ngx.header["Allow"] = "POST"
    return reply(405, { ok = false, error = "Use POST." })
  end
  local secret = os.getenv("ENVOKE_WEBHOOK_SECRET")
  if not secret or secret == "" then
    ngx.log(ngx.ERR, "envoke webhook: ENVOKE_WEBHOOK_SECRET is not set (see the env directive)")
    return reply(503, { ok = false, error = "not configured" })
  end
  deduper = deduper or webhook.deduper{ dict = ngx.shared.envoke_webhook_seen, ttl = 3600 }
  local status, outcome = webhook.receive(read_body(), {
    secret = secret, given = ngx.var.arg_secret, dedupe = deduper, handle = handle,
  })
  if status ~= 200 then
    -- Never log the secret: the URL (with it) is left out on purpose.
    ngx.log(status == 500 and ngx.ERR or ngx.WARN, "envoke webhook: ", status, " ", tostring(outcome))
    return reply(status, { ok = false, error = status == 500 and "not handled" or tostring(outcome.message) })
  end
  return reply(200, { ok = true, records = #outcome })
end

function M.show()
  local email = ngx.var.arg_email
  local record = email and ngx.shared.crm:get(ngx.unescape_uri(email):lower())
  if not record then return reply(404, { ok = false }) end
  ngx.header["Content-Type"] = "application/json"
  ngx.print(record)
end

return M
