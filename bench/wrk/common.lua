-- Shared by every scenario: configuration from the environment, per-thread random seeds,
-- and one JSON line with the figures the runner reads.
local M = {}

M.tenant = os.getenv("BENCH_TENANT") or "bench"
M.key = os.getenv("BENCH_KEY") or ""

function M.lines(path)
  local items = {}
  if path == nil then return items end
  for line in io.lines(path) do
    if #line > 0 then items[#items + 1] = line end
  end
  return items
end

local counter = 0
function M.setup(thread)
  counter = counter + 1
  thread:set("thread_id", counter)
end

function M.seed()
  math.randomseed(os.time() * 1000 + (thread_id or 0) * 7919)
end

-- `non_2xx`, when a script counts its answers itself (a `response` function), replaces wrk's
-- own count of status errors (which counts only 4xx and 5xx).
function M.done(summary, latency, requests, non_2xx)
  local e = summary.errors
  local status = non_2xx or e.status
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "errors": %d, "status_errors": %d, ' ..
    '"p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + status + e.timeout,
    status, latency:percentile(50), latency:percentile(99)))
end

return M
