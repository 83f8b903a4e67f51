-- TLS at the client level: a server whose CA the client does not know is
-- refused (kind tls, not retried) unless ca_file names that CA.
local envoke = require "envoke"
local sandbox_server = require "sandbox_server"

describe("TLS", function()
  local srv
  setup(function() srv = sandbox_server.start{ tls = true } end)
  teardown(function() if srv then srv:stop() end end)

  local function client(opts)
    local events = {}
    local o = { base_url = srv.tls_url, api_id = srv.api_id, api_key = srv.api_key,
                logger = function(e) events[#events + 1] = e end }
    for k, v in pairs(opts or {}) do o[k] = v end
    return envoke.new(o), events
  end

  it("refuses a server signed by an unknown CA, without retrying", function()
    local c, events = client()
    local ok, err = c:ping()
    assert.is_nil(ok)
    assert.are.equal("tls", err.kind)
    assert.is_false(err.retryable)
    assert.is_false(err.sent)
    local requests = 0
    for _, e in ipairs(events) do if e.event == "request" then requests = requests + 1 end end
    assert.are.equal(1, requests)
  end)

  it("trusts it when ca_file names its CA, and does the whole job over HTTPS", function()
    local c = client{ ca_file = srv.ca_file }
    assert.is_table(assert(c:ping()))
    local saved = assert(c:contact{ email = "tls@example.com" }:consent("Express", "Over TLS"):insert())
    assert.are.equal("Express", saved.consent_status)
  end)

  it("skips verification only when asked to", function()
    assert.is_table(assert(client{ verify = false }:ping()))
  end)
end)
