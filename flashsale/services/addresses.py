"""Shipping addresses: at most 20 per user, exactly one default once any exists."""
from __future__ import annotations

import time
from typing import Any

from flashsale import db
from flashsale.context import Context
from flashsale.errors import LimitReached, NotFound
from flashsale.bodies import Body, Field
from flashsale.services.auth_cache import store_addresses
from flashsale.validate import PHONE

MAX_PER_USER = 20
ADDRESS_COLUMNS = ("id, receiver_name, phone, province, city, district, detail_address, is_default, "
                   "created_at, updated_at")

# -> the user's addresses, default first, then newest
LIST_ADDRESSES = f"""
SELECT {ADDRESS_COLUMNS} FROM addresses WHERE user_id = %s ORDER BY is_default DESC, id DESC"""
# -> one address of this user, or None (another user's id reads as missing)
ADDRESS_OF_USER = f"SELECT {ADDRESS_COLUMNS} FROM addresses WHERE id = %s AND user_id = %s"
# -> the same row, locked until the transaction ends
ADDRESS_OF_USER_FOR_UPDATE = ADDRESS_OF_USER + " FOR UPDATE"
# -> the user's row, locked: serialises every address write of one user (count, default switch).
# Taken first, always: one user's address writes queue on it and never lock address rows in
# differing orders (the lock order of every write: see services/orders.py)
LOCK_USER = "SELECT id FROM users WHERE id = %s FOR UPDATE"
# -> the ids of the user's addresses, read at the end of a change, written through to Redis after it
ADDRESS_IDS = "SELECT id FROM addresses WHERE user_id = %s ORDER BY id"
# -> {n, defaults}: how many addresses the user has and how many are default (0 or 1)
COUNT_ADDRESSES = """
SELECT COUNT(*) AS n, COALESCE(SUM(is_default), 0) AS defaults FROM addresses WHERE user_id = %s"""
# -> lastrowid
INSERT_ADDRESS = """
INSERT INTO addresses (user_id, receiver_name, phone, province, city, district, detail_address, is_default)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"""
# 1: updated (0 when nothing changed, which is fine here: the row was read under lock)
UPDATE_ADDRESS = """
UPDATE addresses SET receiver_name = %s, phone = %s, province = %s, city = %s, district = %s,
       detail_address = %s
 WHERE id = %s AND user_id = %s"""
# 0 or 1: the user's current default is no longer default
UNSET_DEFAULT = "UPDATE addresses SET is_default = 0 WHERE user_id = %s AND is_default = 1"
# 1: this address of the user is now the default
SET_DEFAULT = "UPDATE addresses SET is_default = 1 WHERE id = %s AND user_id = %s"
# 1: deleted (orders keep their snapshot; their address_id becomes NULL)
DELETE_ADDRESS = "DELETE FROM addresses WHERE id = %s AND user_id = %s"
# -> the id of the user's most recently added address, or None
NEWEST_ADDRESS = "SELECT id FROM addresses WHERE user_id = %s ORDER BY created_at DESC, id DESC LIMIT 1"

ADDRESS_BODY = Body(
    Field.text("receiver_name", max_len=64, default=""),
    Field.text("phone", max_len=32, default="", pattern=PHONE, pattern_message="Not a valid phone number.",
               doc="Spaces and dashes are dropped."),
    Field.text("province", max_len=64, default=""),
    Field.text("city", max_len=64, default=""),
    Field.text("district", max_len=64, required=False, default=""),
    Field.text("detail_address", max_len=255, default=""),
    Field.boolean("is_default"),
)


def address_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "receiver_name": row["receiver_name"], "phone": row["phone"],
        "province": row["province"], "city": row["city"], "district": row["district"],
        "detail_address": row["detail_address"], "is_default": bool(row["is_default"]),
        "created_at": row["created_at"], "updated_at": row["updated_at"],
    }


def clean_address(body: dict[str, Any]) -> dict[str, Any]:
    """The address fields of a body, trimmed and checked; raises Validation with every error."""
    clean = ADDRESS_BODY.clean(body)
    clean["phone"] = clean["phone"].replace(" ", "").replace("-", "")
    return clean


async def list_addresses(ctx: Context, user_id: int) -> list[dict[str, Any]]:
    return [address_json(r) for r in await db.fetch_all(ctx.db, LIST_ADDRESSES, (user_id,))]


# user id -> (their address book, monotonic time read): the sale page under a refresh storm reads
# it here, not MySQL; a write in this process forgets it, one in another is seen within BOOK_MAX_AGE_S
_books: dict[int, tuple[list[dict[str, Any]], float]] = {}
BOOK_MAX_AGE_S = 2.0
BOOKS_MAX = 50_000


async def list_addresses_cached(ctx: Context, user_id: int) -> list[dict[str, Any]]:
    """list_addresses, at most BOOK_MAX_AGE_S old (for pages viewed again and again)."""
    hit = _books.get(user_id)
    if hit is not None and time.monotonic() - hit[1] < BOOK_MAX_AGE_S:
        return hit[0]
    book = await list_addresses(ctx, user_id)
    if len(_books) >= BOOKS_MAX:
        _books.clear()
    _books[user_id] = (book, time.monotonic())
    return book


