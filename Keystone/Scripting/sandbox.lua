-- Keystone's Lua sandbox. Runs once in every Lua state, with the full standard library, before any
-- script is compiled. It hardens the shared library tables in place (so that string methods reach the
-- hardened functions too), and returns what the host needs: the function that builds one script's
-- environment, the metatables of req/res and of header tables, and the traceback message handler.
-- Scripts never see this chunk's globals: each gets a fresh environment built from an allow-list.
local native, lib_sources = ...

local ERR = native.ERR
local type, error, pcall, select, tostring, tonumber = type, error, pcall, select, tostring, tonumber
local next, pairs, ipairs, rawget, rawequal, rawlen = next, pairs, ipairs, rawget, rawequal, rawlen
local raw_setmetatable, raw_rawset, getmetatable = setmetatable, rawset, getmetatable
local assert, load = assert, load
local string, table, math, utf8, os = string, table, math, utf8, os
local traceback, sethook = debug.traceback, debug.sethook
local mtype, tointeger, min, huge = math.type, math.tointeger, math.min, math.huge

-- The budget hook. Arming it is the watchdog's job (a count hook of 1), and it stays armed until the
-- call returns, so the error comes back on every instruction however often a script catches it.
sethook(function() error("script exceeded its time budget", 0) end, "", 1000000000)

local MAX_LINEAR = 1 << 20        -- bytes a single linear C call may walk (about a millisecond)
local MAX_REP = 4 << 20           -- largest string.rep result
local MAX_RESULTS = 8000          -- values one call may return (unpack, byte, codepoint)
local MAX_FORMAT = 256            -- pack/date format strings
local CHUNK = 4096                -- elements per native call in concat/move

-- Native functions report errors as (ERR, message) instead of raising, because raising from C# would
-- unwind over managed frames; these wrappers raise on their behalf.
local function check(a, ...)
  if a == ERR then error((...), 2) end
  return a, ...
end

local function typename(v)
  if v == nil then return "no value" end
  return type(v)
end

local function str_arg(v, n, fname)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then return tostring(v) end
  error("bad argument #" .. n .. " to '" .. fname .. "' (string expected, got " .. typename(v) .. ")", 3)
end

local function int_arg(v, n, fname, default)
  if v == nil then return default end
  local i = tointeger(v)
  if i == nil and type(v) == "string" then i = tointeger(tonumber(v)) end
  if i == nil then
    error("bad argument #" .. n .. " to '" .. fname .. "' (number has no integer representation)", 3)
  end
  return i
end

local function too_long(s, fname)
  if #s > MAX_LINEAR then error("bad argument #1 to '" .. fname .. "' (string longer than 1 MB)", 3) end
  return s
end

