-- 0003_goods_search: an n-gram index of goods text (name, brand and model, category name), kept by
-- flashsale/services/search.py in the transaction of every goods write. migrate.py fills it for
-- the goods already there (search.backfill) before recording this version, so IF NOT EXISTS lets
-- a failed backfill run again.
-- gram: 1-3 characters as UTF-8 bytes (VARBINARY: no collation, trailing spaces count);
-- field: 1 name, 2 brand/model, 3 category name
CREATE TABLE IF NOT EXISTS goods_search (
  gram VARBINARY(12) NOT NULL,
  goods_id BIGINT UNSIGNED NOT NULL,
  field TINYINT UNSIGNED NOT NULL,
  PRIMARY KEY (gram, goods_id, field),
  KEY ix_goods_search_goods (goods_id, field),
  CONSTRAINT fk_goods_search_goods FOREIGN KEY (goods_id) REFERENCES goods (id) ON DELETE CASCADE
) ENGINE=InnoDB;
