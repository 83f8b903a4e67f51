-- examples/openresty: webhook.conf and webhook.lua, run as written (only the
-- install path and the port are put in), receiving the sandbox's deliveries:
-- the CRM's consent follows Envoke's.
local cjson = require "cjson"
local nginx = require "sandbox.nginx"
local openresty_rig = require "openresty_rig"
local sandbox_server = require "sandbox_server"
local shell = require "sandbox.shell"
local socket = require "socket"
local webhook = require "envoke.webhook"

-- The files the example's paths name, where nginx's workers can read them.
local function install_site(checkout)
  local dir = shell.tmpdir("envoke-webhook-site")
  local q = shell.quote
  local out, code = shell.run(table.concat({
    "set -e; cd " .. q(checkout),
    "mkdir -p " .. q(dir .. "/examples"),
    "cp -R lua " .. q(dir .. "/lua"),
    "cp -R examples/openresty " .. q(dir .. "/examples/openresty"),
    "chmod -R a+rX " .. q(dir),
  }, "\n") .. " 2>&1")
  assert(code == 0, "could not copy the example's files: " .. out)
  return dir
end

local function post(port, path, body)
  local conn = socket.tcp()
  conn:settimeout(30)
  assert(conn:connect("127.0.0.1", port))
  assert(conn:send("POST " .. path .. " HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    .. "Content-Length: " .. #body .. "\r\n\r\n" .. body))
  local raw = conn:receive("*a")
  conn:close()
  return tonumber(raw:match("^HTTP/%d%.%d (%d%d%d)")), cjson.decode(raw:match("\r\n\r\n(.*)$"))
end

describe("examples/openresty webhook receiver", function()
  local srv, site, root, client
  local secret = webhook.new_secret()

  setup(function()
    srv = sandbox_server.start()
    local checkout = nginx.repo_root()
    root = install_site(checkout)
    local conf = assert(shell.read_file(checkout .. "/examples/openresty/webhook.conf"))
    site = openresty_rig.launch(conf, function(text, port)
      local edited = text:gsub("/opt/lua%-envoke", (root:gsub("%%", "%%%%")))
      local listened, listens = edited:gsub("listen 127%.0%.0%.1:8081;", "listen 127.0.0.1:" .. port .. ";")
      assert(listens == 1, "the example's listen line changed")
      return listened
    end, { ENVOKE_WEBHOOK_SECRET = secret })
  end)
  teardown(function()
    if site then site.stop() end
    if srv then srv:stop() end
    if root then shell.run("rm -rf " .. shell.quote(root)) end
  end)
  before_each(function()
    srv:reset()
    client = srv:client()
  end)

  local function crm(email)
    local status, body = openresty_rig.get(site.port, "/crm?email=" .. email)
    return status == 200 and cjson.decode(body) or nil
  end

  -- Waits until the CRM's record of `email` has `consent`.
  local function crm_reaches(email, consent)
    for _ = 1, 500 do
      local r = crm(email)
      if r and r.consent_status == consent then return r end
      socket.sleep(0.01)
    end
    error(("the CRM never saw %s as %s; deliveries: %s"):format(email, consent,
      cjson.encode(srv:control("GET", "deliveries"))))
  end

  local function hook_url(s)
    return ("http://127.0.0.1:%d/envoke/webhook?secret=%s"):format(site.port, s)
  end

  it("keeps the CRM's consent in step: new contact, then each consent change", function()
    assert(client.hooks:create{ type = "new_contact", url = hook_url(secret) })
    assert(client.hooks:create{ type = "consent_change", url = hook_url(secret) })
    local c = assert(client:contact{ email = "Jane@Example.com" }:insert())
    local r = crm_reaches("jane@example.com", "Not provided")
    assert.are.equal(c.id, r.contact_id)
    assert(client:contact{ id = c.id }:consent("Express", "newsletter form"):save())
    crm_reaches("jane@example.com", "Express")
    assert(client:contact{ id = c.id }:consent("Revoked", "unsubscribed"):save())
    r = crm_reaches("jane@example.com", "Revoked")
    assert.are.equal(3, r.updates)
    for _, d in ipairs(srv:control("GET", "deliveries")) do
      assert.are.equal(200, d.attempts[1].status)
    end
  end)

  it("refuses a delivery with the wrong secret; Envoke's retry of it fails too", function()
    assert(client.hooks:create{ type = "new_contact", url = hook_url("0123456789abcdef") })
    assert(client:contact{ email = "intruder@example.com" }:insert())
    local d
    for _ = 1, 500 do
      d = srv:control("GET", "deliveries")[1]
      if d and d.state == "retry" then break end
      socket.sleep(0.01)
    end
    assert.are.equal("retry", d and d.state)
    assert.are.equal(403, d.attempts[1].status)
    assert.is_nil(crm("intruder@example.com"))
    assert.falsy(site.error_log():find(secret, 1, true), "the secret reached the error log")
  end)

  it("handles a batch delivered twice once, and answers 400, 405 for what is not a delivery", function()
    local body = cjson.encode{ { id = 9, email = "twice@example.com", consent_status = "Express" } }
    local path = "/envoke/webhook?secret=" .. secret
    local status, answer = post(site.port, path, body)
    assert.are.equal(200, status)
    assert.are.equal(1, answer.records)
    status = post(site.port, path, body)
    assert.are.equal(200, status)
    assert.are.equal(1, crm("twice@example.com").updates)
    assert.are.equal(400, (post(site.port, path, '{"not":"an array"}')))
    assert.are.equal(405, (openresty_rig.get(site.port, path)))
  end)
end)
