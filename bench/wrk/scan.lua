-- One scan page (BENCH_PAGE coupons) from a start key drawn at random (keyset paging).
local c = dofile(os.getenv("BENCH_DIR") .. "/common.lua")
setup = c.setup
done = c.done
local keys
local page = os.getenv("BENCH_PAGE") or "50"
init = function() c.seed(); keys = c.lines(os.getenv("BENCH_KEYS_FILE")) end
request = function()
  local path = "/coupons/" .. c.tenant .. "?limit=" .. page
  if #keys > 0 then path = path .. "&exclusiveStartKey=" .. keys[math.random(#keys)] end
  return wrk.format("GET", path, {["Authorization"] = c.key})
end
