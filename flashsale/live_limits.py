"""Caps on live WebSockets: per client address and per process, checked before the upgrade."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

from flashsale.errors import Overloaded, RateLimited

RETRY_AFTER_S = 5


class LiveLimits:
    """Counts the open live sockets of this process; a socket over a cap is refused, not opened."""

    def __init__(self, per_client: int, per_process: int):
        self.per_client = per_client
        self.per_process = per_process
        self.by_client: dict[str, int] = {}
        self.total = 0

    @contextlib.contextmanager
    def hold(self, client: str) -> Iterator[None]:
        """Count one socket of `client` while the block runs; raises the refusal when over a cap."""
        if self.total >= self.per_process:
            raise Overloaded("Too many live connections; try again shortly.", retry_after_s=RETRY_AFTER_S)
        if self.by_client.get(client, 0) >= self.per_client:
            raise RateLimited(RETRY_AFTER_S, "Too many live connections from your address.")
        self.by_client[client] = self.by_client.get(client, 0) + 1
        self.total += 1
        try:
            yield
        finally:
            self.total -= 1
            left = self.by_client[client] - 1
            if left:
                self.by_client[client] = left
            else:
                del self.by_client[client]
