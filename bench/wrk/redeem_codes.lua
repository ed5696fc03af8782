-- Redeem (BENCH_PATH) cart.lua's one-line cart, by a random user, with a fresh single-use
-- code for every request (SPEC 10's campaign codes), or with BENCH_CODE every time (a
-- coupon's own code: the same cart through the same script, for the comparison).
--
-- No code is sent twice: thread k of BENCH_THREADS takes lines start+k, start+k+n, ... of
-- BENCH_CODES_FILE, in order, and done() writes where the next run starts to
-- BENCH_CODES_STATE, so successive runs (warm-up, alternating rounds) never reuse one.
-- Every answer that is not 2xx counts as an error (a reused code would be 409).
local c = dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local path = os.getenv("BENCH_PATH")
local fixed = os.getenv("BENCH_CODE")
local file = os.getenv("BENCH_CODES_FILE")
local state = os.getenv("BENCH_CODES_STATE")
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")
local keep = tonumber(os.getenv("BENCH_CODES_PER_THREAD") or "50000")

local function start_index()
  local f = state and io.open(state, "r")
  if not f then return 0 end
  local value = tonumber(f:read("*l") or "0") or 0
  f:close()
  return value
end

local threads = {}
setup = function(thread)
  c.setup(thread)
  threads[#threads + 1] = thread
end

local codes = {}
used = 0
non_2xx = 0

init = function()
  c.seed()
  if fixed then return end
  local start, index = start_index(), 0
  for line in io.lines(file) do
    if index >= start and (index - start) % nthreads == thread_id - 1 then
      codes[#codes + 1] = line
      if #codes >= keep then break end
    end
    index = index + 1
  end
end

request = function()
  used = used + 1
  -- Out of codes: one that does not exist (404), so the run shows errors instead of reusing.
  local code = fixed or codes[used] or "NO-CODE-LEFT"
  local body = string.format(
    '{"code": "%s", "user_id": "u-%d", "lines": [{"line_id": "1", "kind": "course_session", ' ..
    '"id": "cs-9", "unit_price": "120.00", "quantity": 1}]}',
    code, math.random(1, 100000000))
  return wrk.format("POST", path,
    {["Authorization"] = c.key, ["Content-Type"] = "application/json"}, body)
end

response = function(status)
  if status < 200 or status > 299 then non_2xx = non_2xx + 1 end
end

done = function(summary, latency, requests)
  local most, bad = 0, 0
  for _, thread in ipairs(threads) do
    most = math.max(most, thread:get("used"))
    bad = bad + thread:get("non_2xx")
  end
  if state and not fixed then
    -- Read where this run started before opening the file for writing (which empties it).
    local next_start = start_index() + most * nthreads
    local f = assert(io.open(state, "w"))
    f:write(tostring(next_start), "\n")
    f:close()
  end
  c.done(summary, latency, requests, bad)
end
