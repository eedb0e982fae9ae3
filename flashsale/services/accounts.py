"""Accounts: register, log in, change and reset passwords, roles and bans."""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import secrets
import unicodedata
from typing import Any

from asyncmy.errors import IntegrityError

from flashsale import db, ratelimit
from flashsale.context import Context
from flashsale.errors import (
    Banned, BadCredentials, EmailTaken, HasOrders, InvalidToken, LastAdmin, NotFound, OwnAccount, PhoneTaken,
    UsernameTaken, WrongOldPassword,
)
from flashsale.passwords import needs_rehash
from flashsale.bodies import Body, Field
from flashsale.services.auth_cache import cache_addresses, cache_auth_state, forget_user
from flashsale.settings import Settings
from flashsale.validate import EMAIL, PHONE, USERNAME

log = logging.getLogger(__name__)

USER_COLUMNS = "id, username, role, email, phone, is_active, session_epoch, created_at"

# -> lastrowid; DUP_ENTRY on uq_users_username / uq_users_email / uq_users_phone
INSERT_USER = """
INSERT INTO users (username, email, phone, password_hash, role)
VALUES (%s, %s, %s, %s, %s)"""
# -> one user row with its hash, or None
USER_FOR_LOGIN = f"SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = %s"
# -> one user row, or None
USER_BY_ID = f"SELECT {USER_COLUMNS} FROM users WHERE id = %s"
USER_WITH_HASH_BY_ID = f"SELECT {USER_COLUMNS}, password_hash FROM users WHERE id = %s"
# -> one user row, or None
USER_BY_NAME_OR_EMAIL = f"SELECT {USER_COLUMNS} FROM users WHERE username = %s OR email = %s LIMIT 1"
# 1: re-hashed with the current cost (only if the hash is still the one we verified)
REHASH = "UPDATE users SET password_hash = %s WHERE id = %s AND password_hash = %s"
# 1: new password set and every session of the user ended
SET_PASSWORD = """
UPDATE users SET password_hash = %s, session_epoch = session_epoch + 1 WHERE id = %s"""
# -> the new epoch inside the same transaction
EPOCH_OF = "SELECT session_epoch, role, is_active FROM users WHERE id = %s"
INSERT_RESET = "INSERT INTO password_resets (user_id, token_hash, expires_at) VALUES (%s, %s, %s)"
# 1: the token was unused and fresh, and is now used (one winner when two race)
USE_RESET = """
UPDATE password_resets SET used_at = UTC_TIMESTAMP(3)
 WHERE token_hash = %s AND used_at IS NULL AND expires_at > UTC_TIMESTAMP(3)"""
# -> the token's user
RESET_USER = "SELECT user_id FROM password_resets WHERE token_hash = %s"
# n: the user's other unused reset links, spent because the password they were for is gone
SPEND_RESETS = "UPDATE password_resets SET used_at = UTC_TIMESTAMP(3) WHERE user_id = %s AND used_at IS NULL"
# 1: changed; role/active changes bump the epoch so that the change reaches live sessions.
# SET assigns left to right, so the epoch goes first, while role and is_active are still the old ones.
UPDATE_PROFILE = """
UPDATE users SET session_epoch = session_epoch + IF(role <> %s OR is_active <> %s, 1, 0),
       role = %s, is_active = %s, email = %s, phone = %s
 WHERE id = %s"""
# -> number of admins that may log in
ACTIVE_ADMINS = "SELECT COUNT(*) FROM users WHERE role = 'admin' AND is_active = 1"
USER_ORDER_COUNT = "SELECT COUNT(*) FROM orders WHERE user_id = %s"
DELETE_USER = "DELETE FROM users WHERE id = %s"
# -> page of users matching a username/email/phone prefix
SEARCH_USERS = f"""
SELECT {USER_COLUMNS} FROM users
 WHERE (%s = '' OR username LIKE %s OR email LIKE %s OR phone LIKE %s)
 ORDER BY id DESC LIMIT %s OFFSET %s"""
COUNT_USERS = """
SELECT COUNT(*) FROM users
 WHERE (%s = '' OR username LIKE %s OR email LIKE %s OR phone LIKE %s)"""

ROLES = frozenset({"user", "admin"})

EMAIL_FIELD = Field.text("email", max_len=254, required=False, pattern=EMAIL,
                         pattern_message="Not a valid email address.")
PHONE_FIELD = Field.text("phone", max_len=32, required=False, pattern=PHONE,
                         pattern_message="Not a valid phone number.",
                         doc="Spaces and dashes are dropped.")
