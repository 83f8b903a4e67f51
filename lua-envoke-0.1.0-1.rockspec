rockspec_format = "3.0"
package = "lua-envoke"
version = "0.1.0-1"
source = {
  url = "git+https://github.com/lua-envoke/lua-envoke.git",
  tag = "v0.1.0",
}
description = {
  summary = "Envoke's contacts API from Lua: a libcurl core under chainable contact objects",
  detailed = [[
    Contacts as objects with validating, chainable setters; connection reuse,
    retries and concurrency from a small C core on libcurl; an offline sandbox
    server for tests. Lua 5.1 to 5.4 and LuaJIT, plain scripts and OpenResty.
  ]],
  license = "MIT",
  homepage = "https://github.com/lua-envoke/lua-envoke",
}
dependencies = {
  "lua >= 5.1, < 5.5",
  "lua-cjson >= 2.1.0",
}
external_dependencies = {
  -- Library only: Debian keeps curl/curl.h in a multiarch directory that the
  -- compiler searches by itself but LuaRocks does not.
  CURL = { library = "curl" },
}
build = {
  type = "builtin",
  modules = {
    ["envoke.core"] = {
      sources = {
        "src/buffer.c", "src/clock.c", "src/core.c", "src/json.c", "src/pool.c", "src/random.c",
      },
      libraries = { "curl", "pthread" },
      libdirs = { "$(CURL_LIBDIR)" },
    },
    -- every file under lua/, one line each (spec/install_spec.lua checks)
    ["envoke"] = "lua/envoke/init.lua",
    ["envoke.errors"] = "lua/envoke/errors.lua",
    ["envoke.schema"] = "lua/envoke/schema.lua",
  },
}
