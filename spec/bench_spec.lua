-- make bench's machinery without a server: bench/report.lua on made-up
-- results (the instructions/req column, ir goals, a callgrind pass that did
-- not run) and the warm-up count both measure harnesses print and take from
-- BENCH_WARMUP (bench/run's callgrind pass counts it).
local shell = require "sandbox.shell"

local q = shell.quote

-- A reference, two cases with ir goals, one with a bare `ir`, one with none.
local CASES = [[
# name   ref   count  packages  goals                        command
ref      -     100    -         -                            true {url} {count}
save     ref   100    -         rps>=0.95,cpu<=1.15,ir<=1.5  true {url} {count}
jit      ref   100    -         ir<=1.25                     true {url} {count}
core     ref   100    -         ir                           true {url} {count}
other    ref   100    -         -                            true {url} {count}
]]

local RESULTS = [[
meta callgrind: test
result ref 1 requests=1000 seconds=0.1 cpu_us=50 rss_kb=1024 warmup=20
result save 1 requests=1000 seconds=0.125 cpu_us=60 rss_kb=1024 warmup=20
result jit 1 requests=1000 seconds=0.1 cpu_us=55 rss_kb=1024 warmup=20
result core 1 requests=1000 seconds=0.1 cpu_us=52 rss_kb=1024 warmup=20
result other 1 requests=1000 seconds=0.1 cpu_us=52 rss_kb=1024 warmup=20
callgrind ref ir=80000
callgrind save ir=152000
callgrind jit ir=96000
callgrind core ir=88000
]]

-- Runs bench/report.lua; returns its printed text and the Markdown it wrote.
local function report(results)
  local dir = shell.tmpdir("envoke-bench-report")
  shell.write_file(dir .. "/cases", CASES)
  shell.write_file(dir .. "/results", results)
  local out, code = shell.run(("lua5.4 bench/report.lua %s %s %s"):format(q(dir .. "/cases"),
    q(dir .. "/results"), q(dir .. "/results.md")))
  local md = shell.read_file(dir .. "/results.md")
  shell.run("rm -rf " .. q(dir))
  assert.are.equal(0, code, out)
  return out, md
end

-- The cells of a Markdown row whose first cell is `name`.
local function md_row(md, name)
  local line = md:match("\n| " .. name:gsub("%p", "%%%0") .. " |[^\n]*")
  assert.truthy(line, "no row " .. name .. " in:\n" .. md)
  local cells = {}
  for cell in line:gmatch("|([^|]*)") do cells[#cells + 1] = cell:match("^%s*(.-)%s*$") end
  cells[#cells] = nil -- after the last |
  return cells
end

local function header_index(md, title, nth)
  local header = md_row(md, "case")
  local seen = 0
  for i, cell in ipairs(header) do
    if cell == title then
      seen = seen + 1
      if seen == (nth or 1) then return i end
    end
  end
  error("no column " .. title)
end

describe("bench/report.lua", function()
  it("sets instructions/req and its ratio to the reference beside wall and CPU", function()
    local out, md = report(RESULTS)
    assert.truthy(out:find("instructions/req", 1, true), out)
    local ir, ratio = header_index(md, "instructions/req"), header_index(md, "× ref", 3)
    assert.are.equal(ir + 1, ratio)
    assert.are.equal(header_index(md, "× ref", 2) + 1, ir) -- right after CPU's ratio
    assert.are.same({ "80000", "1.00" }, { md_row(md, "ref")[ir], md_row(md, "ref")[ratio] })
    assert.are.same({ "152000", "1.90" }, { md_row(md, "save")[ir], md_row(md, "save")[ratio] })
    assert.are.same({ "96000", "1.20" }, { md_row(md, "jit")[ir], md_row(md, "jit")[ratio] })
    assert.are.same({ "88000", "1.10" }, { md_row(md, "core")[ir], md_row(md, "core")[ratio] })
    assert.are.same({ "-", "-" }, { md_row(md, "other")[ir], md_row(md, "other")[ratio] })
  end)

  it("checks ir goals like the others: met or MISSED, in the goals column and the verdicts", function()
    local out, md = report(RESULTS)
    local goals = header_index(md, "goals")
    assert.are.equal("req/s MISSED, CPU MISSED, instr MISSED", md_row(md, "save")[goals])
    assert.are.equal("instr met", md_row(md, "jit")[goals])
    assert.are.equal("", md_row(md, "core")[goals]) -- a bare `ir` counts, with no goal
    assert.truthy(out:find("MISSED: save: instructions/req <= 1.5x ref (1.90)", 1, true), out)
    assert.truthy(out:find("met: jit: instructions/req <= 1.25x ref (1.20)", 1, true), out)
    assert.truthy(md:find("- MISSED: save: instructions/req <= 1.5x ref (1.90)", 1, true), md)
    assert.falsy(out:find("core: instructions", 1, true), out)
  end)

  it("says an ir goal was not measured when the callgrind pass did not run", function()
    local without = RESULTS:gsub("callgrind [^\n]*\n", "")
    local out, md = report(without)
    assert.truthy(out:find("not measured: save: instructions/req <= 1.5x ref (no result)", 1, true), out)
    assert.are.equal("req/s MISSED, CPU MISSED, instr ?", md_row(md, "save")[header_index(md, "goals")])
    assert.are.equal("-", md_row(md, "save")[header_index(md, "instructions/req")])
    assert.truthy(out:find("callgrind: test", 1, true), out) -- bench/run's word on the pass
  end)

  it("reports a case that failed under callgrind apart from its timed runs", function()
    local out, md = report(RESULTS:gsub("callgrind save [^\n]*\n", "")
      .. "failed callgrind:save exit 1 at 100 requests: warm-up requests failed\n")
    assert.truthy(out:find("FAILED: callgrind:save: exit 1 at 100 requests", 1, true), out)
    assert.are.equal("8000", md_row(md, "save")[header_index(md, "req/s")])
    assert.are.equal("req/s MISSED, CPU MISSED, instr ?", md_row(md, "save")[header_index(md, "goals")])
  end)
end)

describe("the bench harnesses' warm-up", function()
  local root = shell.run("pwd"):gsub("%s+$", "")
  local lua = "cd " .. q(root) .. " && LUA_PATH='./bench/lua/?.lua;;' lua5.4 -e "
    .. q([[local m = require "measure"; local made = 0
           m.run(30, function(n) made = made + n; return n end); io.write("made=", made, "\n")]])

  it("is printed on the Lua result line, and BENCH_WARMUP fixes it", function()
    local out, code = shell.run(lua)
    assert.are.equal(0, code, out)
    assert.truthy(out:find("^requests=30 seconds=[%d.]+ cpu_us=[%d.]+ rss_kb=%d+ warmup=10\nmade=40\n"), out)
    out, code = shell.run("export BENCH_WARMUP=7; " .. lua)
    assert.are.equal(0, code, out)
    assert.truthy(out:find(" warmup=7\nmade=37\n", 1, true), out)
    out, code = shell.run("export BENCH_WARMUP=x; " .. lua)
    assert.are.equal(2, code, out)
    assert.truthy(out:find("BENCH_WARMUP must be a count >= 0", 1, true), out)
  end)

  it("is printed on the C result line, and BENCH_WARMUP fixes it", function()
    local dir = shell.tmpdir("envoke-bench-warmup")
    shell.write_file(dir .. "/w.c", [[
#include <curl/curl.h>
#include "measure.h"
int main(void)
{
    long warmup = bench_warmup_count(30);
    return bench_report(bench_start(), warmup, 30, 0);
}
]])
    local out, code = shell.run(("gcc -std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -Wno-unused-function"
      .. " -I%s %s -o %s $(pkg-config --cflags --libs libcurl) && %s && BENCH_WARMUP=7 %s && BENCH_WARMUP=-1 %s")
      :format(q(root .. "/bench/c"), q(dir .. "/w.c"), q(dir .. "/w"), q(dir .. "/w"), q(dir .. "/w"), q(dir .. "/w")))
    shell.run("rm -rf " .. q(dir))
    assert.are.equal(2, code, out)
    assert.truthy(out:find("^requests=30 seconds=[%d.]+ cpu_us=[%d.]+ rss_kb=%d+ warmup=10\n"), out)
    assert.truthy(out:find("\nrequests=30 [^\n]* warmup=7\nBENCH_WARMUP must be a count >= 0\n"), out)
  end)
end)
