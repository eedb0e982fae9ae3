"""Apply sql/migrations/NNNN_name.sql in order, each once, recorded in schema_migrations."""
from __future__ import annotations

import logging
import re
from pathlib import Path

import asyncmy

from flashsale.db import connect_kwargs
from flashsale.services import search
from flashsale.settings import ROOT, Settings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = ROOT / "sql" / "migrations"
FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

CREATE_DATABASE = "CREATE DATABASE IF NOT EXISTS `{}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
  version CHAR(4) NOT NULL PRIMARY KEY,
  name VARCHAR(200) NOT NULL,
  applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""
# -> rows (version,) already applied
APPLIED_VERSIONS = "SELECT version FROM schema_migrations"
RECORD_VERSION = "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)"
# one migrator at a time, even when several processes start together
TAKE_LOCK = "SELECT GET_LOCK(CONCAT('flashsale_migrate_', DATABASE()), 60)"
DROP_LOCK = "SELECT RELEASE_LOCK(CONCAT('flashsale_migrate_', DATABASE()))"
# migrations whose SQL is followed by a Python step (given the connection) before being recorded
AFTER_SQL = {"0003_goods_search": search.backfill}  # index the goods already there
VALID_DB_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[tuple[str, str, Path]]:
    found = []
    for path in sorted(directory.iterdir()):
        match = FILE_NAME.match(path.name)
        if match:
            found.append((match.group(1), match.group(2), path))
    versions = [v for v, _, _ in found]
    if len(versions) != len(set(versions)):
        raise RuntimeError("two migrations share a number")
    return found


def split_statements(sql: str) -> list[str]:
    """Statements end with ';' at the end of a line; '--' comment lines are dropped."""
    statements, current = [], []
    for line in sql.splitlines():
        # a comment line is dropped wherever it stands, so that one ending in ';' ends nothing
        if line.strip().startswith("--") or (not line.strip() and not current):
            continue
        current.append(line)
        if line.rstrip().endswith(";"):
            text = "\n".join(current).strip().rstrip(";").strip()
            if text:
                statements.append(text)
            current = []
    tail = "\n".join(current).strip()
    if tail:
        statements.append(tail)
    return statements


async def migrate(settings: Settings, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Create the database if missing and apply what is new; returns the versions applied."""
    if not VALID_DB_NAME.match(settings.db_name):
        raise ValueError(f"bad database name {settings.db_name!r}")
    conn = await asyncmy.connect(autocommit=True, **connect_kwargs(settings, database=None))
    try:
        async with conn.cursor() as cur:
            # a schema name cannot be a parameter; it was checked against VALID_DB_NAME above
            await cur.execute(CREATE_DATABASE.format(settings.db_name))
            await cur.execute(f"USE `{settings.db_name}`")
            await cur.execute(TAKE_LOCK)
            if (await cur.fetchone())[0] != 1:
                raise RuntimeError("another migrator held the migration lock for 60 s; try again")
            try:
                await cur.execute(CREATE_LEDGER)
                await cur.execute(APPLIED_VERSIONS)
                applied = {row[0] for row in await cur.fetchall()}
                done = []
                for version, name, path in migration_files(directory):
                    if version in applied:
                        continue
                    log.info("applying migration %s_%s", version, name)
                    # DDL commits implicitly in MySQL, so a file is applied statement by statement;
                    # keep each migration small enough that a half-applied one is easy to finish.
                    for statement in split_statements(path.read_text(encoding="utf-8")):
                        await cur.execute(statement)
                    step = AFTER_SQL.get(f"{version}_{name}")
                    if step is not None:
                        await step(conn)
                    await cur.execute(RECORD_VERSION, (version, name))
                    done.append(version)
                return done
            finally:
                await cur.execute(DROP_LOCK)
    finally:
        await conn.ensure_closed()
