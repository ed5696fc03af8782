-- Get one row by primary key.
\set cid random(1, 10000)
SELECT id, code, times_used, usage_limit, body FROM bench_coupons WHERE id = :cid;
