--- Turns bench/run's raw results into the table: medians per case, ratios to
-- each case's reference (instructions per request from the callgrind pass
-- beside wall and CPU time), the goals of bench/cases, the memory check.
--    lua5.4 bench/report.lua bench/cases RESULTS build/bench/results.md
-- Prints the table as aligned text and writes it as Markdown.
local cases_file, results_file, markdown_file = arg[1], arg[2], arg[3]
assert(cases_file and results_file and markdown_file, "usage: report.lua CASES RESULTS MARKDOWN")

local MEMORY_GOAL_KB = 1024

local function lines(path)
  local f = assert(io.open(path, "r"))
  local text = f:read("*a")
  f:close()
  return text:gmatch("[^\n]+")
end

local cases, by_name = {}, {}
for line in lines(cases_file) do
  if not line:match("^%s*#") and line:match("%S") then
    local name, ref, _, _, goals = line:match("^(%S+)%s+(%S+)%s+(%S+)%s+(%S+)%s+(%S+)")
    local c = { name = name, ref = ref ~= "-" and ref or nil, goals = {}, runs = {} }
    for kind, op, value in goals:gmatch("(%a%w*)([<>]=)([%d.]+)") do
      c.goals[#c.goals + 1] = { kind = kind, op = op, value = tonumber(value) }
    end
    cases[#cases + 1], by_name[name] = c, c
  end
end

local meta, memory, skipped, failed = {}, nil, {}, {}
local extra = {} -- the streaming and command cases (issue 14)
for line in lines(results_file) do
  local kind, rest = line:match("^(%S+) (.*)$")
  if kind == "meta" then
    meta[#meta + 1] = rest
  elseif kind == "result" then
    local name, run, fields = rest:match("^(%S+) (%d+) (.*)$")
    local v = {}
    for k, n in fields:gmatch("([%w_]+)=([%d.]+)") do v[k] = tonumber(n) end
    local c = by_name[name]
    local r = { rps = v.requests / v.seconds, cpu = v.cpu_us, rss = v.rss_kb,
                -- host cases (bench/lua/host_frames.lua): poll(0) CPU per frame
                worst = v.worst_us, p99 = v.p99_us, connect = v.connect_us, client = v.client_us,
                ir_poll = v.ir_poll, ir_new = v.ir_new, ir_ca = v.ir_ca }
    c.runs[#c.runs + 1] = r
    c.by_run = c.by_run or {}
    c.by_run[tonumber(run)] = r
  elseif kind == "callgrind" then
    -- one pass, not per run: instruction counts repeat within ~1%
    local name, ir = rest:match("^(%S+) ir=([%d.]+)")
    if by_name[name] then by_name[name].ir = tonumber(ir) end
  elseif kind == "memory" then
    memory = {}
    for k, n in rest:gmatch("([%w_]+)=(%-?[%d.]+)") do memory[k] = tonumber(n) end
  elseif kind == "stream" or kind == "cli" then
    extra[kind] = {}
    for k, n in rest:gmatch("([%w_]+)=(%-?[%d.]+)") do extra[kind][k] = tonumber(n) end
  elseif kind == "skipped" or kind == "failed" then
    local name, why = rest:match("^(%S+) (.*)$")
    if kind == "skipped" then skipped[name] = why else failed[name] = why end
  end
end

local function median(runs, key)
  local xs = {}
  for i, r in ipairs(runs) do xs[i] = r[key] end
  table.sort(xs)
  local n = #xs
  if n == 0 then return nil end
  if n % 2 == 1 then return xs[(n + 1) / 2] end
  return (xs[n / 2] + xs[n / 2 + 1]) / 2
end

for _, c in ipairs(cases) do
  c.rps, c.cpu, c.rss = median(c.runs, "rps"), median(c.runs, "cpu"), median(c.runs, "rss")
  -- A stall in any run is a stall: the worst frame is the maximum over the runs.
  for _, r in ipairs(c.runs) do
    if r.worst and (not c.worst or r.worst > c.worst) then c.worst = r.worst end
    if r.connect and (not c.connect or r.connect > c.connect) then c.connect = r.connect end
  end
  c.p99, c.client = c.worst and median(c.runs, "p99"), c.worst and median(c.runs, "client")
  c.ir_poll = c.worst and median(c.runs, "ir_poll")
  if c.rps then
    local lo, hi = math.huge, 0
    for _, r in ipairs(c.runs) do
      if r.rps < lo then lo = r.rps end
      if r.rps > hi then hi = r.rps end
    end
    c.spread = (hi - lo) / c.rps * 100
  end
end

-- Ratios against the reference: the median of the ratios within each run,
-- where case and reference ran minutes apart at most, so a burst of load
-- from elsewhere that slows one whole run cancels out.
local function paired_ratio(c, ref, key)
  local ratios = {}
  for run, r in pairs(c.by_run or {}) do
    local base = ref.by_run and ref.by_run[run]
    if base then ratios[#ratios + 1] = { x = r[key] / base[key] } end
  end
  if #ratios == 0 then return c[key] / ref[key] end
  return median(ratios, "x")
end

-- The goals' kinds checked against the reference: the ratio each reads, its
-- name in the verdicts and in the table's goals column.
local RATIO_GOALS = {
  rps = { ratio = "rps_ratio", label = "req/s", short = "req/s" },
  cpu = { ratio = "cpu_ratio", label = "CPU/req", short = "CPU" },
  ir = { ratio = "ir_ratio", label = "instructions/req", short = "instr" },
}

-- A goal's figure and how the verdict names it.
local function goal_figure(c, g)
  local kind = RATIO_GOALS[g.kind]
  if kind then
    return c[kind.ratio], ("%s %s %sx %s"):format(kind.label, g.op, g.value, tostring(c.ref)), kind.short
  end
  -- worst/p99: absolute, in ms of poll(0) CPU per frame (host cases)
  return c[g.kind] and c[g.kind] / 1000, ("%s poll(0) CPU per frame %s %s ms"):format(g.kind, g.op, g.value), g.kind
end

-- The verdict on each goal.
local verdicts = {}
for _, c in ipairs(cases) do
  local ref = c.ref and by_name[c.ref]
  if c.rps and ref and ref.rps then
    c.rps_ratio, c.cpu_ratio = paired_ratio(c, ref, "rps"), paired_ratio(c, ref, "cpu")
  elseif not c.ref and c.rps then
    c.rps_ratio, c.cpu_ratio = 1, 1
  end
  if c.ir and ref and ref.ir then
    c.ir_ratio = c.ir / ref.ir
  elseif c.ir and not c.ref then
    c.ir_ratio = 1
  end
  local notes = {}
  for _, g in ipairs(c.goals) do
    local got, label, short = goal_figure(c, g)
    local met
    if got then
      if g.op == ">=" then met = got >= g.value else met = got <= g.value end
    end
    notes[#notes + 1] = short .. " " .. (met == nil and "?" or met and "met" or "MISSED")
    -- A case left out by BENCH_CASES has no verdict to give.
    if #c.runs > 0 or failed[c.name] then
      verdicts[#verdicts + 1] = { case = c.name, label = label, got = got, met = met }
    end
  end
  c.goal_text = #notes > 0 and table.concat(notes, ", ") or ""
end

local function fmt(x, pattern) return x and pattern:format(x) or "-" end

local header = { "case", "reference", "req/s", "× ref", "CPU µs/req", "× ref", "instructions/req", "× ref",
                 "peak RSS MiB", "spread", "goals" }
local right = { false, false, true, true, true, true, true, true, true, true, false }
local rows = {}
for _, c in ipairs(cases) do
  local status = skipped[c.name] and "skipped" or failed[c.name] and "FAILED" or nil
  if c.rps or status then
    rows[#rows + 1] = {
      c.name, c.ref or "(reference)",
      status or fmt(c.rps, "%.0f"), fmt(c.rps_ratio, "%.2f"),
      fmt(c.cpu, "%.1f"), fmt(c.cpu_ratio, "%.2f"), fmt(c.ir, "%.0f"), fmt(c.ir_ratio, "%.2f"),
      fmt(c.rss and c.rss / 1024, "%.1f"), fmt(c.spread, "%.0f%%"), c.goal_text,
    }
  end
end

-- Characters, not bytes: the header holds UTF-8 (µ, ×).
local function chars(s) return #(s:gsub("[\128-\191]", "")) end

local function text_table()
  local width = {}
  for i, h in ipairs(header) do width[i] = chars(h) end
  for _, row in ipairs(rows) do
    for i, cell in ipairs(row) do if chars(cell) > width[i] then width[i] = chars(cell) end end
  end
  local out = {}
  local function add(row)
    local cells = {}
    for i, cell in ipairs(row) do
      local pad = (" "):rep(width[i] - chars(cell))
      cells[i] = right[i] and pad .. cell or cell .. pad
    end
    out[#out + 1] = (table.concat(cells, "  "):gsub("%s+$", ""))
  end
  add(header)
  local rule = {}
  for i = 1, #header do rule[i] = ("-"):rep(width[i]) end
  add(rule)
  for _, row in ipairs(rows) do add(row) end
  return table.concat(out, "\n")
end

local function markdown_table()
  local out = { "| " .. table.concat(header, " | ") .. " |" }
  local rule = {}
  for i = 1, #header do rule[i] = right[i] and "---:" or "---" end
  out[#out + 1] = "| " .. table.concat(rule, " | ") .. " |"
  for _, row in ipairs(rows) do out[#out + 1] = "| " .. table.concat(row, " | ") .. " |" end
  return table.concat(out, "\n")
end

-- The goal lines, the memory check, and anything skipped or failed.
local notes = {}
for _, v in ipairs(verdicts) do
  notes[#notes + 1] = ("%s: %s: %s (%s)"):format(v.met == nil and "not measured" or v.met and "met" or "MISSED",
    v.case, v.label, v.got and ("%.2f"):format(v.got) or "no result")
end
for _, c in ipairs(cases) do
  if c.worst then
    notes[#notes + 1] = ("frames: %s: poll(0) CPU per frame worst %.2f ms (max over runs), p99 %.2f ms"
      .. " (median); up to the first answer %.2f ms; envoke.new %.2f ms"):format(c.name, c.worst / 1000,
      c.p99 / 1000, (c.connect or 0) / 1000, (c.client or 0) / 1000)
    if c.ir_poll then
      notes[#notes + 1] = ("callgrind: %s: %.0f instructions in poll per write; %.0f making the pool;"
        .. " %.0f loading CA files"):format(c.name, c.ir_poll, median(c.runs, "ir_new"), median(c.runs, "ir_ca"))
    end
  end
end
if memory then
  local met = math.abs(memory.diff_kb) <= MEMORY_GOAL_KB
  notes[#notes + 1] = ("%s: memory: RSS %d KiB after %d saves, %d KiB after %d: %+d KiB (goal within ±%d KiB);"
    .. " Lua heap %d -> %d KiB"):format(met and "met" or "MISSED", memory.rss_first_kb, memory.first,
    memory.rss_end_kb, memory.count, memory.diff_kb, MEMORY_GOAL_KB, memory.lua_first_kb, memory.lua_end_kb)
end
local STREAM_GOAL_KB = 64 * 1024
if extra.stream then
  local st = extra.stream
  local at = {}
  for _, k in ipairs{ "rss_10k_kb", "rss_100k_kb", "rss_1m_kb" } do
    if st[k] then at[#at + 1] = ("%s %.1f MiB"):format(k:match("rss_(%w+)_kb"), st[k] / 1024) end
  end
  notes[#notes + 1] = ("%s: streaming save_all of %d items (iterator, results = false): RSS %s; peak %.1f MiB"
    .. " (goal under 64 MiB, flat); %.0f req/s"):format(st.hwm_kb < STREAM_GOAL_KB and "met" or "MISSED", st.count,
    table.concat(at, ", "), st.hwm_kb / 1024, st.count / st.seconds)
end
if extra.cli then
  local c = extra.cli
  notes[#notes + 1] = ("envoke import: %d rows at concurrency %d, %d ms answers: %.1f s; save_all on the same rows"
    .. " %.1f s (command/save_all %.2f); physical limit rows x latency / concurrency = %.1f s (command %.2f of it);"
    .. " command peak RSS %s"):format(c.rows, c.concurrency, c.latency_ms, c.cli_seconds, c.save_all_seconds,
    c.cli_seconds / c.save_all_seconds, c.limit_seconds, c.limit_seconds / c.cli_seconds,
    c.cli_hwm_kb and ("%.1f MiB"):format(c.cli_hwm_kb / 1024) or "?")
end
for _, c in ipairs(cases) do
  if skipped[c.name] then notes[#notes + 1] = ("skipped: %s: %s"):format(c.name, skipped[c.name]) end
end
for name, why in pairs(failed) do notes[#notes + 1] = ("FAILED: %s: %s"):format(name, why) end

local legend = "req/s, CPU/req and RSS are medians over the runs; × ref is the median over the runs of"
  .. " case/reference measured in the same run (the reference is 1.00); CPU is the client's user+sys"
  .. " per request; spread is (max-min)/median of req/s, a measure of the noise. instructions/req is"
  .. " the client's, counted by callgrind in one pass (see callgrind below); they repeat within ~1%"
  .. " where wall and CPU time move 15-40%, so the goals are stated in them."

io.stdout:write(text_table(), "\n\n", table.concat(notes, "\n"), "\n\n", legend, "\n")
for _, m in ipairs(meta) do io.stdout:write(m, "\n") end

local written = ("Written by `make bench` (bench/run) on %s; overwritten by every run.")
  :format(os.date("!%Y-%m-%d %H:%M UTC"))
local md = { "# lua-envoke benchmark", "", written, "",
             markdown_table(), "" }
for _, n in ipairs(notes) do md[#md + 1] = "- " .. n end
md[#md + 1] = ""
md[#md + 1] = legend
md[#md + 1] = ""
for _, m in ipairs(meta) do md[#md + 1] = "- " .. m end
local f = assert(io.open(markdown_file, "w"))
f:write(table.concat(md, "\n"), "\n")
f:close()