---------------------------------------------------------------------------------------------------
-- string: no dump, bounded repetition and linear calls, pattern matching by Keystone's own engine,
-- which checks the budget as it goes (Lua's matcher can run for seconds inside one C call).
string.dump = nil

local srep, supper, slower, sreverse, sbyte, spack, sunpack, spacksize, ssub =
  string.rep, string.upper, string.lower, string.reverse, string.byte, string.pack, string.unpack,
  string.packsize, string.sub
local nfind = native.find

string.rep = function(s, n, sep)
  s = str_arg(s, 1, "rep")
  n = int_arg(n, 2, "rep")
  sep = sep == nil and "" or str_arg(sep, 3, "rep")
  if n <= 0 then return "" end
  if n > MAX_REP or n * (#s + #sep) > MAX_REP then error("resulting string too large", 2) end
  -- Lua's rep copies once per repetition (millions of calls for short strings); the host fills by doubling.
  return check(native.rep(s, n, sep))
end
string.upper = function(s) return supper(too_long(str_arg(s, 1, "upper"), "upper")) end
string.lower = function(s) return slower(too_long(str_arg(s, 1, "lower"), "lower")) end
string.reverse = function(s) return sreverse(too_long(str_arg(s, 1, "reverse"), "reverse")) end
string.byte = function(s, i, j)
  s = str_arg(s, 1, "byte")
  i = int_arg(i, 2, "byte", 1)
  j = int_arg(j, 3, "byte", i)
  local len = #s
  local a = i < 0 and len + i + 1 or i
  local b = j < 0 and len + j + 1 or j
  if b - a >= MAX_RESULTS then error("string slice too long", 2) end
  return sbyte(s, i, j)
end
local function fmt_arg(f, fname)
  f = str_arg(f, 1, fname)
  if #f > MAX_FORMAT then error("bad argument #1 to '" .. fname .. "' (format longer than 256 bytes)", 3) end
  return f
end
local sformat = string.format
string.format = function(f, ...)
  f = str_arg(f, 1, "format")
  local total, n = #f, select("#", ...)
  for i = 1, n do
    local v = select(i, ...)
    if type(v) == "string" then total = total + #v end
  end
  -- %q escapes byte by byte through the C library; other conversions copy.
  local limit = nfind(f, "%q", 1, 0, true) and 65536 or MAX_LINEAR
  if total > limit then error("bad argument to 'format' (strings longer than " .. limit .. " bytes in total)", 2) end
  return sformat(f, ...)
end
string.pack = function(f, ...) return spack(fmt_arg(f, "pack"), ...) end
string.unpack = function(f, ...) return sunpack(fmt_arg(f, "unpack"), ...) end
string.packsize = function(f) return spacksize(fmt_arg(f, "packsize")) end

string.find = function(s, p, init, plain)
  return check(nfind(str_arg(s, 1, "find"), str_arg(p, 2, "find"), int_arg(init, 3, "find", 1), 0, plain and true or false))
end
string.match = function(s, p, init)
  return check(nfind(str_arg(s, 1, "match"), str_arg(p, 2, "match"), int_arg(init, 3, "match", 1), 1, false))
end

-- Mode 2 of the native find returns start, end, then the captures (or the whole match when the
-- pattern has none): what gmatch and gsub need. They are written here, in Lua, so that replacement
-- functions and tables run as ordinary budgeted Lua.
local pack, unpack, concat = table.pack, table.unpack, table.concat

string.gmatch = function(s, p, init)
  s = str_arg(s, 1, "gmatch")
  p = str_arg(p, 2, "gmatch")
  -- In gmatch a leading '^' is an ordinary character, not an anchor (Lua 5.4).
  if sbyte(p, 1) == 94 then p = "%" .. p end
  local len = #s
  local pos = int_arg(init, 3, "gmatch", 1)
  if pos < 0 then pos = len + pos + 1 end
  if pos < 1 then pos = 1 end
  if pos > len + 1 then pos = len + 2 end
  local last = -1
  return function()
    while pos <= len + 1 do
      local r = pack(nfind(s, p, pos, 2, false))
      if r[1] == ERR then error(r[2], 2) end
      if r[1] == nil then break end
      if r[1] == pos and r[2] == last then
        pos = pos + 1
      else
        pos = r[2] + 1
        last = r[2]
        return unpack(r, 3, r.n)
      end
    end
    pos = len + 2
    return nil
  end
end

local function expand(repl, whole, r)
  if not nfind(repl, "%", 1, 0, true) then return repl end
  local parts, k, i = {}, 0, 1
  while true do
    local j = nfind(repl, "%", i, 0, true)
    if not j then break end
    k = k + 1; parts[k] = ssub(repl, i, j - 1)
    local c = sbyte(repl, j + 1)
    if c == 37 then
      k = k + 1; parts[k] = "%"
    elseif c and c >= 48 and c <= 57 then
      local v = whole
      if c > 48 then
        v = r[2 + c - 48]
        if c - 48 > r.n - 2 then error("invalid capture index %" .. (c - 48), 3) end
      end
      k = k + 1; parts[k] = tostring(v)
    else
      error("invalid use of '%' in replacement string", 3)
    end
    i = j + 2
  end
  k = k + 1; parts[k] = ssub(repl, i)
  return concat(parts)
end

string.gsub = function(s, p, repl, max_n)
  s = str_arg(s, 1, "gsub")
  p = str_arg(p, 2, "gsub")
  local tr = type(repl)
  if tr == "number" then repl = tostring(repl); tr = "string" end
  if tr ~= "string" and tr ~= "table" and tr ~= "function" then
    error("bad argument #3 to 'gsub' (string/function/table expected, got " .. typename(repl) .. ")", 2)
  end
  max_n = int_arg(max_n, 4, "gsub", huge)
  local anchor = sbyte(p, 1) == 94
  local len, src, last, n = #s, 1, -1, 0
  local out, k = {}, 0
  while n < max_n do
    local r = pack(nfind(s, p, src, 2, false))
    if r[1] == ERR then error(r[2], 2) end
    local st, en = r[1], r[2]
    if st == nil then break end
    if st == src and en == last then
      if src > len then break end
      k = k + 1; out[k] = ssub(s, src, src)
      src = src + 1
    else
      if st > src then k = k + 1; out[k] = ssub(s, src, st - 1) end
      n = n + 1
      local whole = ssub(s, st, en)
      local value
      if tr == "string" then value = expand(repl, whole, r)
      elseif tr == "table" then value = repl[r[3]]
      else value = repl(unpack(r, 3, r.n)) end
      if not value then
        value = whole
      elseif type(value) == "number" then
        value = tostring(value)
      elseif type(value) ~= "string" then
        error("invalid replacement value (a " .. type(value) .. ")", 2)
      end
      k = k + 1; out[k] = value
      src = en + 1
      last = en
    end
    if anchor then break end
  end
  if src <= len then k = k + 1; out[k] = ssub(s, src) end
  return concat(out), n
end

-- Nothing can reach or change the string metatable (and through it the real string table).
getmetatable("").__metatable = false

---------------------------------------------------------------------------------------------------
-- table: long native loops are cut into chunks with Lua between them, where the budget applies.
local tmove, tsort = table.move, table.sort

table.concat = function(t, sep, i, j)
  i = i == nil and 1 or i
  j = j == nil and #t or j
  if mtype(i) ~= "integer" or mtype(j) ~= "integer" or j - i < CHUNK then return concat(t, sep, i, j) end
  local parts, k = {}, 0
  for a = i, j, CHUNK do
    k = k + 1
    parts[k] = concat(t, sep, a, min(a + CHUNK - 1, j))
  end
  return concat(parts, sep)
end

table.move = function(a1, f, e, t, a2)
  if mtype(f) == "integer" and mtype(e) == "integer" and mtype(t) == "integer" and e - f >= CHUNK then
    if a2 == nil then a2 = a1 end
    if t > e or t <= f or not rawequal(a1, a2) then
      for i = 0, e - f do a2[t + i] = a1[f + i] end
    else
      for i = e - f, 0, -1 do a2[t + i] = a1[f + i] end
    end
    return a2
  end
  return tmove(a1, f, e, t, a2)
end

local function less(a, b) return a < b end
table.sort = function(t, comp)
  -- Natively, one sort of long strings is one C call of any length; with a Lua comparator the budget
  -- applies between comparisons.
  if comp == nil and type(t) == "table" and rawlen(t) > 16 then comp = less end
  return tsort(t, comp)
end

table.unpack = function(t, i, j)
  i = int_arg(i, 2, "unpack", 1)
  if j == nil then j = #t else j = int_arg(j, 3, "unpack") end
  if j - i >= MAX_RESULTS then error("too many results to unpack", 2) end
  return unpack(t, i, j)
end

---------------------------------------------------------------------------------------------------
-- utf8: linear calls bounded by input length and result count.
local ulen, uoffset, ucodepoint = utf8.len, utf8.offset, utf8.codepoint
utf8.len = function(s, ...) return ulen(too_long(str_arg(s, 1, "len"), "len"), ...) end
utf8.offset = function(s, ...) return uoffset(too_long(str_arg(s, 1, "offset"), "offset"), ...) end
utf8.codepoint = function(s, i, j, lax)
  s = str_arg(s, 1, "codepoint")
  i = int_arg(i, 2, "codepoint", 1)
  j = int_arg(j, 3, "codepoint", i)
  local len = #s
  local a = i < 0 and len + i + 1 or i
  local b = j < 0 and len + j + 1 or j
  if b - a >= MAX_RESULTS then error("string slice too long", 2) end
  return ucodepoint(s, i, j, lax)
end

---------------------------------------------------------------------------------------------------
-- Protected tables: read-only views of the libraries and of `keystone`. The protection lives in a
-- weak side table and in `__metatable`, so a script can neither see nor forge it.
local protected = raw_setmetatable({}, { __mode = "k" })

local function refuse() error("attempt to modify a read-only table", 2) end

local function readonly(t)
  local view = raw_setmetatable({}, {
    __index = t,
    __newindex = refuse,
    -- The iterator reads the real table, but only keys and values come out: never the table itself.
    __pairs = function(self) return function(_, k) return next(t, k) end, self, nil end,
    __len = function() return #t end,
    __metatable = false,
  })
  protected[view] = true
  return view
end

local function safe_setmetatable(t, mt)
  if protected[t] then error("cannot change a protected metatable", 2) end
  -- A finalizer would run outside any budget (in a GC step or when the state closes): Lua only
  -- registers one when __gc is present at setmetatable time, so it is taken away for that moment.
  if type(mt) == "table" and not protected[mt] then
    local gc = rawget(mt, "__gc")
    if gc ~= nil then
      raw_rawset(mt, "__gc", nil)
      raw_setmetatable(t, mt)
      raw_rawset(mt, "__gc", gc)
      return t
    end
  end
  return raw_setmetatable(t, mt)
end

local function safe_rawset(t, k, v)
  if type(t) ~= "table" then error("bad argument #1 to 'rawset' (table expected, got " .. typename(t) .. ")", 2) end
  if protected[t] then error("attempt to modify a read-only table", 2) end
  return raw_rawset(t, k, v)
end

-- xpcall's message handler runs before the stack unwinds, with hooks off when the error came from
-- the budget hook: a looping handler could never be stopped. Here it runs after pcall has returned.
local function finish(h, ok, ...)
  if ok then return true, ... end
  return false, h((...))
end
local function safe_xpcall(f, h, ...) return finish(h, pcall(f, ...)) end

local odate = os.date
local safe_os = {
  time = os.time,
  clock = os.clock,
  date = function(f, t)
    if f ~= nil then f = fmt_arg(f, "date") end
    return odate(f, t)
  end,
}

---------------------------------------------------------------------------------------------------
-- keystone: the script's API. One view per script, so log lines carry the script's name.
local function wrap(f) return function(...) return check(f(...)) end end

local json = readonly({ encode = wrap(native.json_encode), decode = wrap(native.json_decode) })
local b64e, b64d = native.base64_encode, native.base64_decode
local base64 = readonly({
  encode = function(s) return check(b64e(s, false)) end,
  decode = function(s) return check(b64d(s, false)) end,
})
local base64url = readonly({
  encode = function(s) return check(b64e(s, true)) end,
  decode = function(s) return check(b64d(s, true)) end,
})
local njwt, ndecode = native.jwt_verify, native.json_decode
local jwt = readonly({
  verify = function(token, opts)
    if type(opts) ~= "table" then error("bad argument #2 to 'verify' (table expected, got " .. typename(opts) .. ")", 2) end
    if type(token) ~= "string" then return nil, "malformed token" end
    local payload, err = check(njwt(token, opts.alg or "HS256", opts.secret, opts.public_key,
      opts.issuer, opts.audience, opts.leeway or 0))
    if not payload then return nil, err end
    return check(ndecode(payload))
  end,
})
local shared = readonly({
  get = wrap(native.shared_get),
  set = wrap(native.shared_set),
  incr = wrap(native.shared_incr),
  delete = wrap(native.shared_delete),
})
local sha256, hmac, now, env_fn, nlog =
  wrap(native.sha256), wrap(native.hmac_sha256), native.now, wrap(native.env), native.log

local function new_keystone(script)
  return readonly({
    log = function(level, ...) return check(nlog(script, level, ...)) end,
    json = json, base64 = base64, base64url = base64url, jwt = jwt, shared = shared,
    sha256 = sha256, hmac_sha256 = hmac, now = now, env = env_fn,
  })
end

---------------------------------------------------------------------------------------------------
-- require: modules come only from scripts/lib (their sources are handed over by the host), are
-- compiled as text against the requiring script's environment, and are cached per script.
local function make_require(env)
  local loaded = {}
  return function(name)
    if type(name) ~= "string" or not nfind(name, "^[%w_]+[%w_.]*$", 1, 0, false)
      or nfind(name, "..", 1, 0, true) or sbyte(name, -1) == 46 then
      error("bad module name '" .. tostring(name) .. "'", 2)
    end
    local cached = loaded[name]
    if cached ~= nil then return cached end
    local src = lib_sources[name]
    if src == nil then error("module '" .. name .. "' not found in scripts/lib", 2) end
    local chunk, err = load(src, "@" .. src_name(name), "t", env)
    if not chunk then error(err, 2) end
    loaded[name] = true
    local ok, result = pcall(chunk, name)
    if not ok then
      loaded[name] = nil
      error(result, 2)
    end
    if result == nil then result = true end
    loaded[name] = result
    return result
  end
end

function src_name(name)
  return "scripts/lib/" .. (string.gsub(name, "%.", "/")) .. ".lua"
end

local allowed = { "assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal", "rawget", "rawlen",
  "select", "tonumber", "tostring", "type", "getmetatable" }
local base = {
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs, pcall = pcall,
  rawequal = rawequal, rawget = rawget, rawlen = rawlen, select = select, tonumber = tonumber,
  tostring = tostring, type = type, getmetatable = getmetatable,
}
local views = { string = string, table = table, math = math, utf8 = utf8, os = safe_os }

local function new_env(script)
  local env = {}
  for _, name in ipairs(allowed) do env[name] = base[name] end
  env.setmetatable = safe_setmetatable
  env.rawset = safe_rawset
  env.xpcall = safe_xpcall
  env.unpack = table.unpack
  for name, lib in pairs(views) do env[name] = readonly(lib) end
  env.keystone = new_keystone(script)
  env.require = make_require(env)
  env._G = env
  env._VERSION = _VERSION
  return env
end

---------------------------------------------------------------------------------------------------
-- req, res and header tables are userdata whose fields the host reads and writes on access.
-- Each metamethod calls its native half and raises what it reports, at the script's line.
local function index_by(native_index)
  return function(o, k)
    local v, e = native_index(o, k)
    if v == ERR then error(e, 2) end
    return v
  end
end
local function newindex_by(native_newindex)
  return function(o, k, v)
    local a, e = native_newindex(o, k, v)
    if a == ERR then error(e, 2) end
  end
end
-- req, res, req.headers and res.headers are light userdata (see LuaState.PushObject), which share this
-- one metatable; the native half tells them apart.
local htable = native.headers_table
local object_mt = {
  __index = index_by(native.object_index),
  __newindex = newindex_by(native.object_newindex),
  __pairs = function(h)
    local t, e = htable(h)
    if t == ERR then error(e, 2) end
    return next, t, nil
  end,
  __metatable = false,
}

-- Nothing outside this chunk needs the unsafe globals any more.
for _, name in ipairs({ "io", "debug", "package", "load", "loadfile", "dofile", "require", "collectgarbage",
  "print", "coroutine", "os" }) do
  _G[name] = nil
end

return new_env, object_mt, traceback
