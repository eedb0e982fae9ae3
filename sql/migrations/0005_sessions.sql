-- 0005_sessions: server-side sessions (logout ends a session for every copy of its cookie) and a
-- sale's stock_shards setting (over how many Redis hash tags a hot sale's stock is split).
CREATE TABLE user_sessions (
  id CHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  user_id BIGINT UNSIGNED NOT NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  expires_at DATETIME(3) NOT NULL,
  PRIMARY KEY (id),
  KEY ix_user_sessions_user (user_id),
  KEY ix_user_sessions_expires (expires_at),
  CONSTRAINT fk_user_sessions_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

ALTER TABLE flash_sales
  ADD COLUMN stock_shards TINYINT UNSIGNED NOT NULL DEFAULT 1 AFTER per_user_limit,
  ADD CONSTRAINT chk_flash_sales_shards CHECK (stock_shards BETWEEN 1 AND 64);
