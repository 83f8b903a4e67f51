--- Consent rules (docs/envoke-api.md §5): expiry, what a contact currently reads as,
-- and whether a requested status change is allowed. The statuses, their
-- spellings and which ones are sendable are in `envoke.schema`, shared with
-- the client; the rules here only the server applies.
-- @module envoke.sandbox.consent

local schema = require "envoke.schema"

local statuses = schema.consent
local consent = {}

local function set_of(list)
  local set = {}
  for _, v in ipairs(list) do set[v] = true end
  return set
end

--- The Implied statuses, which rank among themselves by expiry.
consent.implied = set_of { "Implied - Inquiry", "Implied - Transaction", "Implied: No Expiry" }
--- Statuses that can never change once reached.
consent.spam = set_of { "External Spam Reported", "Envoke Spam Reported" }
--- Statuses any contact may move to without `consent_force_downgrade`.
consent.always_allowed = set_of { "Revoked", "External Spam Reported" }
--- Months until an expiring Implied consent lapses.
consent.expiry_months = { ["Implied - Inquiry"] = 6, ["Implied - Transaction"] = 24 }
--- What a new contact without a status gets.
consent.default = "Not provided"

local floor = math.floor

local days_in_month = schema.days_in_month

--- The same time of day `n` calendar months later, clamped to the month's
-- last day (Aug 31 + 6 months = Feb 28/29).
-- @tparam integer t epoch seconds
-- @tparam integer n months
-- @treturn integer epoch seconds
function consent.add_months(t, n)
  local y, m, d, hh, mm, ss = schema.time.civil(t)
  local months = y * 12 + (m - 1) + n
  y = floor(months / 12)
  m = months - y * 12 + 1
  local last = days_in_month(y, m)
  if d > last then d = last end
  return schema.time.epoch(y, m, d, hh, mm, ss)
end

--- When a consent given at `effective` (epoch seconds) with `status` lapses.
-- @treturn integer|nil epoch seconds, or nil when it never expires
function consent.expires_at(status, effective)
  local months = consent.expiry_months[status]
  if not months or not effective then return nil end
  return consent.add_months(effective, months)
end

--- The status a contact reads as at `now`: an expiring Implied status
-- whose expiry has passed reads as `Expired` (docs/envoke-api.md §5).
function consent.effective_status(status, expires, now)
  if expires and now >= expires and consent.implied[status] then return "Expired" end
  return status
end

local INFINITY = math.huge

--- Decides whether the consent may move from the current record to a new one.
-- @tparam string current the status the contact reads as now (after expiry)
-- @tparam number|nil current_expires epoch of the current record's expiry
-- @tparam string new the requested status (Envoke's spelling)
-- @tparam number|nil new_expires epoch of the requested record's expiry
-- @tparam boolean force `consent_force_downgrade`
-- @treturn boolean allowed
-- @treturn string why not (for the sandbox's own log)
function consent.change_allowed(current, current_expires, new, new_expires, force)
  if consent.spam[current] then
    return false, "a spam status never changes"
  end
  if consent.always_allowed[new] then return true end
  local was_sendable, is_sendable = statuses.sendable[current], statuses.sendable[new]
  if not was_sendable and is_sendable then return true end

  local downgrade = false
  if was_sendable then
    if not is_sendable then
      downgrade = true -- to "Not provided"
    elseif current == "Express" then
      downgrade = new ~= "Express"
    elseif consent.implied[new] then
      -- Among Implied statuses the one that lasts longer is better;
      -- "Implied: No Expiry" never expires.
      downgrade = (new_expires or INFINITY) < (current_expires or INFINITY)
    end
  elseif current == "Revoked" then
    -- Not in Envoke's list, but "Not provided" would forget a revocation.
    downgrade = true
  end
  if downgrade and not force then
    return false, "downgrade from '" .. current .. "' to '" .. new .. "' needs consent_force_downgrade"
  end
  return true
end

return consent
