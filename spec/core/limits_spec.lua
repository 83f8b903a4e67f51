-- Malformed or oversized answers are failures of the answer, not of the
-- network: a header line libcurl will not hold, a header block over 64 KiB
-- (too_large), more than 1000 header lines, an invalid chunk size (protocol).
-- None is retryable: the same server would send the same answer again.
--
-- nginx writes these answers raw on the request's socket (nginx itself never
-- would), then waits for the client to hang up, so that closing first cannot
-- reset bytes the client has not read yet.

local H = require "core_helper"
local nginx = require "sandbox.nginx"

local SERVER = [[
    location / {
      content_by_lua_block {
        local function lines(n, make)
          local t = {}
          for i = 1, n do t[i] = make(i) end
          return table.concat(t)
        end
        local uri, head = ngx.var.uri, nil
        local ok_tail = "Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        if uri == "/huge-header" then      -- one 1 MiB header line
          head = "X-Big: " .. string.rep("a", 1024 * 1024) .. "\r\n" .. ok_tail
        elseif uri == "/many-headers" then -- 20,000 short lines
          head = lines(20000, function(i) return "X-H-" .. i .. ": v\r\n" end) .. ok_tail
        elseif uri == "/big-block" then    -- 40 lines of 2 KiB: 80 KiB in all
          head = lines(40, function(i) return "X-H-" .. i .. ": " .. string.rep("b", 2048) .. "\r\n" end) .. ok_tail
        elseif uri == "/bad-chunk" then
          head = "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"
        elseif uri == "/within-limits" then -- 900 lines, 60 KiB
          head = lines(900, function(i) return "X-H-" .. i .. ": " .. string.rep("c", 50) .. "\r\n" end) .. ok_tail
        else
          head = ok_tail
        end
        ngx.req.read_body()
        local sock = assert(ngx.req.socket(true))
        sock:send("HTTP/1.1 200 OK\r\n" .. head)
        sock:settimeout(5000)
        sock:receive(1)
        return ngx.exit(444)
      }
    }
]]

describe("response limits", function()
  local srv

  lazy_setup(function() srv = nginx.start{ server = SERVER } end)
  lazy_teardown(function() if srv then srv:stop() end end)

  -- Both ways in: a blocking request and a submitted one.
  local function failures(path)
    local pool = H.pool(srv.url)
    local status, err = pool:request("GET", path)
    assert.is_nil(status, path .. " was answered")
    local id = pool:submit("GET", path)
    local results = H.drain(pool, 1, 10000)
    pool:close()
    assert.is_table(results[id], path .. " never finished")
    return H.check_err(err), H.check_err(results[id].err)
  end

  it("a header line over libcurl's limit (100 KiB): too_large, not memory", function()
    for _, err in ipairs{ failures("/huge-header") } do
      assert.are.equal("too_large", err.kind)
      assert.is_false(err.retryable)
      H.contains(err.message, "header")
    end
  end)

  it("a header block over 64 KiB: too_large", function()
    for _, err in ipairs{ failures("/big-block") } do
      assert.are.equal("too_large", err.kind)
      assert.is_false(err.retryable)
      H.contains(err.message, "65536")
    end
  end)

  it("20,000 header lines: protocol", function()
    for _, err in ipairs{ failures("/many-headers") } do
      assert.are.equal("protocol", err.kind)
      assert.is_false(err.retryable)
      H.contains(err.message, "1000 header lines")
    end
  end)

  it("an invalid chunk size: protocol", function()
    for _, err in ipairs{ failures("/bad-chunk") } do
      assert.are.equal("protocol", err.kind)
      assert.is_false(err.retryable)
      H.contains(err.message, "chunked-encoding")
    end
  end)

  it("an answer within the limits comes back whole", function()
    local pool = H.pool(srv.url)
    local status, body, headers = pool:request("GET", "/within-limits")
    pool:close()
    assert.are.equal(200, status)
    assert.are.equal("{}", body)
    assert.are.equal(string.rep("c", 50), headers["x-h-900"])
  end)

  it("the pool goes on serving after each of them", function()
    local pool = H.pool(srv.url)
    for _, path in ipairs{ "/huge-header", "/big-block", "/many-headers", "/bad-chunk" } do
      assert.is_nil((pool:request("GET", path)))
      assert.are.equal(200, (pool:request("GET", "/fine")))
    end
    pool:close()
  end)
end)
