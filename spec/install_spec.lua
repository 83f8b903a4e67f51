-- Installing: `make install` and `luarocks make` give trees from which the
-- library loads under the interpreter running this spec; the rockspec stays
-- in step with the sources.
local shell = require "sandbox.shell"

local lua_name = jit and "luajit" or _VERSION:match("%d%.%d")
local lua_bin = jit and "luajit" or ("lua" .. lua_name)
local abi = jit and "5.1" or lua_name

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- Loads envoke from a tree only (no repo paths) and prints both versions.
local function load_from_tree(tree)
  local probe = ("package.path=%q package.cpath=%q "
    .. "local e=require('envoke') local c=require('envoke.core') io.write(e._VERSION,' ',c._VERSION)")
    :format(tree .. "/share/lua/" .. abi .. "/?.lua;" .. tree .. "/share/lua/" .. abi .. "/?/init.lua;"
            .. "/usr/share/lua/" .. abi .. "/?.lua",
            tree .. "/lib/lua/" .. abi .. "/?.so;/usr/lib/x86_64-linux-gnu/lua/" .. abi .. "/?.so")
  local out, code = shell.run(lua_bin .. " -e " .. shell.quote(probe))
  return out, code == 0
end

local function sh(cmd)
  local out, code = shell.run(cmd)
  return out, code == 0
end

describe("installation", function()
  local tmp
  local version = read("src/version.h"):match('#define ENVOKE_VERSION "([^"]+)"')

  setup(function() tmp = shell.tmpdir() end)
  teardown(function() shell.run("rm -rf " .. shell.quote(tmp)) end)

  it("make install puts a loadable library under PREFIX", function()
    local prefix = tmp .. "/make"
    local out, ok = sh(("make -s install LUA=%s PREFIX=%s"):format(lua_name, shell.quote(prefix)))
    assert.is_true(ok, out)
    local loaded, ok2 = load_from_tree(prefix)
    assert.is_true(ok2, loaded)
    assert.are.equal(version .. " " .. version, loaded)
  end)

  -- The README's LuaRocks command for this Lua (its LuaJIT line, or its 5.4 line
  -- with this version), with a --tree of the spec's own.
  local function documented_luarocks(tree, rockspec)
    local readme = read("README.md"):gsub("\\\n%s*", " ")
    local chosen
    for line in readme:gmatch("[^\n]+") do
      if line:find("^LUAROCKS_CONFIG=luarocks%-debian%.lua luarocks ") then
        if jit and line:find("luajit-2.1", 1, true) then chosen = line end
        if not jit and line:find("--lua-version=5.4", 1, true) then
          chosen = line:gsub("%-%-lua%-version=5%.4", "--lua-version=" .. abi)
        end
      end
    end
    assert(chosen, "the README has no LuaRocks command for " .. lua_name)
    chosen = chosen:gsub("%s+#.*$", ""):gsub(" luarocks ", " luarocks --tree=" .. shell.quote(tree) .. " ", 1)
    return (chosen:gsub("lua%-envoke%-[%w.]+%-1%.rockspec", rockspec))
  end

  for _, which in ipairs{ "release", "scm" } do
    it("luarocks make (offline, as the README says) builds a " .. which .. " tree the library loads from, quietly",
      function()
      local tree = tmp .. "/rocks-" .. which
      local rockspec = which == "scm" and "lua-envoke-scm-1.rockspec" or ("lua-envoke-" .. version .. "-1.rockspec")
      -- Built in a copy so the object files land outside the work tree.
      local src = tmp .. "/src-" .. which
      local files = "src lua bin *.rockspec luarocks-debian.lua "
      assert.is_true(select(2, sh("mkdir -p " .. src .. " && cp -r " .. files .. src)))
      local out, ok = sh("cd " .. src .. " && " .. documented_luarocks(tree, rockspec) .. " 2>&1")
      assert.is_true(ok, out)
      for _, noise in ipairs{ "Missing dependencies", "Warning", "not installed", "Error" } do
        assert.falsy(out:find(noise, 1, true), out)
      end
      local loaded, ok2 = load_from_tree(tree)
      assert.is_true(ok2, loaded)
      assert.are.equal(version .. " " .. version, loaded)
    end)
  end

  it("the rockspec names the version of src/version.h, every C source and every Lua module", function()
    local spec = read("lua-envoke-" .. version .. "-1.rockspec")
    assert.truthy(spec:find('version = "' .. version .. '%-1"'))
    for c in shell.run("ls src/*.c"):gmatch("%S+") do
      assert.truthy(spec:find('"' .. c .. '"', 1, true), c .. " is missing from the rockspec")
    end
    for path in shell.run("cd lua && find envoke -name '*.lua' | sort"):gmatch("%S+") do
      local module = path:gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
      assert.truthy(spec:find('["' .. module .. '"] = "lua/' .. path .. '"', 1, true),
        path .. " is missing from the rockspec")
    end
  end)

  it("envoke.core does not link liblua (the interpreter provides the API)", function()
    local out = shell.run("readelf -d build/" .. lua_name .. "/envoke/core.so")
    assert.truthy(out:find("libcurl", 1, true), out)
    assert.falsy(out:lower():find("liblua", 1, true), out)
    assert.falsy(out:lower():find("libluajit", 1, true), out)
  end)
end)
