"""Migrations apply once, are all recorded, and sql/schema.sql builds the very same schema."""
from __future__ import annotations

import asyncio
import os

import asyncmy
import pytest

from flashsale.db import connect_kwargs
from flashsale.migrate import FILE_NAME, MIGRATIONS_DIR, migrate, migration_files, split_statements
from flashsale.settings import ROOT

SCHEMA_SQL = ROOT / "sql" / "schema.sql"

# what makes two schemas the same, table by table (the ledger exists only where migrate() ran)
COLUMNS = """
SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_DEFAULT, IS_NULLABLE, COLUMN_TYPE,
       CHARACTER_SET_NAME, COLLATION_NAME, EXTRA, GENERATION_EXPRESSION
  FROM information_schema.COLUMNS
 WHERE TABLE_SCHEMA = %s AND TABLE_NAME <> 'schema_migrations'
 ORDER BY TABLE_NAME, ORDINAL_POSITION"""
INDEXES = """
SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, SUB_PART
  FROM information_schema.STATISTICS
 WHERE TABLE_SCHEMA = %s AND TABLE_NAME <> 'schema_migrations'
 ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX"""
CONSTRAINTS = """
SELECT k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME,
       r.UPDATE_RULE, r.DELETE_RULE
  FROM information_schema.KEY_COLUMN_USAGE k
  LEFT JOIN information_schema.REFERENTIAL_CONSTRAINTS r
    ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME
 WHERE k.TABLE_SCHEMA = %s AND k.TABLE_NAME <> 'schema_migrations'
 ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION"""
CHECKS = """
SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE
  FROM information_schema.CHECK_CONSTRAINTS
 WHERE CONSTRAINT_SCHEMA = %s
 ORDER BY TABLE_NAME, CONSTRAINT_NAME"""
TABLES = """
SELECT TABLE_NAME, ENGINE, TABLE_COLLATION
  FROM information_schema.TABLES
 WHERE TABLE_SCHEMA = %s AND TABLE_NAME <> 'schema_migrations'
 ORDER BY TABLE_NAME"""
LEDGER = "SELECT version, name, applied_at FROM schema_migrations ORDER BY version"


async def query(settings, sql: str, args=(), database: str | None = None) -> list[tuple]:
    conn = await asyncmy.connect(autocommit=True, **connect_kwargs(settings, database=database))
    try:
        async with conn.cursor() as cur:
            await cur.execute(sql, args)
            return list(await cur.fetchall())
    finally:
        await conn.ensure_closed()


async def run_script(settings, database: str, statements: list[str]) -> None:
    conn = await asyncmy.connect(autocommit=True, **connect_kwargs(settings, database=None))
    try:
        async with conn.cursor() as cur:
            await cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            await cur.execute(f"USE `{database}`")
            for statement in statements:
                await cur.execute(statement)
    finally:
        await conn.ensure_closed()


@pytest.fixture
async def scratch_db(settings):
    """A database name of this test's own, dropped afterwards whatever happened."""
    name = f"flashsale_scratch_{os.getpid()}"
    drop = f"DROP DATABASE IF EXISTS `{name}`"
    await query(settings, drop)
    yield name
    await query(settings, drop)


def test_every_file_in_the_migrations_folder_is_a_migration():
    # a misnamed file would be skipped without a word
    names = sorted(p.name for p in MIGRATIONS_DIR.iterdir() if not p.name.startswith("."))
    assert names and all(FILE_NAME.match(n) for n in names), names
    versions = [v for v, _, _ in migration_files()]
    assert versions == sorted(versions)
    assert versions[0] == "0001"


async def test_migrate_again_applies_nothing_and_keeps_the_ledger(settings):
    before = await query(settings, LEDGER, database=settings.db_name)
    assert await migrate(settings) == []
    assert await query(settings, LEDGER, database=settings.db_name) == before


async def test_every_migration_file_is_recorded(settings):
    rows = await query(settings, "SELECT version, name FROM schema_migrations ORDER BY version",
                       database=settings.db_name)
    assert rows == [(version, name) for version, name, _ in migration_files()]


