-- hostile_server: a real nginx that answers the way a broken or malicious
-- Envoke could, for the specs that prove the client survives it.
--
--  * spec side:  hostile_server.start() -> srv (srv.url, srv:stop());
--    a client's base_url is srv.url .. "/" .. SCENARIO.
--  * nginx side: M.handle() answers by the scenario, the first path segment.
--
-- Scenarios (the rest of the path is the API path the client sent):
--   id/<n>          any list or read answers one contact whose id is ids[n];
--                   any other request is answered 500 "must not be sent"
--   list-scalars    a list answered [1,"x",true]
--   list-object     a list answered {"a":1}
--   success-<s>     a write answered with "success": yes|null|missing|1
--   empty-200, 204, false-200, null-200   ping/request/interests answers
--   echo-secret     a 400 whose texts echo the credential it received
--   echo-secret-ok  a 200 list whose contact echoes it (user data, kept)

local M = {}

-- luacheck: globals ngx

-- Ids a hostile answer may carry, as raw JSON.
M.ids = { '"1/../../v1/settings"', '"5?upsert=1&x="', "1.5", "NaN", "0", "-3", '"12abc"', "4294967296",
          "true", '"1 "' }

local CONTACT = '"email":"a@example.com","first_name":"A"'

local function answer(status, body, ctype)
  ngx.status = status
  if body then
    ngx.header["Content-Type"] = ctype or "application/json"
    ngx.print(body)
  end
  return ngx.exit(status)
end

local function credential()
  local auth = ngx.req.get_headers()["authorization"] or ""
  local b64 = auth:match("^Basic%s+(.+)$") or ""
  local plain = ngx.decode_base64(b64) or ""
  return auth, b64, plain:match(":(.*)$") or ""
end

local scenarios = {}

function scenarios.id(rest, n)
  local id = M.ids[n]
  local method = ngx.req.get_method()
  if method == "GET" and rest:find("^/v1/contacts%?") then
    return answer(200, "[{" .. CONTACT .. ',"id":' .. id .. "}]")
  end
  if method == "GET" and rest:find("^/v1/contacts/") then
    return answer(200, "{" .. CONTACT .. ',"id":' .. id .. "}")
  end
  if method == "POST" and rest:find("^/v1/contacts") then
    return answer(200, '{"success":true,"result_text":"ok","result_data":{' .. CONTACT .. ',"id":' .. id .. "}}")
  end
  return answer(500, '{"success":false,"result_text":"must not be sent: ' .. method .. " " .. rest .. '"}')
end

local SUCCESS = { yes = '"yes"', null = "null", ["1"] = "1" }

local function success(rest, kind)
  local value = SUCCESS[kind]
  local member = value and ('"success":' .. value .. ",") or ""
  if rest:find("^/v1/contacts") and ngx.req.get_method() ~= "GET" then
    return answer(200, "{" .. member .. '"result_text":"ok","result_data":{' .. CONTACT .. ',"id":7}}')
  end
  return answer(200, "[]")
end

local FIXED = {
  ["list-scalars"] = { 200, '[1,"x",true]' },
  ["list-object"] = { 200, '{"a":1}' },
  ["empty-200"] = { 200, "" },
  ["204"] = { 204 },
  ["false-200"] = { 200, "false" },
  ["null-200"] = { 200, "null" },
}

function M.handle()
  local scenario, rest = ngx.var.request_uri:match("^/([^/]+)(/.*)$")
  local n = scenario and tonumber(scenario:match("^id%-(%d+)$"))
  if n then return scenarios.id(rest, n) end
  local kind = scenario and scenario:match("^success%-(.+)$")
  if kind then return success(rest, kind) end
  local fixed = FIXED[scenario]
  if fixed then return answer(fixed[1], fixed[2]) end
  if scenario == "echo-secret" or scenario == "echo-secret-ok" then
    local auth, b64, key = credential()
    local cjson = require "cjson"
    if scenario == "echo-secret-ok" then
      return answer(200, cjson.encode{ { id = 9, email = "a@example.com", first_name = key:sub(1, 20) } })
    end
    return answer(400, cjson.encode{ success = false,
      result_text = "refused " .. auth .. " (key " .. key .. ")",
      result_data = { errors = { "key " .. key .. " is not valid", "credential " .. b64 } } })
  end
  return answer(404, '{"success":false,"result_text":"no such scenario"}')
end

---------------------------------------------------------------- spec side

function M.start()
  local nginx = require "sandbox.nginx"
  local dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
  if dir:sub(1, 1) ~= "/" then
    local pipe = assert(io.popen("pwd"))
    dir = pipe:read("*l") .. "/" .. dir:gsub("^%./", "")
    pipe:close()
  end
  return nginx.start{
    workers = 1,
    lua_path = dir .. "/?.lua",
    server = "location / { content_by_lua_block { require('hostile_server').handle() } }",
  }
end

return M
