-- examples/openresty: nginx.conf and signup.lua, run as written (only the
-- install path and the port are put in), against the sandbox, as a
-- site's sign-up form would post to it.
local cjson = require "cjson"
local nginx = require "sandbox.nginx"
local openresty_rig = require "openresty_rig"
local sandbox_server = require "sandbox_server"
local shell = require "sandbox.shell"

-- What the example's paths name, copied where nginx's workers can read it,
-- as a deployment under /opt/lua-envoke would be: nginx started as root runs
-- its workers as nobody, and the checkout may sit in a private (0700) home.
local function install_site(checkout)
  local dir = shell.tmpdir("envoke-signup-site")
  local q = shell.quote
  local out, code = shell.run(table.concat({
    "set -e; cd " .. q(checkout),
    "mkdir -p " .. q(dir .. "/examples") .. " " .. q(dir .. "/build"),
    "cp -R lua " .. q(dir .. "/lua"),
    "cp -R examples/openresty " .. q(dir .. "/examples/openresty"),
    "cp -R build/luajit " .. q(dir .. "/build/luajit"),
    "chmod -R a+rX " .. q(dir),
  }, "\n") .. " 2>&1")
  assert(code == 0, "could not copy the example's files: " .. out)
  return dir
end

describe("examples/openresty sign-up form", function()
  local srv, site, root
  setup(function()
    openresty_rig.build()
    srv = sandbox_server.start()
    local checkout = nginx.repo_root()
    root = install_site(checkout)
    local f = assert(io.open(checkout .. "/examples/openresty/nginx.conf", "rb"))
    local conf = f:read("*a")
    f:close()
    site = openresty_rig.launch(conf, function(text, port)
      local edited = text:gsub("/opt/lua%-envoke", (root:gsub("%%", "%%%%")))
      local listened, listens = edited:gsub("listen 127%.0%.0%.1:8080;", "listen 127.0.0.1:" .. port .. ";")
      assert(listens == 1, "the example's listen line changed")
      assert(listened:find('lua_package_path "' .. root .. '/examples/openresty/?.lua;', 1, true)
        and listened:find('lua_package_cpath "' .. root .. '/build/luajit/?.so;;"', 1, true),
        "the example's Lua paths changed")
      return listened
    end, { ENVOKE_BASE_URL = srv.url, ENVOKE_API_ID = srv.api_id, ENVOKE_API_KEY = srv.api_key })
  end)
  teardown(function()
    if site then site.stop() end
    if srv then srv:stop() end
    if root then shell.run("rm -rf " .. shell.quote(root)) end
  end)
  before_each(function() srv:reset() end)

  local function post(fields)
    local status, body = openresty_rig.post_form(site.port, "/signup", fields)
    return status, cjson.decode(body)
  end

  local function api_requests()
    local n = 0
    for _, r in ipairs(srv:log()) do
      if not r.path:find("^/_sandbox") then n = n + 1 end
    end
    return n
  end

  it("serves the form", function()
    local status, body = openresty_rig.get(site.port, "/")
    assert.are.equal(200, status)
    assert.truthy(body:find('action="/signup"', 1, true))
    assert.truthy(body:find('name="consent"', 1, true))
  end)

  it("upserts the contact with Express consent and a Newsletter subscription", function()
    local status, answer = post{ { "email", "jane@example.com" }, { "first_name", "Jane" }, { "consent", "yes" } }
    assert.are.equal(200, status, cjson.encode(answer))
    assert.is_true(answer.ok)
    local stored = srv:contacts()
    assert.are.equal(1, #stored)
    local c = stored[1]
    assert.are.equal(answer.id, tonumber(c.id))
    assert.are.equal("jane@example.com", c.email)
    assert.are.equal("Jane", c.first_name)
    assert.are.equal("Express", c.consent_status)
    assert.are.equal("Signed up for the newsletter on the website form", c.consent_description)
    assert.are.same({ "Newsletter" }, c.interests)
    local r = srv:log()
    local last = r[#r]
    assert.are.equal("POST", last.method)
    assert.are.equal("/v1/contacts", last.path)
    assert.truthy(last.query:find("upsert=1", 1, true))
  end)

  it("signs an existing contact up again without a duplicate, keeping what it had", function()
    srv:load{ { id = 42, email = "old@example.com", first_name = "Old", city = "Toronto", interests = { "Specials" } } }
    local status, answer = post{ { "email", " Old@Example.com " }, { "first_name", "Olive" }, { "consent", "on" } }
    assert.are.equal(200, status, cjson.encode(answer))
    assert.are.equal(42, answer.id)
    local c = srv:contacts()[1]
    assert.are.equal(1, #srv:contacts())
    assert.are.equal("Olive", c.first_name)
    assert.are.equal("Toronto", c.city)
    assert.are.equal("Express", c.consent_status)
    table.sort(c.interests)
    assert.are.same({ "Newsletter", "Specials" }, c.interests)
  end)

  it("asks for the box and the address before sending anything", function()
    local status, answer = post{ { "email", "jane@example.com" }, { "first_name", "Jane" } }
    assert.are.equal(422, status)
    assert.are.equal("consent", answer.field)
    status, answer = post{ { "email", "  " }, { "consent", "yes" } }
    assert.are.equal(422, status)
    assert.are.equal("email", answer.field)
    status, answer = post{ { "email", "not-an-address" }, { "consent", "yes" } }
    assert.are.equal(422, status)
    assert.are.equal("email", answer.field)
    assert.are.equal(0, api_requests())
    status = openresty_rig.get(site.port, "/signup")
    assert.are.equal(405, status)
  end)

  it("answers 502 when Envoke fails, and logs why", function()
    srv:fault{ kind = "status", status = 500, method = "POST", path = "/v1/contacts", count = 1 }
    local status, answer = post{ { "email", "jane@example.com" }, { "consent", "yes" } }
    assert.are.equal(502, status)
    assert.is_false(answer.ok)
    assert.truthy(site.error_log():find("envoke sign-up failed: envoke: server (HTTP 500)", 1, true))
    status = post{ { "email", "jane@example.com" }, { "consent", "yes" } }
    assert.are.equal(200, status) -- the next one goes through
  end)
end)
