-- The body of `make demo` (see examples/demo): the quickstart against a sandbox over HTTP.
local host = require "sandbox.host"
local shell = require "sandbox.shell"
local cjson = require "cjson"
local core = require "envoke.core"

local server = host.start()
print(("sandbox: serving the Envoke API at %s (credentials %s / %s)"):format(server.url, server.api_id, server.api_key))

local ok, problem = pcall(function()
  local env = ("ENVOKE_BASE_URL=%s ENVOKE_API_ID=%s ENVOKE_API_KEY=%s"):format(
    shell.quote(server.url), shell.quote(server.api_id), shell.quote(server.api_key))
  local out, code = shell.run(env .. " lua5.4 examples/quickstart.lua")
  io.write("quickstart: ", (out:gsub("\n(.)", "\nquickstart: %1")))
  if code ~= 0 then error("the quickstart failed (exit " .. code .. ")") end

  -- What went over the wire, from the sandbox's own request log.
  local pool = core.pool{ base_url = server.url }
  local _, body = assert(pool:request("GET", "/_sandbox/log"))
  pool:close()
  for _, r in ipairs(cjson.decode(body).result_data) do
    local q = r.query ~= "" and ("?" .. r.query) or ""
    print(("sandbox received: %s %s%s -> %d"):format(r.method, r.path, q, r.status))
  end
end)

server.stop()
print("sandbox: stopped")
if not ok then
  io.stderr:write("demo failed: ", tostring(problem), "\n")
  os.exit(1)
end
