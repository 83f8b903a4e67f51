-- examples/openresty's sign-up form in a real browser: Debian's chromium,
-- headless, driven through the DevTools protocol (spec/support/cdp.lua) as a
-- person would use it: open the page, type, tick the box, press the button,
-- read the answer. The sandbox then holds the contact with Express consent
-- and the Newsletter subscription.
local cjson = require "cjson"
local cdp = require "cdp"
local nginx = require "sandbox.nginx"
local openresty_rig = require "openresty_rig"
local sandbox_server = require "sandbox_server"
local shell = require "sandbox.shell"

-- The files the example's paths name, where nginx's workers can read them.
local function install_site(checkout)
  local dir = shell.tmpdir("envoke-browser-site")
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

describe("examples/openresty sign-up form in a browser (chromium headless)", function()
  if not cdp.available() then
    pending("chromium is not installed (make deps installs it)")
    return
  end

  local srv, site, root, browser
  setup(function()
    openresty_rig.build()
    srv = sandbox_server.start()
    local checkout = nginx.repo_root()
    root = install_site(checkout)
    local conf = assert(shell.read_file(checkout .. "/examples/openresty/nginx.conf"))
    site = openresty_rig.launch(conf, function(text, port)
      local edited = text:gsub("/opt/lua%-envoke", (root:gsub("%%", "%%%%")))
      local listened, listens = edited:gsub("listen 127%.0%.0%.1:8080;", "listen 127.0.0.1:" .. port .. ";")
      assert(listens == 1, "the example's listen line changed")
      return listened
    end, { ENVOKE_BASE_URL = srv.url, ENVOKE_API_ID = srv.api_id, ENVOKE_API_KEY = srv.api_key })
    browser = cdp.start()
  end)
  teardown(function()
    if browser then browser:stop() end
    if site then site.stop() end
    if srv then srv:stop() end
    if root then shell.run("rm -rf " .. shell.quote(root)) end
  end)
  before_each(function() srv:reset() end)

  local function api_requests()
    local n = 0
    for _, r in ipairs(srv:log()) do
      if not r.path:find("^/_sandbox") then n = n + 1 end
    end
    return n
  end

  it("signs a person up: the page, the typing, the box, the button, the answer", function()
    browser:navigate(site.url .. "/")
    assert.are.equal("Newsletter", browser:eval("document.title"))
    browser:type('input[name="email"]', "ada@example.com")
    browser:type('input[name="first_name"]', "Ada")
    browser:click('input[name="consent"]')
    assert.is_true(browser:eval('document.querySelector(\'input[name="consent"]\').checked'))
    browser:click("button")
    browser:wait_for("location.pathname == '/signup' && document.readyState == 'complete'")
    local answer = cjson.decode(browser:eval("document.body.innerText"))
    assert.is_true(answer.ok)
    local stored = srv:contacts()
    assert.are.equal(1, #stored)
    local c = stored[1]
    assert.are.equal(answer.id, tonumber(c.id))
    assert.are.equal("ada@example.com", c.email)
    assert.are.equal("Ada", c.first_name)
    assert.are.equal("Express", c.consent_status)
    assert.are.same({ "Newsletter" }, c.interests)
  end)

  it("asks for the box when it is not ticked, and sends nothing to Envoke", function()
    browser:navigate(site.url .. "/")
    browser:type('input[name="email"]', "bob@example.com")
    browser:click("button")
    browser:wait_for("location.pathname == '/signup' && document.readyState == 'complete'")
    local answer = cjson.decode(browser:eval("document.body.innerText"))
    assert.is_false(answer.ok)
    assert.are.equal("consent", answer.field)
    assert.are.equal(0, api_requests())
  end)

  it("lets the browser refuse a malformed address before anything is posted", function()
    browser:navigate(site.url .. "/")
    browser:type('input[name="email"]', "not-an-address")
    browser:click('input[name="consent"]')
    browser:click("button")
    assert.is_false(browser:eval('document.querySelector(\'input[name="email"]\').checkValidity()'))
    assert.are.equal("/", browser:eval("location.pathname"))
    assert.are.equal(0, api_requests())
  end)
end)
