--- The sandbox's answers: JSON bodies and the envelopes of docs/envoke-api.md §2.
-- Every answer is `status, headers, body` with lower-case header names.
-- @module envoke.sandbox.response

local json = require "envoke.sandbox.json"

local response = {}

--- `result_text` of a 400 for invalid input (docs/envoke-api.md §2).
response.VALIDATION_FAILED = "Validation failed, see 'result_data' -> 'errors'"

local ENVELOPE_ORDER = { "success", "result_text", "result_data" }

--- Any JSON value as an answer.
function response.json(status, value, headers)
  local h = { ["content-type"] = "application/json" }
  for k, v in pairs(headers or {}) do h[k] = v end
  return status, h, json.encode(value)
end

--- A success envelope: `{"success": true, "result_text": text, "result_data": data}`.
function response.ok(text, data)
  return response.json(200, json.object({ success = true, result_text = text, result_data = data }, ENVELOPE_ORDER))
end

--- A failure envelope listing every problem:
-- `{"success": false, "result_text": text, "result_data": {"errors": [...]}}`.
function response.fail(status, text, errors, headers)
  local data = json.object({ errors = json.array(errors or {}) })
  return response.json(status, json.object({ success = false, result_text = text, result_data = data }, ENVELOPE_ORDER),
    headers)
end

--- The 400 for invalid input.
function response.invalid(errors)
  return response.fail(400, response.VALIDATION_FAILED, errors)
end

--- The 401 of docs/envoke-api.md §2 (its `result_data` is an empty list).
function response.unauthorized()
  return response.json(401, json.object({ success = false, result_text = "Unauthorized", result_data = json.array() },
    ENVELOPE_ORDER), { ["www-authenticate"] = 'Basic realm="Envoke API"' })
end

local REASONS = {
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [405] = "Method Not Allowed", [408] = "Request Timeout", [409] = "Conflict", [413] = "Payload Too Large",
  [429] = "Too Many Requests", [500] = "Internal Server Error", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [504] = "Gateway Timeout",
}

--- The reason phrase of a status (used as `result_text` of non-validation errors).
function response.reason(status)
  return REASONS[status] or (status >= 500 and "Server Error" or status >= 400 and "Client Error" or "OK")
end

return response
