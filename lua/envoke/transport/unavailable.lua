--- A transport for hosts where no other transport may run: every request
-- fails at once with `kind = "unavailable"` and the reason, and nothing is
-- sent. Inside an HAProxy whose Lua lacks what the `core.tcp` transport
-- builds on (tasks, sleeps), a libcurl call would stall HAProxy's event loop
-- for the whole request, so this is the default there.
-- @module envoke.transport.unavailable
local Transport = {}
Transport.__index = Transport

--- A transport that refuses everything with `reason`.
-- @tparam string reason what the error message says
-- @local
function Transport.new(reason)
  return setmetatable({ reason = reason, done = {}, next_id = 0 }, Transport)
end

local function failure(self)
  return { kind = "unavailable", message = self.reason, sent = false, retryable = false }
end

--- Same contract as `envoke.core` pool:request: here always nil, err.
-- @local
function Transport:request()
  return nil, failure(self)
end

--- Queues the failure for `finished`.
-- @local
function Transport:submit()
  self.next_id = self.next_id + 1
  self.done[#self.done + 1] = self.next_id
  return self.next_id
end

function Transport.perform() return 0 end

function Transport:finished()
  local id = table.remove(self.done, 1)
  if id then return id, nil, failure(self) end
  return nil
end

function Transport:cancel(id)
  for i, queued in ipairs(self.done) do
    if queued == id then
      table.remove(self.done, i)
      return true, false
    end
  end
  return false
end

function Transport:pending() return #self.done end

function Transport.close() end

return Transport
