"""Order numbers: unique across processes and hosts, and sortable by creation time."""
from __future__ import annotations

import datetime as dt
import itertools
import os
import secrets


class OrderNumbers:
    """`YYYYMMDDHHMMSSmmm` + 4 random hex digits of this process + a 6-digit sequence (27 chars).

    The random part tells processes apart without coordination; the sequence tells apart numbers
    made by one process in the same millisecond. The unique key on orders.order_number backs it.
    """

    def __init__(self):
        self.process_tag = f"{os.getpid() % 0x10000 ^ secrets.randbits(16):04X}"
        self.sequence = itertools.count()

    def next(self, now: dt.datetime | None = None) -> str:
        return self.next_many(1, now)[0]

    def next_many(self, n: int, now: dt.datetime | None = None) -> list[str]:
        """n numbers of this millisecond (a drain batch's): the clock is read and formatted once."""
        now = now or dt.datetime.now(dt.timezone.utc)
        head = f"{now:%Y%m%d%H%M%S}{now.microsecond // 1000:03d}{self.process_tag}"
        return [f"{head}{next(self.sequence) % 1_000_000:06d}" for _ in range(n)]