async def test_migrate_builds_a_new_database_from_nothing(settings, scratch_db):
    fresh = settings.replace(db_name=scratch_db)
    assert await migrate(fresh) == [version for version, _, _ in migration_files()]
    assert await migrate(fresh) == []


async def test_two_migrators_starting_together_apply_each_file_once(settings, scratch_db):
    fresh = settings.replace(db_name=scratch_db)
    first, second = await asyncio.gather(migrate(fresh), migrate(fresh))
    assert sorted([first, second], key=len) == [[], [version for version, _, _ in migration_files()]]
    rows = await query(settings, "SELECT version FROM schema_migrations ORDER BY version", database=scratch_db)
    assert [r[0] for r in rows] == [version for version, _, _ in migration_files()]


async def test_schema_sql_equals_all_migrations_applied(settings, scratch_db):
    await run_script(settings, scratch_db, split_statements(SCHEMA_SQL.read_text(encoding="utf-8")))
    for sql in (TABLES, COLUMNS, INDEXES, CONSTRAINTS, CHECKS):
        from_migrations = await query(settings, sql, (settings.db_name,))
        from_schema = await query(settings, sql, (scratch_db,))
        assert from_migrations, sql
        assert from_schema == from_migrations, sql


def test_split_statements_keeps_semicolons_inside_lines():
    sql = "-- header\nCREATE TABLE a (x VARCHAR(3) DEFAULT ';');\n\n-- note\nINSERT INTO a VALUES ('1');\nSELECT 1"
    assert split_statements(sql) == ["CREATE TABLE a (x VARCHAR(3) DEFAULT ';')", "INSERT INTO a VALUES ('1')",
                                     "SELECT 1"]


def test_split_statements_ignores_semicolons_in_comment_lines():
    sql = "CREATE TABLE a (\n  -- units held; never below zero;\n  x INT\n);\n"
    assert split_statements(sql) == ["CREATE TABLE a (\n  x INT\n)"]


async def test_0006_drops_the_creation_rows_the_order_row_now_stands_for(settings, scratch_db, tmp_path):
    """Orders written before 0006 keep their later log rows; their creation rows go (the log
    shows the creation from the order row), so no log shows it twice."""
    fresh = settings.replace(db_name=scratch_db)
    before = tmp_path / "before"
    before.mkdir()
    for version, name, path in migration_files():
        if version < "0006":
            (before / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    await migrate(fresh, before)
    conn = await asyncmy.connect(autocommit=True, **connect_kwargs(fresh))
    try:
        async with conn.cursor() as cur:
            await cur.execute("INSERT INTO users (username, password_hash) VALUES ('old_buyer', 'x')")
            user_id = cur.lastrowid
            await cur.execute("INSERT INTO categories (name, description) VALUES ('Old', '')")
            await cur.execute("INSERT INTO goods (category_id, name, description, price, stock)"
                              " VALUES (%s, 'Old kettle', '', 9.90, 5)", (cur.lastrowid,))
            await cur.execute(
                "INSERT INTO orders (order_number, user_id, goods_id, quantity, unit_price, total_amount,"
                " payment_method, status, receiver_name, phone, province, city, district, detail_address)"
                " VALUES ('OLD1', %s, %s, 1, 9.90, 9.90, 'alipay', 'paid', 'R', '13800000000', 'P', 'C', 'D', 'A')",
                (user_id, cur.lastrowid))
            order_id = cur.lastrowid
            await cur.execute(
                "INSERT INTO order_status_log (order_id, from_status, to_status, actor_id, actor, remark) VALUES"
                " (%s, NULL, 'pending', %s, 'user', ''), (%s, 'pending', 'paid', %s, 'user', 'paid by alipay')",
                (order_id, user_id, order_id, user_id))
    finally:
        await conn.ensure_closed()
    assert await migrate(fresh) == ["0006"]
    rows = await query(settings, "SELECT from_status, to_status, remark FROM order_status_log ORDER BY id",
                       database=scratch_db)
    assert rows == [("pending", "paid", "paid by alipay")]
