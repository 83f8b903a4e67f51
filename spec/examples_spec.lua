-- Every script in examples/ runs against a sandbox over HTTP and says what the README promises.
local sandbox_server = require "sandbox_server"
local shell = require "sandbox.shell"

local lua_name = jit and "luajit" or _VERSION:match("%d%.%d")
local lua_bin = jit and "luajit" or ("lua" .. lua_name)

describe("examples", function()
  local srv
  setup(function() srv = sandbox_server.start() end)
  teardown(function() if srv then srv:stop() end end)
  before_each(function() srv:reset() end)

  local function run(script)
    local path, cpath = "./lua/?.lua;./lua/?/init.lua;;", "./build/" .. lua_name .. "/?.so;;"
    local suffix = jit and "5_1" or lua_name:gsub("%.", "_")
    local env = ("LUA_PATH=%s LUA_CPATH=%s LUA_PATH_%s=%s LUA_CPATH_%s=%s "
      .. "ENVOKE_BASE_URL=%s ENVOKE_API_ID=%s ENVOKE_API_KEY=%s")
      :format(shell.quote(path), shell.quote(cpath), suffix, shell.quote(path), suffix, shell.quote(cpath),
              shell.quote(srv.url), shell.quote(srv.api_id), shell.quote(srv.api_key))
    local out, code = shell.run("export " .. env .. "; " .. lua_bin .. " examples/" .. script)
    assert.are.equal(0, code, out)
    return out
  end

  it("quickstart: the whole chain in one save", function()
    local out = run("quickstart.lua")
    assert.truthy(out:find("saved contact 1: Toronto, ON; consent Express; interests Mandatory consent, Newsletter; "
      .. "nurtures Whitepaper Download; barcode A-1; title \"\"", 1, true), out)
  end)

  it("update by id", function()
    assert.truthy(run("update_by_id.lua"):find("now lives in Winnipeg, MB", 1, true))
  end)

  it("update by email", function()
    assert.truthy(run("update_by_email.lua"):find("(example@api.com): first name UPDATED", 1, true))
  end)

  it("update by remote_id", function()
    assert.truthy(run("update_by_remote_id.lua"):find("remote_id 436D-SF92-J4G5: John", 1, true))
  end)

  it("clearing fields", function()
    assert.truthy(run("clear_fields.lua"):find('first_name "Keep" kept, title "" cleared', 1, true))
  end)

  it("consent downgrade refused, then forced", function()
    local out = run("consent_downgrade.lua")
    assert.truthy(out:find("downgrade without force: still Express", 1, true), out)
    assert.truthy(out:find("downgrade forced: Implied %- Inquiry, expires %d%d%d%d%-%d%d%-%d%d"), out)
  end)

  it("listing with filters", function()
    local out = run("list_filters.lua")
    assert.are.equal("list1@example.com\tExpress\nlist3@example.com\tExpress\nlist5@example.com\tExpress\n", out)
  end)
end)
