-- A new user's first hour in a checkout: ./run and make env, plain busted
-- (.busted), make help / clean / doc, the repository's own files and docs,
-- and sandbox/run's word on a busy port.
local shell = require "sandbox.shell"
local socket = require "socket"

local lua_name = jit and "luajit" or _VERSION:match("%d%.%d")
local lua_bin = jit and "luajit" or ("lua" .. lua_name)
local q = shell.quote

-- A new user's shell: none of the Lua settings of whoever runs the suite.
local CLEAN_ENV = "unset LUA_PATH LUA_CPATH LUA_PATH_5_2 LUA_CPATH_5_2 LUA_PATH_5_3 LUA_CPATH_5_3"
  .. " LUA_PATH_5_4 LUA_CPATH_5_4 LUA_INIT LD_PRELOAD; "

local function read(path)
  return assert(shell.read_file(path), "cannot read " .. path)
end

local function busted_summary(out)
  return out:match("(%d+) successes? / (%d+) failures? / (%d+) errors?")
end

describe("./run", function()
  local root = shell.run("pwd"):gsub("%s+$", "")

  it("runs Lua code with the checkout's envoke and envoke.core, nothing installed", function()
    local out, code = shell.run(CLEAN_ENV .. "cd / && " .. q(root .. "/run") .. " " .. lua_bin
      .. [[ -e 'local e = require "envoke"; io.write(e._VERSION, " ", require("envoke.core")._VERSION, " ",
               e.new{ transport = "in_process" }:contact{ email = "a@example.com" }:insert().id)']])
    assert.are.equal(0, code, out)
    assert.matches("^%d+%.%d+%.%d+ %d+%.%d+%.%d+ 1$", out)
  end)

  it("puts this Lua's build first on the C path, ahead of a stray ./envoke/core.so", function()
    local out, code = shell.run(CLEAN_ENV .. "./run " .. lua_bin .. " -e 'io.write(package.cpath)'")
    assert.are.equal(0, code, out)
    local first = root .. "/build/" .. lua_name .. "/?.so;"
    assert.are.equal(first, out:sub(1, #first))
    local default = out:find(";./?.so", 1, true)
    assert.truthy(default, out)
  end)

  it("runs a script with its arguments, and keeps a path the user set", function()
    local dir = shell.tmpdir("envoke-run")
    shell.write_file(dir .. "/mine.lua", "return 'mine'\n")
    shell.write_file(dir .. "/script.lua", "print(require('envoke')._VERSION ~= nil, require('mine'), ...)\n")
    local var = (jit or lua_name == "5.1") and "LUA_PATH" or ("LUA_PATH_" .. lua_name:gsub("%.", "_"))
    local out, code = shell.run(CLEAN_ENV .. var .. "=" .. q(dir .. "/?.lua;;") .. " ./run " .. lua_bin .. " "
      .. q(dir .. "/script.lua") .. " one two")
    shell.run("rm -rf " .. q(dir))
    assert.are.equal(0, code, out)
    assert.are.equal("true\tmine\tone\ttwo\n", out)
  end)

  it("explains itself when given nothing, and for --help", function()
    local out, code = shell.run("./run </dev/null")
    assert.are_not.equal(0, code)
    assert.truthy(out:find("./run script.lua", 1, true), out)
    out, code = shell.run("./run --help")
    assert.are.equal(0, code)
    assert.truthy(out:find("./run --env", 1, true), out)
  end)

  it("make env prints exports that put the checkout on the paths of that Lua", function()
    local out, code = shell.run(CLEAN_ENV .. 'eval "$(make -s env LUA=' .. lua_name .. ')" && cd / && '
      .. lua_bin .. " -e 'io.write(require(\"envoke.core\")._VERSION)'")
    assert.are.equal(0, code, out)
    assert.matches("^%d+%.%d+%.%d+$", out)
  end)
end)

describe("plain busted in the checkout (.busted)", function()
  it("runs examples/unit_test_spec.lua as its header says: make && busted FILE", function()
    local out, code = shell.run(CLEAN_ENV .. "make -s && busted examples/unit_test_spec.lua")
    assert.are.equal(0, code, out)
    local ok, failed, errors = busted_summary(out)
    assert.are.same({ "2", "0", "0" }, { ok, failed, errors }, out)
  end)

  it("uses lua5.4 by default, and the --lua and --cpath that spec/check passes", function()
    local dir = shell.tmpdir("envoke-busted")
    local probe = dir .. "/probe_spec.lua"
    shell.write_file(probe, [[
      it("probe", function()
        local core = require "envoke.core"
        assert(core._VERSION)
        local name, found = jit and "luajit" or _VERSION:match("%d%.%d"), nil
        for template in package.cpath:gmatch("[^;]+") do -- package.searchpath is not in 5.1
          local path = template:gsub("%?", "envoke/core")
          local f = not found and io.open(path)
          if f then f:close() found = path end
        end
        print("PROBE " .. name .. " " .. tostring(found))
      end)
    ]])
    local plain = shell.run(CLEAN_ENV .. "make -s && busted -o plainTerminal " .. q(probe))
    local flagged = shell.run(CLEAN_ENV .. "busted -o plainTerminal --lua=" .. lua_bin .. " --cpath=./build/"
      .. lua_name .. "/?.so " .. q(probe))
    shell.run("rm -rf " .. q(dir))
    assert.truthy(plain:find("PROBE 5.4 ./build/5.4/envoke/core.so", 1, true), plain)
    assert.truthy(flagged:find("PROBE " .. lua_name .. " ./build/" .. lua_name .. "/envoke/core.so", 1, true),
      flagged)
  end)
end)

describe("make help and make clean", function()
  it("make help lists the targets, from the Makefile's header", function()
    local out, code = shell.run("make -s help")
    assert.are.equal(0, code, out)
    for _, target in ipairs{ "make deps", "make install", "make check", "make demo", "make sandbox", "make bench",
                             "make doc", "make env", "make clean", "make help", "./run" } do
      assert.truthy(out:find(target, 1, true), target .. " is missing from make help:\n" .. out)
    end
    assert.falsy(out:find("^#"), out)
  end)

  it("make clean also removes what luarocks make leaves in the checkout", function()
    -- In a scratch copy of the Makefile: the real checkout's build is in use.
    local dir = shell.tmpdir("envoke-clean")
    local out, code = shell.run(table.concat({
      "set -e", "cp Makefile " .. q(dir), "cd " .. q(dir),
      "mkdir -p build/5.4/envoke envoke src", "touch build/5.4/envoke/core.so envoke/core.so src/core.o src/pool.o",
      "echo 'int x;' > src/core.c", "make -s clean", "find . -type f | sort",
    }, "\n"))
    shell.run("rm -rf " .. q(dir))
    assert.are.equal(0, code, out)
    assert.are.equal("./Makefile\n./src/core.c\n", out)
  end)
end)

describe("make doc", function()
  local function have_ldoc()
    local _, code = shell.run("command -v ldoc >/dev/null && lua5.1 -e 'require \"markdown\"'")
    return code == 0
  end

  if not have_ldoc() then
    pending("make doc: ldoc (lua-ldoc) and lua-markdown are not installed")
    return
  end

  it("documents only public modules; every documented function of the others is @local", function()
    local public = {}
    for path in read("config.ld"):gmatch('"(lua/envoke/[%w_/]+%.lua)"') do public[path] = true end
    assert.truthy(public["lua/envoke/init.lua"] and public["lua/envoke/client.lua"], "config.ld lists no modules")
    local unmarked = {}
    for path in shell.run("find lua/envoke -name '*.lua' -not -path '*/sandbox/*' | sort"):gmatch("%S+") do
      if not public[path] then
        local doc, n = nil, 0
        for line in (read(path) .. "\n"):gmatch("([^\n]*)\n") do
          n = n + 1
          if line:match("^%s*%-%-%-[^%-]") or line:match("^%s*%-%-%-$") then
            doc = { local_tag = false }
          elseif doc and line:match("^%s*%-%-") then
            if line:find("@local", 1, true) then doc.local_tag = true end
          elseif doc then
            -- The module's own comment ends in @module; a function's doc needs @local.
            if line:match("^%s*function ") and not doc.local_tag then
              unmarked[#unmarked + 1] = path .. ":" .. n .. ": " .. line
            end
            doc = nil
          end
        end
      end
    end
    assert.are.same({}, unmarked)
  end)

  it("writes the reference without a single warning", function()
    local out, code = shell.run("make -s doc 2>&1")
    assert.are.equal(0, code, out)
    local unexpected = {}
    for line in out:gmatch("[^\n]+") do
      if not (line == "reading configuration from config.ld" or line:match("^output written to ")) then
        unexpected[#unexpected + 1] = line
      end
    end
    assert.are.same({}, unexpected)
    assert.truthy(shell.read_file("build/doc/index.html"), "no build/doc/index.html")
  end)
end)

describe("the repository's own files", function()
  it("has the MIT LICENSE the rockspecs name, and a changelog", function()
    local license = read("LICENSE")
    assert.truthy(license:find("MIT License", 1, true))
    assert.truthy(license:find("Copyright (c) 2026 the lua-envoke authors", 1, true))
    local changelog = read("CHANGELOG.md")
    assert.truthy(changelog:find("keepachangelog.com", 1, true))
    assert.truthy(changelog:find("\n## [Unreleased]\n", 1, true))
    local version = read("src/version.h"):match('#define ENVOKE_VERSION "([^"]+)"')
    assert.truthy(changelog:find("\n## %[" .. version:gsub("%.", "%%.") .. "%] %- %d%d%d%d%-%d%d%-%d%d\n"),
      "no entry for " .. version)
  end)

  it("has a release and an scm rockspec, Linux only, building the same modules", function()
    local version = read("src/version.h"):match('#define ENVOKE_VERSION "([^"]+)"')
    local release = read("lua-envoke-" .. version .. "-1.rockspec")
    local scm = read("lua-envoke-scm-1.rockspec")
    for _, spec in ipairs{ release, scm } do
      assert.truthy(spec:find('\nsupported_platforms = { "linux" }\n', 1, true))
      assert.truthy(spec:find('license = "MIT"', 1, true))
    end
    assert.truthy(scm:find('\nversion = "scm%-1"\n'))
    local function build_part(text) return text:match("\nbuild = (.*)$") end
    assert.are.equal(build_part(release), build_part(scm))
  end)

  it("keeps generated benchmark results out of the source tree", function()
    assert.is_nil(shell.read_file("bench/results.md"))
    assert.truthy(read(".gitignore"):find("/build/", 1, true))
    assert.truthy(read("bench/run"):find("MARKDOWN=build/bench/results.md", 1, true))
  end)

  it("cites only files it contains: docs/envoke-api.md, not API.md or the seed pages", function()
    local files = { "README.md", "sandbox/README.md", "docs/envoke-api.md", "config.ld" }
    for path in shell.run("find lua -name '*.lua' | sort"):gmatch("%S+") do files[#files + 1] = path end
    local problems = {}
    for _, path in ipairs(files) do
      local text = read(path)
      for _, bad in ipairs{ "%f[%w/]API%.md", "%.%./shared", "[Ss]eed page", "[Ss]eed's", "%(seed%)" } do
        if text:find(bad) then problems[#problems + 1] = path .. ": " .. bad end
      end
      for ref in text:gmatch("docs/[%w_%-]+%.md") do
        if not shell.read_file(ref) then problems[#problems + 1] = path .. ": " .. ref .. " does not exist" end
      end
      if path:match("%.md$") then
        local dir = path:match("^(.*)/") or "."
        for link in text:gmatch("%]%(([^)#%s]+)[^)]*%)") do
          if not link:match("^%a+:") and not shell.read_file(dir .. "/" .. link)
            and select(2, shell.run("test -d " .. q(dir .. "/" .. link))) ~= 0 then
            problems[#problems + 1] = path .. ": link to " .. link .. " leads nowhere"
          end
        end
      end
    end
    assert.are.same({}, problems)
  end)
end)

describe("sandbox/run on a port in use", function()
  it("says so in one line, without nginx's bind retries", function()
    local busy = assert(socket.bind("127.0.0.1", 0))
    local _, port = busy:getsockname()
    local out, code = shell.run(CLEAN_ENV .. "./sandbox/run --port " .. port .. " </dev/null")
    busy:close()
    assert.are.equal(1, code, out)
    assert.are.equal("sandbox/run: port " .. port
      .. " is already in use (choose another, or leave the option out for a free one)\n", out)
  end)
end)
