"""JSON through orjson: money as "19.90", times as ISO 8601 UTC with Z, the list shape.

No web code here, so services may use it; webjson.py puts it in the HTTP envelope."""
from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import orjson

CENTS = Decimal("0.01")
UTC = dt.timezone.utc
MAX_MONEY = Decimal("100000000")
# times outside this range are refused: MySQL's DATETIME, a day's arithmetic and epoch ms stay safe
MIN_TIME = dt.datetime(1970, 1, 1)
MAX_TIME = dt.datetime(3000, 1, 1)


def money(value: Decimal | int | str | None) -> str | None:
    """A decimal string with two places; None stays None."""
    if value is None:
        return None
    return str(Decimal(value).quantize(CENTS, rounding=ROUND_HALF_UP))


def parse_money(raw: Any) -> Decimal | None:
    """Parse a non-negative amount with at most two decimals; None when it is not one."""
    if isinstance(raw, bool) or raw is None:
        return None
    text = str(raw).strip()
    if len(text) > 40:
        return None
    try:
        value = Decimal(text)
        # the range first: quantizing 1e30 to cents exceeds the context's precision
        if not value.is_finite() or value < 0 or value >= MAX_MONEY or value != value.quantize(CENTS):
            return None
        return value.quantize(CENTS)
    except (InvalidOperation, ValueError):
        return None


def iso(value: dt.datetime | None) -> str | None:
    """`2026-11-24T12:00:00.000Z`; naive datetimes from MySQL are UTC."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    # not strftime: glibc writes year 358 as "358", which is no ISO 8601 date (and this is faster:
    # a sale page shows a dozen times)
    return (f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:"
            f"{value.second:02d}.{value.microsecond // 1000:03d}Z")


def parse_time(raw: Any) -> dt.datetime | None:
    """Parse ISO 8601 with any offset (or Z) into a naive UTC datetime; None when invalid or
    outside 1970-01-01 .. 2999-12-31 (0001-01-01+01:00 or 9999-12-31 would overflow later)."""
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 64:
        return None
    text = raw.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        value = dt.datetime.fromisoformat(text)
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        return None
    if not MIN_TIME <= value < MAX_TIME:
        return None
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def utcnow() -> dt.datetime:
    """Naive UTC now, millisecond precision, as stored in DATETIME(3)."""
    now = dt.datetime.now(UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return money(obj)
    if isinstance(obj, dt.datetime):
        return iso(obj)
    if isinstance(obj, dt.date):
        return obj.isoformat()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, default=_default, option=orjson.OPT_PASSTHROUGH_DATETIME)


def page_data(items: list[Any], page: int, per_page: int, total: int) -> dict[str, Any]:
    """The contract's list envelope: `{items, page, per_page, total, pages}`."""
    pages = (total + per_page - 1) // per_page if per_page > 0 else 0
    return {"items": items, "page": page, "per_page": per_page, "total": total, "pages": pages}
