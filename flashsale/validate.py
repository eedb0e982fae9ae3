"""Field checks shared by services: each returns the clean value or records an error."""
from __future__ import annotations

import re
from typing import Any

USERNAME = re.compile(r"^[A-Za-z0-9_]{3,32}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
PHONE = re.compile(r"^\+?[0-9][0-9 \-]{4,19}$")
ASCII_INT = re.compile(r"^[+-]?[0-9]{1,19}$")
# control characters (NUL, escape, DEL, C1...) are refused in text; tab and line breaks are kept
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class Fields:
    """Collects field errors; `check()` raises one Validation with all of them."""

    def __init__(self, body: dict[str, Any]):
        self.body = body
        self.errors: dict[str, str] = {}

    def text(self, name: str, *, min_len: int = 1, max_len: int = 255, required: bool = True,
             default: str | None = None) -> str | None:
        raw = self.body.get(name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if required:
                self.errors[name] = "This field is required."
            return default
        if not isinstance(raw, str):
            self.errors[name] = "Must be text."
            return default
        value = raw.strip()
        if CONTROL_CHARS.search(raw):  # before strip(), which would quietly drop a NEL (\x85)
            self.errors[name] = "Must not contain control characters."
            return default
        if not min_len <= len(value) <= max_len:
            self.errors[name] = f"Must be {min_len} to {max_len} characters."
            return default
        return value

    def integer(self, name: str, *, low: int, high: int, required: bool = True,
                default: int | None = None) -> int | None:
        raw = self.body.get(name)
        if raw is None or raw == "":
            if required:
                self.errors[name] = "This field is required."
            return default
        if isinstance(raw, bool):
            self.errors[name] = "Must be a whole number."
            return default
        if isinstance(raw, str):
            # ASCII digits only: int() would take Arabic-Indic or 5,000 digits
            value = int(raw) if ASCII_INT.match(raw.strip()) else None
        elif isinstance(raw, int):
            value = raw
        elif isinstance(raw, float) and raw.is_integer() and abs(raw) < 2**63:
            value = int(raw)
        else:
            value = None
        if value is None:
            self.errors[name] = "Must be a whole number."
            return default
        if not low <= value <= high:
            self.errors[name] = f"Must be between {low} and {high}."
            return default
        return value

    def choice(self, name: str, options: frozenset[str] | set[str], *, required: bool = True,
               default: str | None = None) -> str | None:
        raw = self.body.get(name)
        if raw is None or raw == "":
            if required:
                self.errors[name] = "This field is required."
            return default
        if not isinstance(raw, str) or raw not in options:  # a list or object is unhashable
            self.errors[name] = "Must be one of: " + ", ".join(sorted(options)) + "."
            return default
        return raw

    def boolean(self, name: str, default: bool = False) -> bool:
        raw = self.body.get(name)
        if raw is None or raw == "":
            return default
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, (int, str)) and str(raw).lower() in {"1", "true", "on", "yes"}:
            return True
        if isinstance(raw, (int, str)) and str(raw).lower() in {"0", "false", "off", "no"}:
            return False
        self.errors[name] = "Must be true or false."
        return default

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def check(self) -> None:
        from flashsale.errors import Validation

        if self.errors:
            raise Validation(self.errors)


def int_param(raw: str | None, default: int, low: int, high: int) -> int:
    """A query-string integer clamped to a range; junk gives the default."""
    if raw is None:
        value = default
    elif ASCII_INT.match(raw.strip()):
        value = int(raw)
    else:
        return default
    return max(low, min(high, value))


MAX_PER_PAGE = 100


def page_params(request: Any, default_per_page: int = 20) -> tuple[int, int]:
    """`(page, per_page)` from `?page=&per_page=`: page at least 1, per_page 1 to 100."""
    page = int_param(request.query.get("page"), 1, 1, 1_000_000)
    per_page = int_param(request.query.get("per_page"), default_per_page, 1, MAX_PER_PAGE)
    return page, per_page
