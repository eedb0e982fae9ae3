-- schema.sql: the full current schema, equal to applying every file in sql/migrations/ in order.
-- Money is DECIMAL(10,2); times are DATETIME(3) in UTC (connections run with time_zone '+00:00').

CREATE TABLE users (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  username VARCHAR(32) NOT NULL,
  email VARCHAR(254) NULL,
  phone VARCHAR(32) NULL,
  password_hash VARCHAR(255) NOT NULL,
  role ENUM('user', 'admin') NOT NULL DEFAULT 'user',
  is_active TINYINT(1) NOT NULL DEFAULT 1,
  session_epoch INT UNSIGNED NOT NULL DEFAULT 0,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  UNIQUE KEY uq_users_username (username),
  UNIQUE KEY uq_users_email (email),
  UNIQUE KEY uq_users_phone (phone),
  KEY ix_users_role (role)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- a user's live sessions: the cookie names one; logout deletes it (cached in u:{id}:auth as s:<id>)
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

CREATE TABLE password_resets (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  user_id BIGINT UNSIGNED NOT NULL,
  token_hash CHAR(64) NOT NULL,
  expires_at DATETIME(3) NOT NULL,
  used_at DATETIME(3) NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  UNIQUE KEY uq_password_resets_token (token_hash),
  KEY ix_password_resets_user (user_id),
  CONSTRAINT fk_password_resets_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE categories (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT,
  name VARCHAR(64) NOT NULL,
  description VARCHAR(500) NOT NULL DEFAULT '',
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  UNIQUE KEY uq_categories_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE goods (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  category_id INT UNSIGNED NOT NULL,
  name VARCHAR(200) NOT NULL,
  description TEXT NOT NULL,
  price DECIMAL(10,2) NOT NULL,
  original_price DECIMAL(10,2) NULL,
  stock INT UNSIGNED NOT NULL DEFAULT 0,
  sales INT UNSIGNED NOT NULL DEFAULT 0,
  photo VARCHAR(255) NULL,
  brand VARCHAR(100) NOT NULL DEFAULT '',
  model VARCHAR(100) NOT NULL DEFAULT '',
  weight VARCHAR(64) NOT NULL DEFAULT '',
  dimensions VARCHAR(100) NOT NULL DEFAULT '',
  material VARCHAR(100) NOT NULL DEFAULT '',
  warranty VARCHAR(100) NOT NULL DEFAULT '',
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  KEY ix_goods_category_sales (category_id, sales, id),
  KEY ix_goods_category_price (category_id, price, id),
  KEY ix_goods_sales (sales, id),
  KEY ix_goods_price (price, id),
  KEY ix_goods_name (name),
  KEY ix_goods_category_new (category_id, id),
  FULLTEXT KEY ft_goods_name (name),
  CONSTRAINT fk_goods_category FOREIGN KEY (category_id) REFERENCES categories (id),
  CONSTRAINT chk_goods_price CHECK (price >= 0),
  CONSTRAINT chk_goods_original_price CHECK (original_price IS NULL OR original_price >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- an n-gram index of goods text, kept by flashsale/services/search.py (see 0003_goods_search)
CREATE TABLE goods_search (
  gram VARBINARY(12) NOT NULL,
  goods_id BIGINT UNSIGNED NOT NULL,
  field TINYINT UNSIGNED NOT NULL,
  PRIMARY KEY (gram, goods_id, field),
  KEY ix_goods_search_goods (goods_id, field),
  CONSTRAINT fk_goods_search_goods FOREIGN KEY (goods_id) REFERENCES goods (id) ON DELETE CASCADE
) ENGINE=InnoDB;

CREATE TABLE addresses (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  user_id BIGINT UNSIGNED NOT NULL,
  receiver_name VARCHAR(64) NOT NULL,
  phone VARCHAR(32) NOT NULL,
  province VARCHAR(64) NOT NULL,
  city VARCHAR(64) NOT NULL,
  district VARCHAR(64) NOT NULL DEFAULT '',
  detail_address VARCHAR(255) NOT NULL,
  is_default TINYINT(1) NOT NULL DEFAULT 0,
  -- one default per user: the unique key sees user_id only on the default row
  default_owner BIGINT UNSIGNED AS (IF(is_default = 1, user_id, NULL)) PERSISTENT,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  KEY ix_addresses_user (user_id, id),
  UNIQUE KEY uq_addresses_default (default_owner),
  CONSTRAINT fk_addresses_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE flash_sales (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  goods_id BIGINT UNSIGNED NOT NULL,
  price DECIMAL(10,2) NOT NULL,
  total_stock INT UNSIGNED NOT NULL,
  -- units held by orders that are not cancelled
  sold INT UNSIGNED NOT NULL DEFAULT 0,
  per_user_limit SMALLINT UNSIGNED NOT NULL DEFAULT 1,
  -- Redis hash tags the sale's stock is split over (1-64)
  stock_shards TINYINT UNSIGNED NOT NULL DEFAULT 1,
  start_time DATETIME(3) NOT NULL,
  end_time DATETIME(3) NOT NULL,
  status ENUM('scheduled', 'cancelled') NOT NULL DEFAULT 'scheduled',
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  KEY ix_flash_sales_goods (goods_id, end_time),
  KEY ix_flash_sales_window (status, end_time, start_time),
  KEY ix_flash_sales_start (start_time),
  CONSTRAINT fk_flash_sales_goods FOREIGN KEY (goods_id) REFERENCES goods (id),
  CONSTRAINT chk_flash_sales_sold CHECK (sold <= total_stock),
  CONSTRAINT chk_flash_sales_window CHECK (end_time > start_time),
  CONSTRAINT chk_flash_sales_limit CHECK (per_user_limit >= 1),
  CONSTRAINT chk_flash_sales_price CHECK (price >= 0),
  CONSTRAINT chk_flash_sales_shards CHECK (stock_shards BETWEEN 1 AND 64)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE orders (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  order_number VARCHAR(32) NOT NULL,
  user_id BIGINT UNSIGNED NOT NULL,
  goods_id BIGINT UNSIGNED NOT NULL,
  flash_sale_id BIGINT UNSIGNED NULL,
  -- the flash-sale admission request this order came from: makes the consumer idempotent
  request_id VARCHAR(40) NULL,
  quantity SMALLINT UNSIGNED NOT NULL,
  unit_price DECIMAL(10,2) NOT NULL,
  total_amount DECIMAL(10,2) NOT NULL,
  payment_method ENUM('alipay', 'wechat', 'card') NOT NULL,
  status ENUM('pending', 'paid', 'shipped', 'completed', 'cancelled') NOT NULL DEFAULT 'pending',
  address_id BIGINT UNSIGNED NULL,
  receiver_name VARCHAR(64) NOT NULL,
  phone VARCHAR(32) NOT NULL,
  province VARCHAR(64) NOT NULL,
  city VARCHAR(64) NOT NULL,
  district VARCHAR(64) NOT NULL DEFAULT '',
  detail_address VARCHAR(255) NOT NULL,
  pay_deadline DATETIME(3) NULL,  -- set on every order while pending (the pay window); the sweeper cancels after it
  paid_at DATETIME(3) NULL,
  shipped_at DATETIME(3) NULL,
  completed_at DATETIME(3) NULL,
  cancelled_at DATETIME(3) NULL,
  transaction_id VARCHAR(64) NULL,
  deleted_by_user TINYINT(1) NOT NULL DEFAULT 0,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  UNIQUE KEY uq_orders_number (order_number),
  UNIQUE KEY uq_orders_request (request_id),
  KEY ix_orders_user (user_id, deleted_by_user, status, id),
  KEY ix_orders_sale_user (flash_sale_id, user_id, status),
  KEY ix_orders_status_deadline (status, pay_deadline),
  KEY ix_orders_created (created_at),
  KEY ix_orders_goods (goods_id),
  CONSTRAINT fk_orders_user FOREIGN KEY (user_id) REFERENCES users (id),
  CONSTRAINT fk_orders_goods FOREIGN KEY (goods_id) REFERENCES goods (id),
  CONSTRAINT fk_orders_sale FOREIGN KEY (flash_sale_id) REFERENCES flash_sales (id),
  CONSTRAINT fk_orders_address FOREIGN KEY (address_id) REFERENCES addresses (id) ON DELETE SET NULL,
  CONSTRAINT chk_orders_quantity CHECK (quantity BETWEEN 1 AND 99),
  CONSTRAINT chk_orders_amount CHECK (total_amount >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- the changes of an order's status after its creation (its creation is read off the order row)
CREATE TABLE order_status_log (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  order_id BIGINT UNSIGNED NOT NULL,
  from_status VARCHAR(16) NULL,
  to_status VARCHAR(16) NOT NULL,
  -- the user who made the change; NULL with actor 'system' for the sweeper and consumers
  actor_id BIGINT UNSIGNED NULL,
  actor VARCHAR(32) NOT NULL,
  remark VARCHAR(255) NOT NULL DEFAULT '',
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  KEY ix_order_status_log_order (order_id, id),
  CONSTRAINT fk_order_status_log_order FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE order_remarks (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  order_id BIGINT UNSIGNED NOT NULL,
  admin_id BIGINT UNSIGNED NULL,
  content VARCHAR(1000) NOT NULL,
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (id),
  KEY ix_order_remarks_order (order_id, id),
  CONSTRAINT fk_order_remarks_order FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE,
  CONSTRAINT fk_order_remarks_admin FOREIGN KEY (admin_id) REFERENCES users (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- requests that were admitted but could not become an order: their stock went back
CREATE TABLE seckill_failures (
  request_id VARCHAR(40) NOT NULL,
  flash_sale_id BIGINT UNSIGNED NOT NULL,
  user_id BIGINT UNSIGNED NOT NULL,
  reason VARCHAR(64) NOT NULL,
  detail VARCHAR(500) NOT NULL DEFAULT '',
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (request_id),
  KEY ix_seckill_failures_sale (flash_sale_id, user_id),
  CONSTRAINT fk_seckill_failures_sale FOREIGN KEY (flash_sale_id) REFERENCES flash_sales (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
