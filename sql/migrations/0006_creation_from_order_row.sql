-- 0006_creation_from_order_row: an order's creation is read off the order row itself (its buyer,
-- created_at, and 'flash sale' for a sale's order); order_status_log keeps the changes after it.
-- The flash-sale drain then writes one row per order under the sale's lock, not two. The creation
-- rows written before say nothing the order row does not: they go, so no log shows one twice.
DELETE FROM order_status_log WHERE from_status IS NULL;