REGISTER_BODY = Body(
    Field.text("username", min_len=3, max_len=32, pattern=USERNAME,
               pattern_message="Use 3 to 32 letters, digits or underscores."),
    Field.password("password"),
    EMAIL_FIELD,
    PHONE_FIELD,
    doc="At least one of email and phone.",
)
# checked only when a field is missing or not text: a long name or password is cut, then fails to match
LOGIN_BODY = Body(Field.text("username", max_len=64), Field.text("password", max_len=128))
PASSWORD_BODY = Body(Field.password("old_password", min_len=1, max_len=None), Field.password("new_password"))
# never refused (the answer is 202 whatever is sent): the document's description only
RESET_REQUEST_BODY = Body(Field.text("username", max_len=254, required=False),
                          Field.text("email", max_len=254, required=False),
                          doc="A username or an email address.")
RESET_BODY = Body(Field.text("token", max_len=200), Field.password("new_password"))
USER_EDIT_BODY = Body(Field.choice("role", ROLES, required=False), Field.boolean("is_active"),
                      EMAIL_FIELD, PHONE_FIELD)


def user_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "username": row["username"], "role": row["role"],
        "email": row["email"], "phone": row["phone"], "created_at": row["created_at"],
    }


def admin_user_json(row: dict[str, Any]) -> dict[str, Any]:
    return {**user_json(row), "is_active": bool(row["is_active"])}


def _contact(clean: dict[str, Any]) -> tuple[str | None, str | None]:
    """The checked email (lower case) and phone (without spaces and dashes)."""
    email, phone = clean["email"], clean["phone"]
    if phone is not None:
        phone = phone.replace(" ", "").replace("-", "")
    return (email.lower() if email else None), phone


# "Duplicate entry 'x' for key 'uq_users_email'" (MySQL 8 writes 'users.uq_users_email'); only the
# key name decides, since the entry itself is user input and may contain a key's name
DUPLICATE_KEY = re.compile(r"for key '(?:[^']*\.)?([^'.]+)'$")
TAKEN_BY_KEY = {"uq_users_username": UsernameTaken, "uq_users_email": EmailTaken, "uq_users_phone": PhoneTaken}


def _duplicate(exc: IntegrityError) -> Exception:
    match = DUPLICATE_KEY.search(str(exc.args[1] if len(exc.args) > 1 else exc))
    refusal = TAKEN_BY_KEY.get(match.group(1)) if match else None
    return refusal() if refusal else exc


REGISTER_WINDOW_S = 3600


async def register(ctx: Context, body: dict[str, Any], *, role: str = "user",
                   require_contact: bool = True, confirm: bool = False,
                   ip: str | None = None) -> dict[str, Any]:
    """Create an account; refusals name the first field that is already taken. With the client's
    address (the web routes), at most FLASHSALE_REGISTER_IP_LIMIT attempts per address per hour.

    With `confirm` (the page form) `password_confirm` must repeat the password."""
    if ip is not None:
        await ratelimit.hit(ctx.redis, ctx.keys.register_ip(ip), ctx.settings.register_ip_limit, REGISTER_WINDOW_S)
    clean, fields = REGISTER_BODY.read(body)
    username, password = clean["username"], clean["password"]
    if confirm and body.get("password_confirm") != body.get("password"):
        fields.error("password_confirm", "The passwords do not match.")
    email, phone = _contact(clean)
    if require_contact and email is None and phone is None and "email" not in fields.errors and "phone" not in fields.errors:
        fields.error("email", "Give an email address or a phone number.")
    fields.check()
    password_hash = await ctx.hasher.hash(password)

    # INSERT first and let the unique keys refuse a taken name: no SELECT-then-INSERT, whose gap
    # locks on the unique indexes deadlock concurrent sign-ups
    async def work(cur) -> dict[str, Any]:
        await cur.execute(INSERT_USER, (username, email, phone, password_hash, role))
        await cur.execute(USER_BY_ID, (cur.lastrowid,))
        return await cur.fetchone()

    try:
        row = await db.run_transaction(ctx.db, work)
    except IntegrityError as exc:
        if db.errno(exc) == db.DUP_ENTRY:
            raise _duplicate(exc) from None
        raise
    return user_json(row)


