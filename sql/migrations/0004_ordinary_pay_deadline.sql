-- 0004_ordinary_pay_deadline: every pending order has a pay deadline, ordinary orders too.
-- Orders placed before this had none: they get the default pay window (15 minutes) from their
-- creation, so the sweeper cancels the old unpaid ones and their stock returns.
UPDATE orders SET pay_deadline = created_at + INTERVAL 900 SECOND
 WHERE status = 'pending' AND pay_deadline IS NULL;
