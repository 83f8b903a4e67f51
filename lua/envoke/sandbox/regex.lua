--- A small regular-expression engine for the `$regex` filter operator.
--
-- Lua patterns are not regular expressions and the sandbox may not depend
-- on a C library, so this is a backtracking matcher for the common subset:
-- literals and escapes, `.`, classes `[a-z]` `[^...]` `\d \w \s \D \W \S`,
-- anchors `^ $`, `\b`, groups `(...)` `(?:...)`, alternation `|`, and the
-- quantifiers `* + ? {n} {n,} {n,m}` with lazy forms.  `.` and negated
-- classes consume a whole UTF-8 character.  Matching is unanchored and, like
-- the sandbox's other text comparisons, case-insensitive.  A step budget
-- keeps pathological patterns from stalling the server.
-- @module envoke.sandbox.regex

local regex = {}

local STEP_BUDGET = 200000

local function utf8_step(s, i)
  local c = s:byte(i)
  if c < 0xC0 then return 1 end
  if c < 0xE0 then return 2 end
  if c < 0xF0 then return 3 end
  return 4
end

-- Class predicates over a single byte (as a one-character string).
local SHORTHAND = {
  d = function(c) return c:find("^%d$") ~= nil end,
  w = function(c) return c:find("^[%w_]$") ~= nil end,
  s = function(c) return c:find("^%s$") ~= nil end,
}
for letter, test in pairs({ d = SHORTHAND.d, w = SHORTHAND.w, s = SHORTHAND.s }) do
  SHORTHAND[letter:upper()] = function(c) return not test(c) end
end

local ESCAPED = { n = "\n", r = "\r", t = "\t", f = "\f", v = "\v" }

local Parser = {}
Parser.__index = Parser

function Parser:peek() return self.src:sub(self.pos, self.pos) end
function Parser:next()
  local c = self:peek()
  self.pos = self.pos + 1
  return c
end
function Parser:fail(msg) error({ regex = msg .. " at position " .. self.pos }, 0) end

-- A range `lo-hi` in a class, after `lo`.
function Parser:range(lo)
  self:next() -- the "-"
  local hi = self:next()
  if hi == "\\" then
    local e = self:next()
    hi = ESCAPED[e] or e
  end
  local lo_b, hi_b = lo:byte(), hi:byte()
  if hi_b < lo_b then self:fail("bad range") end
  -- The subject is lower-cased, so [A-Z] must also accept "a".."z".
  return function(ch)
    local b, u = ch:byte(), ch:upper():byte()
    return (b >= lo_b and b <= hi_b) or (u >= lo_b and u <= hi_b)
  end
end

-- One item of a class, starting with `c`: a shorthand, a range or a character.
function Parser:class_item(c)
  if c == "\\" then
    local e = self:next()
    if SHORTHAND[e] then return SHORTHAND[e] end
    c = ESCAPED[e] or e
  end
  if self:peek() == "-" and self.src:sub(self.pos + 1, self.pos + 1) ~= "]"
      and self.src:sub(self.pos + 1, self.pos + 1) ~= "" then
    return self:range(c)
  end
  local lit = c:lower()
  return function(ch) return ch == lit end
end