def canonical_name(username: str) -> str:
    """A name as MySQL's utf8mb4_unicode_ci compares it: trailing spaces ignored (PAD SPACE), case
    and accents folded, so that "Admin ", "ADMIN" and "àdmin" count as one name."""
    decomposed = unicodedata.normalize("NFKD", username.rstrip(" "))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


async def authenticate(ctx: Context, body: dict[str, Any], ip: str) -> dict[str, Any]:
    """Check a username and password. Each attempt is counted before the password is hashed, in
    one atomic step, against the account (its id once found, else the name as MySQL compares it)
    from this address (FLASHSALE_LOGIN_FAIL_LIMIT), the account from anywhere (the far higher
    FLASHSALE_LOGIN_FAIL_USER_LIMIT); failures from this address are counted too
    (FLASHSALE_LOGIN_FAIL_IP_LIMIT). A success clears the account's counts. So a guesser elsewhere
    cannot lock the owner out with a handful of wrong passwords."""
    username = body.get("username")
    password = body.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
        LOGIN_BODY.clean(body)
    s, keys = ctx.settings, ctx.keys
    usable = len(password) <= 128 and len(username) <= 64 and "\x00" not in username
    row = await db.fetch_one(ctx.db, USER_FOR_LOGIN, (username,)) if usable else None
    account = f"id:{row['id']}" if row else "name:" + canonical_name(username[:64])
    user_ip_key, user_key = keys.login_fail_user_ip(account, ip), keys.login_fail_user(account)
    ip_key = keys.login_fail_ip(ip)
    window = s.login_fail_window_s
    # the address: only its failures count (many users behind one address all log in, at once too)
    await ratelimit.ensure_below(ctx.redis, [(ip_key, s.login_fail_ip_limit)])
    await ratelimit.take(ctx.redis, [(user_ip_key, s.login_fail_limit, window),
                                     (user_key, s.login_fail_user_limit, window)])
    stored = row["password_hash"] if row else None
    if not await ctx.hasher.verify(password[:128], stored):
        await ratelimit.count(ctx.redis, [ip_key], window)
        raise BadCredentials()  # the account's attempt is counted already
    await ratelimit.clear(ctx.redis, [user_ip_key, user_key])
    if not row["is_active"]:
        raise Banned()
    if needs_rehash(stored, ctx.hasher.cost):
        await db.write(ctx.db, REHASH, (await ctx.hasher.hash(password), row["id"], stored))
    await cache_auth_state(ctx, row["id"], row["session_epoch"], row["role"], True)
    await cache_addresses(ctx, row["id"])  # warms the flash-sale purchase path
    return row


async def get_user(ctx: Context, user_id: int) -> dict[str, Any]:
    row = await db.fetch_one(ctx.db, USER_BY_ID, (user_id,))
    if row is None:
        raise NotFound()
    return row


async def _set_password(ctx: Context, user_id: int, new_password: str) -> int:
    """Store the new hash, end every session of the user and spend their reset links; returns the new epoch."""
    password_hash = await ctx.hasher.hash(new_password)

    async def work(cur) -> dict[str, Any]:
        await cur.execute(SET_PASSWORD, (password_hash, user_id))
        await cur.execute(SPEND_RESETS, (user_id,))
        await cur.execute(EPOCH_OF, (user_id,))
        return await cur.fetchone()

    row = await db.run_transaction(ctx.db, work)
    # the new state is written through (not only deleted), so requests need no MySQL to see it
    await cache_auth_state(ctx, user_id, row["session_epoch"], row["role"], bool(row["is_active"]))
    return row["session_epoch"]


async def change_password(ctx: Context, user_id: int, body: dict[str, Any]) -> int:
    """Check the old password, set the new one; returns the epoch the caller's session keeps."""
    clean = PASSWORD_BODY.clean(body)
    old, new = clean["old_password"], clean["new_password"]
    row = await db.fetch_one(ctx.db, USER_WITH_HASH_BY_ID, (user_id,))
    if row is None or not await ctx.hasher.verify(old[:128], row["password_hash"]):
        raise WrongOldPassword()
    return await _set_password(ctx, user_id, new)


