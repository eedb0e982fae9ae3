-- 0006_stock_shards: a hot sale's stock split over that many Redis hash tags (1-64), so its
-- admissions spread over a cluster's masters. IF NOT EXISTS: another migration may add it too.
ALTER TABLE flash_sales ADD COLUMN IF NOT EXISTS stock_shards TINYINT UNSIGNED NOT NULL DEFAULT 1;
