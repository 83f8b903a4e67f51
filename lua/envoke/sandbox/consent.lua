--- Consent rules (docs/envoke-api.md §5): expiry, what a contact currently reads as,
-- and whether a requested status change is allowed.
-- The statuses themselves are data in `envoke.schema`.
-- @module envoke.sandbox.consent

local schema = require "envoke.schema"

local statuses = schema.consent
local consent = {}

--- When a consent given at `effective` (epoch seconds) with `status` lapses.
-- @treturn integer|nil epoch seconds, or nil when it never expires
function consent.expires_at(status, effective)
  local months = statuses.expiry_months[status]
  if not months or not effective then return nil end
  return schema.time.add_months(effective, months)
end

--- The status a contact reads as at `now`: an expiring Implied status
-- whose expiry has passed reads as `Expired` (docs/envoke-api.md §5).
function consent.effective_status(status, expires, now)
  if expires and now >= expires and statuses.implied[status] then return "Expired" end
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
  if statuses.spam[current] then
    return false, "a spam status never changes"
  end
  if statuses.always_allowed[new] then return true end
  local was_sendable, is_sendable = statuses.sendable[current], statuses.sendable[new]
  if not was_sendable and is_sendable then return true end

  local downgrade = false
  if was_sendable then
    if not is_sendable then
      downgrade = true -- to "Not provided"
    elseif current == "Express" then
      downgrade = new ~= "Express"
    elseif statuses.implied[new] then
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
