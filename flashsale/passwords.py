"""Password hashing with scrypt (memory-hard); parameters are stored with each hash."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from flashsale.errors import Overloaded

DKLEN = 32


@dataclass(frozen=True)
class Cost:
    n: int
    r: int
    p: int

    @property
    def maxmem(self) -> int:
        return 128 * self.r * self.n * self.p + 64 * 1024 * 1024


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, cost: Cost) -> str:
    """`scrypt$n$r$p$salt$hash` with a fresh 16-byte salt."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=cost.n, r=cost.r, p=cost.p,
                            maxmem=cost.maxmem, dklen=DKLEN)
    return f"scrypt${cost.n}${cost.r}${cost.p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of a password against a stored hash; False for a malformed hash."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        cost = Cost(int(n), int(r), int(p))
        expected = _unb64(digest)
        salt_bytes = _unb64(salt)
    except ValueError:
        return False
    if scheme != "scrypt" or not expected:
        return False
    try:
        actual = hashlib.scrypt(password.encode(), salt=salt_bytes, n=cost.n, r=cost.r, p=cost.p,
                                maxmem=cost.maxmem, dklen=len(expected))
    except ValueError:  # parameters scrypt refuses (n not a power of two, ...): not a hash of ours
        return False
    return hmac.compare_digest(actual, expected)


def needs_rehash(stored: str, cost: Cost) -> bool:
    try:
        _, n, r, p, _, _ = stored.split("$")
        return (int(n), int(r), int(p)) != (cost.n, cost.r, cost.p)
    except ValueError:
        return True


class Hasher:
    """Runs scrypt in a small bounded thread pool so the event loop never blocks on it.

    At most `threads` hashes run and `queue` more wait; one more is refused at once with
    Overloaded (503 with Retry-After), so a login or sign-up storm never builds a backlog that
    answers minutes late (scrypt costs tens of milliseconds of CPU and 16 MiB each)."""

    def __init__(self, cost: Cost, threads: int, queue: int = 32):
        self.cost = cost
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="scrypt")
        self.capacity = threads + max(0, queue)
        self.admitted = 0  # running plus waiting
        # verifying against this when the user is unknown keeps the timing the same
        self.dummy_hash = hash_password(os.urandom(16).hex(), cost)

    async def _run(self, fn, *args):
        if self.admitted >= self.capacity:
            raise Overloaded("Too many sign-ins at once; try again in a moment.", retry_after_s=2)
        self.admitted += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)
        finally:
            self.admitted -= 1

    async def hash(self, password: str) -> str:
        return await self._run(hash_password, password, self.cost)

    async def verify(self, password: str, stored: str | None) -> bool:
        ok = await self._run(verify_password, password, stored or self.dummy_hash)
        return ok and stored is not None

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
