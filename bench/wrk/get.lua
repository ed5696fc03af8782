-- GET one coupon by id, ids drawn at random from the loaded set.
local c = dofile(os.getenv("BENCH_DIR") .. "/common.lua")
setup = c.setup
done = c.done
local ids
init = function() c.seed(); ids = c.lines(os.getenv("BENCH_IDS_FILE")) end
request = function()
  local id = ids[math.random(#ids)]
  return wrk.format("GET", "/coupons/" .. c.tenant .. "/" .. id, {["Authorization"] = c.key})
end