def public_base_url(settings: Settings) -> str:
    """The base of links in mail: FLASHSALE_PUBLIC_URL, else http://FLASHSALE_HOST:FLASHSALE_PORT."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def request_reset(ctx: Context, body: dict[str, Any], ip: str, link_base: str) -> None:
    """Mail a one-time link when the account exists; the caller answers 202 either way."""
    ident = body.get("username") or body.get("email")
    await ratelimit.hit(ctx.redis, ctx.keys.reset_request_ip(ip), limit=10, window_s=3600)
    if not isinstance(ident, str) or not ident.strip() or len(ident) > 254:
        return
    ident = ident.strip()
    row = await db.fetch_one(ctx.db, USER_BY_NAME_OR_EMAIL, (ident, ident.lower()))
    if row is None or not row["is_active"]:
        return
    token = secrets.token_urlsafe(32)
    expires = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(seconds=ctx.settings.reset_token_ttl_s)
    await db.write(ctx.db, INSERT_RESET, (row["id"], _token_hash(token), expires))
    link = f"{link_base}/password/reset?token={token}"
    await ctx.mailer.send(row["email"] or row["username"], "Reset your FlashSale password",
                          f"Hello {row['username']},\n\nOpen this link within "
                          f"{ctx.settings.reset_token_ttl_s // 60} minutes to choose a new password:\n{link}\n")


async def reset_password(ctx: Context, body: dict[str, Any]) -> None:
    """Use a reset token once; the new password ends every session of the user."""
    clean, fields = RESET_BODY.read(body)
    token, new = clean["token"], clean["new_password"]
    if "token" in fields.errors:
        raise InvalidToken()
    fields.check()
    digest = _token_hash(token)

    async def work(cur) -> int:
        if await cur.execute(USE_RESET, (digest,)) != 1:
            raise InvalidToken()
        await cur.execute(RESET_USER, (digest,))
        return (await cur.fetchone())["user_id"]

    user_id = await db.run_transaction(ctx.db, work)
    await _set_password(ctx, user_id, new)


async def list_users(ctx: Context, q: str, page: int, per_page: int) -> tuple[list[dict], int]:
    like = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    args = (q, like, like, like)
    rows = await db.fetch_all(ctx.db, SEARCH_USERS, args + (per_page, (page - 1) * per_page))
    total = await db.fetch_value(ctx.db, COUNT_USERS, args)
    return [admin_user_json(r) for r in rows], int(total)


async def update_user(ctx: Context, actor_id: int, user_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """Admin edit of role, ban flag and contact; a ban or role change ends the user's sessions."""
    current = await get_user(ctx, user_id)
    clean = USER_EDIT_BODY.clean(body, defaults={"role": current["role"],
                                                 "is_active": bool(current["is_active"])})
    role, active = clean["role"], clean["is_active"]
    new_email, new_phone = _contact(clean)
    email = new_email if "email" in body else current["email"]
    phone = new_phone if "phone" in body else current["phone"]
    if user_id == actor_id and (role != current["role"] or not active):
        raise OwnAccount()
    losing_admin = current["role"] == "admin" and current["is_active"] and (role != "admin" or not active)

    async def work(cur) -> dict[str, Any]:
        if losing_admin:
            await cur.execute(ACTIVE_ADMINS + " FOR UPDATE")
            if (await cur.fetchone())["COUNT(*)"] <= 1:
                raise LastAdmin()
        await cur.execute(UPDATE_PROFILE, (role, int(active), role, int(active), email, phone, user_id))
        await cur.execute(USER_BY_ID, (user_id,))
        return await cur.fetchone()

    try:
        row = await db.run_transaction(ctx.db, work)
    except IntegrityError as exc:
        if db.errno(exc) == db.DUP_ENTRY:
            raise _duplicate(exc) from None
        raise
    await cache_auth_state(ctx, user_id, row["session_epoch"], row["role"], bool(row["is_active"]))
    return admin_user_json(row)


async def delete_user(ctx: Context, actor_id: int, user_id: int) -> None:
    if user_id == actor_id:
        raise OwnAccount()
    current = await get_user(ctx, user_id)

    async def work(cur) -> None:
        await cur.execute(USER_ORDER_COUNT, (user_id,))
        if (await cur.fetchone())["COUNT(*)"]:
            raise HasOrders()
        if current["role"] == "admin" and current["is_active"]:
            await cur.execute(ACTIVE_ADMINS + " FOR UPDATE")
            if (await cur.fetchone())["COUNT(*)"] <= 1:
                raise LastAdmin()
        await cur.execute(DELETE_USER, (user_id,))

    try:
        await db.run_transaction(ctx.db, work)
    except IntegrityError as exc:
        # ROW_IS_REFERENCED: an order arrived after the count (fk_orders_user is the one key that keeps a user)
        if db.errno(exc) == db.ROW_IS_REFERENCED:
            raise HasOrders() from None
        raise
    await forget_user(ctx, user_id)
