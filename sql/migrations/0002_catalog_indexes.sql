-- 0002_catalog_indexes: the catalog's list queries each read one index.
-- newest first within a category: WHERE category_id = ? ORDER BY id DESC
ALTER TABLE goods ADD KEY ix_goods_category_new (category_id, id);
-- the name search: MATCH (name) AGAINST ('+word*' IN BOOLEAN MODE)
ALTER TABLE goods ADD FULLTEXT KEY ft_goods_name (name);
