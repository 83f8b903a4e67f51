-- A redirect is never followed (the credentials would go along to wherever
-- it points): the pool reports the 3xx as it came, and the client makes it a
-- `protocol` failure that says where it pointed, userinfo redacted.

local H = require "core_helper"
local nginx = require "sandbox.nginx"
local envoke = require "envoke"

local SERVER = [[
    location = /v1/moved { return 301 "http://user:s3cr3t-REDIRECT@example.com/v1/new"; }
    location = /v1/found { return 302 /v1/elsewhere; }
    location = /v1/temporary { return 307 /v1/elsewhere; }
    location = /v1/permanent { return 308 /v1/elsewhere; }
    location = /v1/no-location { return 301; }
    location / {
      content_by_lua_block {
        ngx.header["Content-Type"] = "application/json"
        ngx.print('{"result_text":"followed","success":true,"result_data":{}}')
      }
    }
]]

describe("a redirect", function()
  local srv

  lazy_setup(function() srv = nginx.start{ server = SERVER } end)
  lazy_teardown(function() if srv then srv:stop() end end)

  it("is reported by the pool as it came, not followed", function()
    local pool = H.pool(srv.url)
    local status, body, headers = pool:request("GET", "/v1/found")
    pool:close()
    assert.are.equal(302, status)
    H.lacks(body, "followed")
    H.contains(headers.location, "/v1/elsewhere")
  end)

  it("is a protocol failure of the client, naming where it pointed", function()
    local client = envoke.new{ base_url = srv.url, api_id = "id", api_key = "key", retries = 0 }
    for path, status in pairs{ ["/v1/found"] = 302, ["/v1/temporary"] = 307, ["/v1/permanent"] = 308 } do
      local data, err = client:request("GET", path)
      assert.is_nil(data)
      assert.are.equal("protocol", err.kind)
      assert.are.equal(status, err.status)
      assert.is_false(err.retryable)
      assert.is_truthy(err.message:match("^redirect to .*/v1/elsewhere not followed$"), err.message)
    end
    client:close()
  end)

  it("names the Location without its userinfo", function()
    local client = envoke.new{ base_url = srv.url, api_id = "id", api_key = "key", retries = 0 }
    local data, err = client:request("GET", "/v1/moved")
    client:close()
    assert.is_nil(data)
    assert.are.equal("protocol", err.kind)
    assert.are.equal(301, err.status)
    assert.are.equal("redirect to http://***@example.com/v1/new not followed", err.message)
    for _, text in ipairs(H.strings_in(err)) do H.lacks(text, "s3cr3t") end
  end)

  it("without a Location is a protocol failure too", function()
    local client = envoke.new{ base_url = srv.url, api_id = "id", api_key = "key", retries = 0 }
    local data, err = client:request("GET", "/v1/no-location")
    client:close()
    assert.is_nil(data)
    assert.are.equal("protocol", err.kind)
    H.contains(err.message, "not followed")
  end)
end)
