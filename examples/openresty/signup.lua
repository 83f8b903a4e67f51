--- The sign-up form's handler (examples/openresty/nginx.conf):
-- POST /signup with `email`, `first_name` and the `consent` checkbox
-- upserts the contact by email with Express consent and a Newsletter
-- subscription, and answers JSON:
--   200 { ok = true, id = ... }                 subscribed (new or existing contact)
--   422 { ok = false, field = ..., error = ... } something to fix in the form
--   502 { ok = false, error = ... }             Envoke could not be reached or refused it
-- The call yields while Envoke answers: the worker serves other requests meanwhile.

-- luacheck: globals ngx
local envoke = require "envoke"
local cjson = require "cjson.safe"

local M = {}

-- One client per worker: its connections stay in the worker's keep-alive
-- pool from one sign-up to the next. Credentials come from ENVOKE_API_ID and
-- ENVOKE_API_KEY (see the env directives in nginx.conf).
local client

local function get_client()
  if not client then
    client = envoke.new{ timeout = 5, retries = 2 }
  end
  return client
end

local function reply(status, body)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Cache-Control"] = "no-store"
  ngx.print(cjson.encode(body))
  return ngx.exit(ngx.HTTP_OK)
end

local function field(args, name)
  local v = args[name]
  if type(v) == "table" then v = v[1] end -- a field sent twice: the first one
  if type(v) ~= "string" then return nil end
  v = v:match("^%s*(.-)%s*$")
  return v ~= "" and v or nil
end

function M.handle()
  if ngx.req.get_method() ~= "POST" then
    ngx.header["Allow"] = "POST"
    return reply(405, { ok = false, error = "Use POST." })
  end
  ngx.req.read_body()
  local args, err = ngx.req.get_post_args(20)
  if not args then return reply(400, { ok = false, error = "Could not read the form: " .. tostring(err) }) end

  local email, first_name = field(args, "email"), field(args, "first_name")
  if not email then
    return reply(422, { ok = false, field = "email", error = "Please enter your email address." })
  end
  -- An unticked checkbox is simply absent: no consent, no subscription.
  if not field(args, "consent") then
    return reply(422, { ok = false, field = "consent", error = "Please tick the box to receive the newsletter." })
  end

  -- The setters validate at once (and raise): a bad address never reaches Envoke.
  local ok, contact = pcall(function()
    return get_client():contact{ email = email, first_name = first_name }
      :consent("Express", "Signed up for the newsletter on the website form")
      :interest("Newsletter", "Set")
  end)
  if not ok then
    local what = tostring(contact):find("first_name", 1, true) and "first_name" or "email"
    return reply(422, { ok = false, field = what,
                        error = what == "email" and "Please check your email address." or "Please check your name." })
  end

  local saved, failure = contact:upsert()
  if not saved then
    ngx.log(ngx.ERR, "envoke sign-up failed: ", tostring(failure))
    if failure.kind == "validation" then
      return reply(422, { ok = false, field = "email", error = "Please check your email address." })
    end
    return reply(502, { ok = false, error = "Sorry, we could not sign you up just now. Please try again later." })
  end
  return reply(200, { ok = true, id = saved.id })
end

return M
