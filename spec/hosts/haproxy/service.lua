-- An HAProxy (Lua 5.3) service that makes an envoke client and pings the API,
-- answering what the call returned: "ok", or the error's kind, sent,
-- retryable and message, one "name=value" a line (status 503).
-- Loaded by spec/hosts/haproxy_spec.lua with lua-load; the client's settings
-- come from the environment (ENVOKE_BASE_URL, ENVOKE_API_ID, ENVOKE_API_KEY).
-- luacheck: globals core
local envoke = require "envoke"

core.register_service("envoke_ping", "http", function(applet)
  local client = envoke.new()
  local ok, err = client:ping()
  client:close()
  local body, status = "ok\n", 200
  if not ok then
    status = 503
    body = ("kind=%s\nsent=%s\nretryable=%s\nmessage=%s\n"):format(
      tostring(err.kind), tostring(err.sent), tostring(err.retryable), tostring(err.message))
  end
  applet:set_status(status)
  applet:add_header("content-type", "text/plain")
  applet:add_header("content-length", tostring(#body))
  applet:start_response()
  applet:send(body)
end)
