-- GET one coupon's stats (SPEC 10): its counters and its last 90 days.
local c = dofile(os.getenv("BENCH_DIR") .. "/common.lua")
setup = c.setup
done = c.done
local path = "/coupons/" .. c.tenant .. "/" .. os.getenv("BENCH_COUPON_ID") .. "/stats"
request = function()
  return wrk.format("GET", path, {["Authorization"] = c.key})
end