function Parser:class()
  -- after "["
  local negate = false
  if self:peek() == "^" then
    negate = true
    self:next()
  end
  local items, first = {}, true
  while true do
    local c = self:next()
    if c == "" then self:fail("unclosed [") end
    if c == "]" and not first then break end
    first = false
    items[#items + 1] = self:class_item(c)
  end
  return { t = "class", items = items, negate = negate }
end

function Parser:atom()
  local c = self:next()
  if c == "(" then
    if self.src:sub(self.pos, self.pos + 1) == "?:" then self.pos = self.pos + 2 end
    local node = self:alternation()
    if self:next() ~= ")" then self:fail("unclosed (") end
    return node
  elseif c == "[" then
    return self:class()
  elseif c == "." then
    return { t = "any" }
  elseif c == "^" then
    return { t = "bol" }
  elseif c == "$" then
    return { t = "eol" }
  elseif c == "\\" then
    local e = self:next()
    if e == "" then self:fail("trailing \\") end
    if SHORTHAND[e] then return { t = "class", items = { SHORTHAND[e] }, negate = false } end
    if e == "b" then return { t = "boundary" } end
    return { t = "char", c = (ESCAPED[e] or e):lower() }
  elseif c == "*" or c == "+" or c == "?" or c == "{" then
    self:fail("nothing to repeat")
  end
  return { t = "char", c = c:lower() }
end

function Parser:quantified()
  local node = self:atom()
  while true do
    local c = self:peek()
    local min, max
    if c == "*" then min, max = 0, math.huge
    elseif c == "+" then min, max = 1, math.huge
    elseif c == "?" then min, max = 0, 1
    elseif c == "{" then
      local a, b, close = self.src:match("^{(%d*)(,?%d*)()}", self.pos)
      if not a or a == "" then break end
      min = tonumber(a)
      if b == "" then max = min
      elseif b == "," then max = math.huge
      else max = tonumber(b:sub(2)) end
      if max < min then self:fail("bad {m,n}") end
      self.pos = close
    else
      break
    end
    self:next()
    local lazy = false
    if self:peek() == "?" then
      lazy = true
      self:next()
    end
    node = { t = "rep", node = node, min = min, max = max, lazy = lazy }
  end
  return node
end

function Parser:sequence()
  local items = {}
  while true do
    local c = self:peek()
    if c == "" or c == "|" or c == ")" then break end
    items[#items + 1] = self:quantified()
  end
  return { t = "seq", items = items }
end

function Parser:alternation()
  local branches = { self:sequence() }
  while self:peek() == "|" do
    self:next()
    branches[#branches + 1] = self:sequence()
  end
  if #branches == 1 then return branches[1] end
  return { t = "alt", branches = branches }
end

local function is_word(s, i)
  return i >= 1 and i <= #s and s:sub(i, i):find("^[%w_]$") ~= nil
end

-- Continuation-passing matching: match(st, node, i, k) returns k's result
-- for the first way `node` matches at `i` of the subject, or nil.  `st` is
-- the match in progress: { s = <subject>, len = #s, steps = <spent> }.
local match

-- Where a class node's character at `i` ends, or nil.
local function class_end(st, node, i)
  if i > st.len then return nil end
  local s = st.s
  local ch = s:sub(i, i)
  local hit = false
  for _, test in ipairs(node.items) do
    if test(ch) then
      hit = true
      break
    end
  end
  if node.negate then
    if hit then return nil end
    return i + utf8_step(s, i)
  end
  return hit and i + 1 or nil
end

local function match_seq(st, node, i, k)
  local items = node.items
  local function step(idx, j)
    if idx > #items then return k(j) end
    return match(st, items[idx], j, function(after) return step(idx + 1, after) end)
  end
  return step(1, i)
end

local function match_rep(st, node, i, k)
  local function try(count, j)
    if node.lazy and count >= node.min then
      local r = k(j)
      if r then return r end
    end
    if count < node.max then
      local r = match(st, node.node, j, function(after)
        if after == j then return nil end -- an empty match would loop forever
        return try(count + 1, after)
      end)
      if r then return r end
    end
    if not node.lazy and count >= node.min then return k(j) end
    return nil
  end
  return try(0, i)
end

-- The first branch that matches, a call of its own: inline, its loop would
-- make every level of the recursion deeper.
local function match_alt(st, node, i, k)
  for _, branch in ipairs(node.branches) do
    local r = match(st, branch, i, k)
    if r then return r end
  end
  return nil
end

function match(st, node, i, k)
  local steps = st.steps + 1
  if steps > STEP_BUDGET then error({ regex = "pattern too complex" }, 0) end
  st.steps = steps
  local t = node.t
  if t == "char" then
    if st.s:sub(i, i + #node.c - 1) == node.c then return k(i + #node.c) end
    return nil
  elseif t == "any" then
    local s = st.s
    if i <= st.len and s:sub(i, i) ~= "\n" then return k(i + utf8_step(s, i)) end
    return nil
  elseif t == "class" then
    local j = class_end(st, node, i)
    if j then return k(j) end
    return nil
  elseif t == "bol" then
    if i == 1 then return k(i) end
    return nil
  elseif t == "eol" then
    if i == st.len + 1 then return k(i) end
    return nil
  elseif t == "boundary" then
    local s = st.s
    if is_word(s, i - 1) ~= is_word(s, i) then return k(i) end
    return nil
  elseif t == "seq" then
    return match_seq(st, node, i, k)
  elseif t == "alt" then
    return match_alt(st, node, i, k)
  end
  return match_rep(st, node, i, k) -- rep
end

--- Compiles a pattern.
-- @tparam string pattern
-- @treturn table|nil the compiled pattern, or nil and a problem
function regex.compile(pattern)
  local p = setmetatable({ src = pattern, pos = 1 }, Parser)
  local ok, tree = pcall(function()
    local t = p:alternation()
    if p.pos <= #p.src then p:fail("unbalanced )") end
    return t
  end)
  if not ok then
    if type(tree) == "table" and tree.regex then return nil, tree.regex end
    error(tree, 0)
  end
  return { tree = tree }
end

--- Whether a compiled pattern matches anywhere in `s`.
-- @treturn boolean|nil the answer, or nil and a problem (pattern too complex)
function regex.find(compiled, s)
  s = s:lower()
  local st = { s = s, len = #s, steps = 0 }
  local done = function(j) return j end
  local ok, found = pcall(function()
    for start = 1, #s + 1 do
      if match(st, compiled.tree, start, done) then return true end
    end
    return false
  end)
  if not ok then
    if type(found) == "table" and found.regex then return nil, found.regex end
    if tostring(found):find("stack overflow") then return nil, "pattern too complex" end
    error(found, 0)
  end
  return found
end

return regex
