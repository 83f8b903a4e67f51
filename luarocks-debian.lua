-- LuaRocks settings for installing from this checkout on Debian, offline:
--   LUAROCKS_CONFIG=luarocks-debian.lua luarocks --lua-version=5.4 make lua-envoke-0.1.0-1.rockspec
-- Debian's lua-cjson package (not a rock) provides the lua-cjson dependency,
-- so LuaRocks neither looks for it on a server nor warns that it is missing.
rocks_provided = { ["lua-cjson"] = "2.1.0-1" }
rocks_servers = {}