async def _write(ctx: Context, user_id: int, work):
    """Run an address write; the user's cached book is forgotten before and after it."""
    _books.pop(user_id, None)
    try:
        return await db.run_transaction(ctx.db, work)
    finally:
        _books.pop(user_id, None)


async def get_address(ctx: Context, user_id: int, address_id: int) -> dict[str, Any]:
    row = await db.fetch_one(ctx.db, ADDRESS_OF_USER, (address_id, user_id))
    if row is None:
        raise NotFound("No such address.")
    return address_json(row)


async def _address_ids(cur, user_id: int) -> list[int]:
    await cur.execute(ADDRESS_IDS, (user_id,))
    return [r["id"] for r in await cur.fetchall()]


async def _lock_user(cur, user_id: int) -> None:
    await cur.execute(LOCK_USER, (user_id,))
    if await cur.fetchone() is None:
        raise NotFound("No such user.")


async def create_address(ctx: Context, user_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """Add an address; the user's first one (or one marked is_default) becomes the default."""
    clean = clean_address(body)

    async def work(cur) -> tuple[dict[str, Any], list[int]]:
        await _lock_user(cur, user_id)
        await cur.execute(COUNT_ADDRESSES, (user_id,))
        counts = await cur.fetchone()
        if counts["n"] >= MAX_PER_USER:
            raise LimitReached(f"You can keep at most {MAX_PER_USER} addresses; delete one first.")
        make_default = clean["is_default"] or not counts["defaults"]
        if make_default:
            await cur.execute(UNSET_DEFAULT, (user_id,))
        await cur.execute(INSERT_ADDRESS, (
            user_id, clean["receiver_name"], clean["phone"], clean["province"], clean["city"],
            clean["district"], clean["detail_address"], int(make_default)))
        await cur.execute(ADDRESS_OF_USER, (cur.lastrowid, user_id))
        return await cur.fetchone(), await _address_ids(cur, user_id)

    row, ids = await _write(ctx, user_id, work)
    # after the commit: the purchase path finds the new address in Redis, no MySQL needed
    await store_addresses(ctx, user_id, ids)
    return address_json(row)


async def update_address(ctx: Context, user_id: int, address_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """Change an address; fields left out keep their value. is_default true makes it the default;
    the default itself stays default until another address is chosen (one always is)."""
    current = await get_address(ctx, user_id, address_id)
    clean = clean_address({**current, **{k: v for k, v in body.items() if k != "is_default"},
                           "is_default": body.get("is_default", False)})

    async def work(cur) -> dict[str, Any]:
        await _lock_user(cur, user_id)
        await cur.execute(ADDRESS_OF_USER_FOR_UPDATE, (address_id, user_id))
        if await cur.fetchone() is None:
            raise NotFound("No such address.")
        await cur.execute(UPDATE_ADDRESS, (
            clean["receiver_name"], clean["phone"], clean["province"], clean["city"],
            clean["district"], clean["detail_address"], address_id, user_id))
        if clean["is_default"]:
            await cur.execute(UNSET_DEFAULT, (user_id,))
            await cur.execute(SET_DEFAULT, (address_id, user_id))
        await cur.execute(ADDRESS_OF_USER, (address_id, user_id))
        return await cur.fetchone()

    return address_json(await _write(ctx, user_id, work))


async def set_default(ctx: Context, user_id: int, address_id: int) -> dict[str, Any]:
    """Make this address the default and the old one not, in one transaction."""
    async def work(cur) -> dict[str, Any]:
        await _lock_user(cur, user_id)
        await cur.execute(ADDRESS_OF_USER_FOR_UPDATE, (address_id, user_id))
        if await cur.fetchone() is None:
            raise NotFound("No such address.")
        await cur.execute(UNSET_DEFAULT, (user_id,))
        await cur.execute(SET_DEFAULT, (address_id, user_id))
        await cur.execute(ADDRESS_OF_USER, (address_id, user_id))
        return await cur.fetchone()

    return address_json(await _write(ctx, user_id, work))


async def delete_address(ctx: Context, user_id: int, address_id: int) -> None:
    """Delete an address; when it was the default, the newest remaining one takes over."""
    async def work(cur) -> list[int]:
        await _lock_user(cur, user_id)
        await cur.execute(ADDRESS_OF_USER_FOR_UPDATE, (address_id, user_id))
        row = await cur.fetchone()
        if row is None:
            raise NotFound("No such address.")
        await cur.execute(DELETE_ADDRESS, (address_id, user_id))
        if row["is_default"]:
            await cur.execute(NEWEST_ADDRESS, (user_id,))
            newest = await cur.fetchone()
            if newest is not None:
                await cur.execute(SET_DEFAULT, (newest["id"], user_id))
        return await _address_ids(cur, user_id)

    ids = await _write(ctx, user_id, work)
    # after the commit: the purchase path keeps the user's address ids in Redis; a deleted one leaves it
    await store_addresses(ctx, user_id, ids)
