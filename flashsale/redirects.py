"""The one safe-redirect rule: where `next` may send a browser (login, address book, admin forms)."""
from __future__ import annotations

import re

# a same-site path: one leading "/", then no second "/" or "\" right after it ("//host" and "/\host"
# are other hosts to a browser), no scheme, no backslash or control character anywhere (browsers
# drop tabs and newlines before parsing, so "/\t/host" is "//host" too)
SAFE_PATH = re.compile(r"^/(?![/\\])[^\\\x00-\x1f\x7f]*$")
MAX_NEXT_LEN = 2048


def safe_next(raw: object, default: str = "/") -> str:
    """`raw` when it is a same-site relative path starting with a single "/", else `default`."""
    if not isinstance(raw, str) or len(raw) > MAX_NEXT_LEN or not SAFE_PATH.match(raw):
        return default
    return raw
