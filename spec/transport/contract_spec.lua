-- The transport contract (issue 12): one misuse table
-- (spec/support/transport_misuse.lua) against every transport's `request`
-- and `submit`: the curl pool (envoke.core, C), the in-process
-- transport, the cosocket transport inside nginx and the HAProxy transport
-- inside HAProxy. For the same misuse each raises the same reason ("bad
-- argument #1 to 'request' (unsupported HTTP method 'BREW')"), at the
-- caller's line, before anything reaches the server.
local misuse = require "transport_misuse"
local sandbox_server = require "sandbox_server"
local core = require "envoke.core"

-- The reason a row must raise with, normalized (no position, no module).
local function expected(out)
  for _, row in ipairs(misuse.rows) do
    if row[1] == out.row then
      return ("bad argument %s to '%s' (%s)"):format(row[6], out.fn, row[7]), false
    end
  end
  for _, row in ipairs(misuse.other_rows) do
    if row[1] == out.row then return row[6], true end
  end
  return "^attempt to use a closed %a+$", true
end

-- Every outcome that differs from the table: a list of readable lines.
-- Every message starts with the caller's line (in transport_misuse.lua).
local function mismatches(outcomes)
  local bad = {}
  for _, out in ipairs(outcomes) do
    local want, is_pattern = expected(out)
    if want then
      local got = out.message and misuse.normalize(out.message)
      local same = got and (is_pattern and got:find(want) or got == want)
      local where = out.message and out.message:match("^([^\n:]+):%d+: ")
      if not out.raised then
        bad[#bad + 1] = ("%s / %s: did not raise"):format(out.fn, out.row)
      elseif not same then
        bad[#bad + 1] = ("%s / %s: %s (want %s)"):format(out.fn, out.row, tostring(out.message), want)
      elseif not (where and where:find("transport_misuse%.lua$")) then
        bad[#bad + 1] = ("%s / %s: not at the caller's line: %s"):format(out.fn, out.row, out.message)
      end
    end
  end
  return bad
end

local function accepted_problems(outcomes)
  local bad = {}
  for _, out in ipairs(outcomes) do
    if out.raised or type(out.status) ~= "number" then
      bad[#bad + 1] = ("%s: %s %s"):format(out.row, tostring(out.status), tostring(out.message or out.err))
    end
  end
  return bad
end

local function url_problems(outcomes)
  local bad = {}
  for i, out in ipairs(outcomes) do
    local got = out.message and misuse.normalize(out.message)
    if not (out.raised and got:find(misuse.bad_urls[i][2])) then
      bad[#bad + 1] = ("%s: %s"):format(out.row, tostring(out.message))
    end
  end
  return bad
end

-- The API requests (not controls) a sandbox log holds.
local function api_paths(entries)
  local paths = {}
  for _, e in ipairs(entries) do
    if not e.path:find("^/_sandbox") then paths[#paths + 1] = e.method .. " " .. e.path end
  end
  return paths
end

local ACCEPTED = {}
for _, row in ipairs(misuse.accepted_rows) do ACCEPTED[#ACCEPTED + 1] = row[2] .. " " .. row[3]:gsub("%?.*", "") end

describe("the transport contract", function()
  local srv
  setup(function() srv = sandbox_server.start() end)
  teardown(function() if srv then srv:stop() end end)
  before_each(function() srv:reset() end)

  local function settings()
    return { base_url = srv.url, api_id = srv.api_id, api_key = srv.api_key }
  end

  describe("the curl pool (envoke.core)", function()
    local function pool()
      return require("envoke.transport.curl").new(settings())
    end

    it("raises on every misuse of request and submit as the table says, and sends nothing", function()
      local p, closed = pool(), pool()
      closed:close()
      assert.are.same({}, mismatches(misuse.run(p, closed)))
      assert.are.equal(0, p:pending())
      assert.are.same({}, api_paths(srv:log()))
      p:close()
    end)

    it("accepts and sends what the table accepts", function()
      local p = pool()
      assert.are.same({}, accepted_problems(misuse.accepted(p)))
      assert.are.same(ACCEPTED, api_paths(srv:log()))
      p:close()
    end)

    it("refuses the same base URLs", function()
      assert.are.same({}, url_problems(misuse.construct(require("envoke.transport.curl").new, settings())))
    end)
  end)

  describe("the in-process transport", function()
    local InProcess = require "envoke.transport.in_process"

    local function log_of(t)
      local _, body = t:request("GET", "/_sandbox/log")
      return require("cjson").decode(body).result_data
    end

    it("raises on every misuse of request and submit as the table says, and answers nothing", function()
      local t, closed = InProcess.new(settings()), InProcess.new(settings())
      closed:close()
      assert.are.same({}, mismatches(misuse.run(t, closed)))
      assert.are.equal(0, t:pending())
      assert.are.same({}, api_paths(log_of(t)))
    end)

    it("accepts and answers what the table accepts", function()
      local t = InProcess.new(settings())
      assert.are.same({}, accepted_problems(misuse.accepted(t)))
      assert.are.same(ACCEPTED, api_paths(log_of(t)))
    end)

    it("refuses the same base URLs", function()
      assert.are.same({}, url_problems(misuse.construct(InProcess.new, settings())))
    end)

    it("so a user's test through it raises where production raises (was: no check at all)", function()
      local client = require("envoke").new{ transport = "in_process" }
      for _, case in ipairs{ { "BREW", "/v1/settings" }, { "GET", "/v1/a b" }, { "GET", "/v1/settings", "x" } } do
        assert.has_error(function() client.transport:request(case[1], case[2], case[3]) end)
      end
      client:close()
    end)
  end)

  describe("the cosocket transport inside nginx", function()
    local openresty_rig = require "openresty_rig"
    local rig
    setup(function() rig = openresty_rig.start() end)
    teardown(function() if rig then rig:stop() end end)

    local SETUP = [[
      local misuse = require "transport_misuse"
      local function make()
        return require("envoke.transport.ngx").new{ base_url = cfg.sandbox.url, api_id = cfg.sandbox.api_id,
          api_key = cfg.sandbox.api_key }
      end
    ]]

    it("raises on every misuse of request and submit as the table says, and sends nothing", function()
      rig.sandbox:reset()
      local outcomes = rig:run(SETUP .. [[
        local t, closed = make(), make()
        closed:close()
        local out = misuse.run(t, closed)
        assert.are.equal(0, t:pending())
        return out
      ]])
      assert.are.same({}, mismatches(outcomes))
      assert.are.same({}, api_paths(rig.sandbox:log()))
    end)

    it("accepts and sends what the table accepts (Connection: close included: bulk inserts send it)", function()
      rig.sandbox:reset()
      assert.are.same({}, accepted_problems(rig:run(SETUP .. "return misuse.accepted(make())")))
      assert.are.same(ACCEPTED, api_paths(rig.sandbox:log()))
    end)

    it("refuses the same base URLs", function()
      assert.are.same({}, url_problems(rig:run(SETUP .. [[
        return misuse.construct(require("envoke.transport.ngx").new, { api_id = "i", api_key = "k" })
      ]])))
    end)
  end)

  describe("the HAProxy transport inside HAProxy", function()
    local haproxy_rig = require "haproxy_rig"
    if _VERSION ~= "Lua 5.3" or rawget(_G, "jit") or not haproxy_rig.available() then
      pending("runs under lua5.3 only, with haproxy installed (make deps): HAProxy embeds Lua 5.3")
      return
    end
    local rig
    setup(function() rig = haproxy_rig.start() end)
    teardown(function() if rig then rig:stop() end end)

    local SETUP = [[
      local function make()
        return require("envoke.transport.haproxy").new{ base_url = cfg.sandbox.url, api_id = cfg.sandbox.api_id,
          api_key = cfg.sandbox.api_key }
      end
    ]]

    it("raises on every misuse of request and submit as the table says, and sends nothing", function()
      rig.sandbox:reset()
      local outcomes = rig:run(SETUP .. [[
        local t, closed = make(), make()
        closed:close()
        local out = misuse.run(t, closed)
        assert.are.equal(0, t:pending())
        return out
      ]])
      assert.are.same({}, mismatches(outcomes))
      assert.are.same({}, api_paths(rig.sandbox:log()))
    end)

    it("accepts and sends what the table accepts", function()
      rig.sandbox:reset()
      assert.are.same({}, accepted_problems(rig:run(SETUP .. "return misuse.accepted(make())")))
      assert.are.same(ACCEPTED, api_paths(rig.sandbox:log()))
    end)

    it("refuses the same base URLs", function()
      assert.are.same({}, url_problems(rig:run(SETUP .. [[
        return misuse.construct(require("envoke.transport.haproxy").new, { api_id = "i", api_key = "k" })
      ]])))
    end)
  end)

  it("has the C pool's defaults (src/pool.c): 10 s, 5 s, 16 MiB, and its user agent's form", function()
    local contract = require "envoke.transport.contract"
    local f = assert(io.open("src/pool.c"))
    local c = f:read("*a")
    f:close()
    assert.are.equal("10000", c:match("#define DEFAULT_TIMEOUT_MS (%d+)"))
    assert.are.equal("5000", c:match("#define DEFAULT_CONNECT_TIMEOUT_MS (%d+)"))
    assert.are.equal("(16 * 1024 * 1024)", c:match("#define DEFAULT_MAX_BODY (%b())"))
    assert.are.same({ 10, 5, 16 * 1024 * 1024 }, { contract.TIMEOUT, contract.CONNECT_TIMEOUT, contract.MAX_BODY })
    assert.are.equal("lua-envoke/" .. core._VERSION, core.user_agent)
  end)
end)

describe("contract.base64_encode (the transports' and the redactor's Basic credential)", function()
  it("encodes RFC 4648's test vectors and every byte", function()
    local encode = require("envoke.transport.contract").base64_encode
    local vectors = { [""] = "", f = "Zg==", fo = "Zm8=", foo = "Zm9v", foob = "Zm9vYg==", fooba = "Zm9vYmE=",
                      foobar = "Zm9vYmFy", ["\0\255\254"] = "AP/+" }
    for plain, encoded in pairs(vectors) do assert.are.equal(encoded, encode(plain), plain) end
    local all = {}
    for b = 0, 255 do all[#all + 1] = string.char(b) end
    all = table.concat(all)
    assert.are.equal(require("envoke.sandbox.auth").base64_decode(encode(all)), all)
  end)
end)
