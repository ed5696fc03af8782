-- One redemption of one hot coupon: a conditional claim and a record, in one transaction.
\set uid random(1, 100000000)
BEGIN;
UPDATE bench_coupons SET times_used = times_used + 1
  WHERE id = 1 AND (usage_limit IS NULL OR times_used < usage_limit);
INSERT INTO bench_redemptions (coupon_id, user_id, discount, created_at)
  VALUES (1, 'u-' || :uid, 300000, now());
END;
