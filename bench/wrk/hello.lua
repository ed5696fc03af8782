-- Baseline: the trivial JSON route of the same app (/healthz), same server settings.
local c = dofile(os.getenv("BENCH_DIR") .. "/common.lua")
setup = c.setup
done = c.done
request = function() return wrk.format("GET", "/healthz") end
