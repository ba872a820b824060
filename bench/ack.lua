-- wrk script for bench/ack.sh: every request uses the next personal-link token of this
-- thread's share of a token file, so each request acknowledges another guardian.
--
--   ACK_TOKENS=tokens.txt ACK_THREADS=2 ACK_MODE=ack ACK_OUT=result \
--     wrk -t2 -c64 -d20s --latency -s bench/ack.lua http://127.0.0.1:PORT
--
-- ACK_MODE: ack     POST /api/v1/receipts/{token}/ack
--           get     GET  /api/v1/receipts/{token}
--           plain   the URL as given (e.g. /healthz; no tokens)
-- Thread n (1-based) takes tokens n, n + ACK_THREADS, …, so no two threads share a token;
-- when a thread has used all of its tokens it starts again from its first one (repeats
-- are idempotent) and counts the wrap.
--
-- Answers are counted per status in response(). Every 2xx answer is another guardian (a
-- thread's tokens are distinct) until its walk wraps, after which all of its tokens have
-- been answered; done() writes that number as `distinct` to ACK_OUT (key=value lines), and
-- ack.sh compares it with the acknowledgements counted in the database, as the issue
-- defines "none lost". (The answer does not name the guardian, so no name list.)

local mode = os.getenv("ACK_MODE") or "ack"
local threads = {}
local next_id = 1

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

-- Per thread (each has its own Lua state).
local mine = {}
local pos = 1
token_count = 0
ok = 0
wraps = 0
statuses = {}

function init(args)
  if mode == "plain" then
    return
  end
  local stride = tonumber(os.getenv("ACK_THREADS") or "1")
  local file = assert(io.open(assert(os.getenv("ACK_TOKENS"), "ACK_TOKENS is not set"), "r"))
  local i = 0
  for line in file:lines() do
    if (i % stride) == (id - 1) and #line > 0 then
      mine[#mine + 1] = line
    end
    i = i + 1
  end
  file:close()
  assert(#mine > 0, "no tokens for thread " .. id)
  token_count = #mine
end

local empty = {}

function request()
  if mode == "plain" or #mine == 0 then
    -- (#mine is 0 only in wrk's main state, which calls request() once to check it)
    return wrk.format("GET", wrk.path)
  end
  local token = mine[pos]
  pos = pos + 1
  if pos > #mine then
    pos = 1
    wraps = wraps + 1
  end
  if mode == "get" then
    return wrk.format("GET", "/api/v1/receipts/" .. token)
  end
  return wrk.format("POST", "/api/v1/receipts/" .. token .. "/ack", empty, "")
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status >= 200 and status < 300 then
    ok = ok + 1
  end
end

function done(summary, latency, requests)
  local out = assert(os.getenv("ACK_OUT"), "ACK_OUT is not set")
  local total_ok, total_distinct, total_wraps, all_statuses = 0, 0, 0, {}
  for _, thread in ipairs(threads) do
    local thread_ok = thread:get("ok")
    total_ok = total_ok + thread_ok
    total_wraps = total_wraps + thread:get("wraps")
    for status, count in pairs(thread:get("statuses")) do
      all_statuses[status] = (all_statuses[status] or 0) + count
    end
    if thread:get("wraps") > 0 then
      total_distinct = total_distinct + thread:get("token_count")
    else
      total_distinct = total_distinct + thread_ok
    end
  end
  local f = assert(io.open(out, "w"))
  local seconds = summary.duration / 1e6
  local e = summary.errors
  f:write(string.format("requests=%d\n", summary.requests))
  f:write(string.format("seconds=%.3f\n", seconds))
  f:write(string.format("ok=%d\n", total_ok))
  f:write(string.format("ok_per_second=%.0f\n", total_ok / seconds))
  f:write(string.format("distinct=%d\n", total_distinct))
  f:write(string.format("wraps=%d\n", total_wraps))
  f:write(string.format("p50_ms=%.2f\n", latency:percentile(50) / 1000))
  f:write(string.format("p90_ms=%.2f\n", latency:percentile(90) / 1000))
  f:write(string.format("p99_ms=%.2f\n", latency:percentile(99) / 1000))
  f:write(string.format("max_ms=%.2f\n", latency.max / 1000))
  f:write(string.format("errors=connect:%d,read:%d,write:%d,status:%d,timeout:%d\n",
    e.connect, e.read, e.write, e.status, e.timeout))
  local parts = {}
  for status, count in pairs(all_statuses) do
    parts[#parts + 1] = status .. ":" .. count
  end
  table.sort(parts)
  f:write("statuses=" .. table.concat(parts, ",") .. "\n")
  f:close()
end
