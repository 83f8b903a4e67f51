rockspec_format = "3.0"
package = "lua-envoke"
version = "scm-1"
source = {
  url = "git+https://github.com/lua-envoke/lua-envoke.git",
  branch = "main",
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
-- src/ uses getrandom(2) and pthreads.
supported_platforms = { "linux" }
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
        "src/auth.c", "src/buffer.c", "src/clock.c", "src/core.c", "src/json_encode.c", "src/json_scan.c",
        "src/path.c", "src/pool.c", "src/random.c", "src/redact.c", "src/tls.c",
      },
      libraries = { "curl", "ssl", "crypto", "pthread" },
      libdirs = { "$(CURL_LIBDIR)" },
    },
    -- every file under lua/, one line each (spec/install_spec.lua checks)
    ["envoke"] = "lua/envoke/init.lua",
    ["envoke.async"] = "lua/envoke/async.lua",
    ["envoke.bulk"] = "lua/envoke/bulk.lua",
    ["envoke.cli"] = "lua/envoke/cli/init.lua",
    ["envoke.cli.export"] = "lua/envoke/cli/export.lua",
    ["envoke.cli.import"] = "lua/envoke/cli/import.lua",
    ["envoke.cli.interrupt"] = "lua/envoke/cli/interrupt.lua",
    ["envoke.cli.progress"] = "lua/envoke/cli/progress.lua",
    ["envoke.client"] = "lua/envoke/client.lua",
    ["envoke.contact"] = "lua/envoke/contact.lua",
    ["envoke.csv"] = "lua/envoke/csv.lua",
    ["envoke.errors"] = "lua/envoke/errors.lua",
    ["envoke.http1"] = "lua/envoke/http1.lua",
    ["envoke.journal"] = "lua/envoke/journal.lua",
    ["envoke.query"] = "lua/envoke/query.lua",
    ["envoke.ratelimit"] = "lua/envoke/ratelimit.lua",
    ["envoke.resource"] = "lua/envoke/resource.lua",
    ["envoke.resources"] = "lua/envoke/resources.lua",
    ["envoke.retry"] = "lua/envoke/retry.lua",
    ["envoke.sandbox"] = "lua/envoke/sandbox/init.lua",
    ["envoke.sandbox.account"] = "lua/envoke/sandbox/account.lua",
    ["envoke.sandbox.auth"] = "lua/envoke/sandbox/auth.lua",
    ["envoke.sandbox.beyond"] = "lua/envoke/sandbox/beyond.lua",
    ["envoke.sandbox.catalogue"] = "lua/envoke/sandbox/catalogue.lua",
    ["envoke.sandbox.consent"] = "lua/envoke/sandbox/consent.lua",
    ["envoke.sandbox.contact"] = "lua/envoke/sandbox/contact.lua",
    ["envoke.sandbox.contacts"] = "lua/envoke/sandbox/contacts.lua",
    ["envoke.sandbox.controls"] = "lua/envoke/sandbox/controls.lua",
    ["envoke.sandbox.faults"] = "lua/envoke/sandbox/faults.lua",
    ["envoke.sandbox.filter"] = "lua/envoke/sandbox/filter.lua",
    ["envoke.sandbox.hooks"] = "lua/envoke/sandbox/hooks.lua",
    ["envoke.sandbox.items"] = "lua/envoke/sandbox/items.lua",
    ["envoke.sandbox.json"] = "lua/envoke/sandbox/json.lua",
    ["envoke.sandbox.log"] = "lua/envoke/sandbox/log.lua",
    ["envoke.sandbox.query"] = "lua/envoke/sandbox/query.lua",
    ["envoke.sandbox.regex"] = "lua/envoke/sandbox/regex.lua",
    ["envoke.sandbox.response"] = "lua/envoke/sandbox/response.lua",
    ["envoke.sandbox.sending"] = "lua/envoke/sandbox/sending.lua",
    ["envoke.sandbox.store"] = "lua/envoke/sandbox/store.lua",
    ["envoke.sandbox.write"] = "lua/envoke/sandbox/write.lua",
    ["envoke.schema"] = "lua/envoke/schema.lua",
    ["envoke.transport.contract"] = "lua/envoke/transport/contract.lua",
    ["envoke.transport.curl"] = "lua/envoke/transport/curl.lua",
    ["envoke.transport.haproxy"] = "lua/envoke/transport/haproxy.lua",
    ["envoke.transport.in_process"] = "lua/envoke/transport/in_process.lua",
    ["envoke.transport.jobs"] = "lua/envoke/transport/jobs.lua",
    ["envoke.transport.ngx"] = "lua/envoke/transport/ngx.lua",
    ["envoke.transport.unavailable"] = "lua/envoke/transport/unavailable.lua",
    ["envoke.unapplied"] = "lua/envoke/unapplied.lua",
    ["envoke.webhook"] = "lua/envoke/webhook.lua",
    ["envoke.zlib"] = "lua/envoke/zlib.lua",
  },
  -- the envoke command (needs argparse: Debian's lua-argparse, or the argparse rock)
  install = { bin = { envoke = "bin/envoke" } },
}
