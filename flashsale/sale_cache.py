"""Per-process cache of warm sales: the sale page, its JSON and the live sockets read it, not MySQL.

A sale's remaining stock (Redis) is read at most once per MAX_AGE_S per process, however many
views, API calls and sockets ask; concurrent askers share one read. Its row (MySQL) is read again
only when the catalog revision (services/catalog_revision.py, read with the stock) moved, when
the sale is cold (its `sold` then counts), or after ROW_MAX_AGE_S: a watched sale costs MySQL
nothing while nothing changes. Redis's clock is sampled too, so pages count down to the clock the
admission script decides by without a TIME call per view. A sale changed by this process's admin
routes is forgotten at once; one changed by another process is seen within MAX_AGE_S.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

from flashsale.context import Context
from flashsale.errors import NotFound
from flashsale.services import catalog_revision, seckill

MAX_AGE_S = 1.0
ROW_MAX_AGE_S = 60.0  # a row kept through unchanged revisions is read again after this anyway
MAX_SALES = 10_000  # distinct ids remembered (unknown ids too, so a scan of ids cannot storm MySQL)


class _Entry:
    __slots__ = ("row", "remaining", "read_at", "revision", "row_read_at")

    def __init__(self, row: dict[str, Any] | None, remaining: int | None, read_at: float,
                 revision: str | None = None, row_read_at: float = 0.0):
        self.row, self.remaining, self.read_at = row, remaining, read_at
        self.revision, self.row_read_at = revision, row_read_at


class SaleCache:
    def __init__(self, ctx: Context, max_age_s: float = MAX_AGE_S):
        self.ctx = ctx
        self.max_age_s = max_age_s
        self.entries: dict[int, _Entry] = {}
        self.reading: dict[int, asyncio.Future] = {}
        self.clock_offset_s: float | None = None  # Redis's clock minus ours
        self.clock_read_at = 0.0
        self.reads = 0  # reads made (tests and metrics look at it)
        self.row_reads = 0  # of them, those that read the sale's row from MySQL

    def forget(self, sale_id: int) -> None:
        self.entries.pop(sale_id, None)

    async def sale(self, sale_id: int) -> dict[str, Any]:
        """The contract's `sale`, at most max_age_s old; NotFound for an unknown id."""
        entry = await self._entry(sale_id)
        if entry.row is None:
            raise NotFound()
        return seckill.sale_json(entry.row, entry.remaining, await self.now())

    async def row(self, sale_id: int) -> dict[str, Any]:
        entry = await self._entry(sale_id)
        if entry.row is None:
            raise NotFound()
        return entry.row

    async def server_time(self) -> dt.datetime:
        """Redis's clock (aware, UTC, milliseconds), from a sample at most max_age_s old."""
        if self.clock_offset_s is None or time.monotonic() - self.clock_read_at >= self.max_age_s:
            redis_now = await seckill.server_time(self.ctx)
            self.clock_offset_s = redis_now.timestamp() - time.time()
            self.clock_read_at = time.monotonic()
            return redis_now
        value = dt.datetime.fromtimestamp(time.time() + self.clock_offset_s, dt.timezone.utc)
        return value.replace(microsecond=value.microsecond // 1000 * 1000)

    async def now(self) -> dt.datetime:
        """server_time() as the naive UTC datetime MySQL rows are compared with."""
        return (await self.server_time()).replace(tzinfo=None)

    async def _entry(self, sale_id: int) -> _Entry:
        entry = self.entries.get(sale_id)
        if entry is not None and time.monotonic() - entry.read_at < self.max_age_s:
            return entry
        pending = self.reading.get(sale_id)
        if pending is None:
            pending = self.reading[sale_id] = asyncio.ensure_future(self._read(sale_id))
            pending.add_done_callback(lambda _f: self.reading.pop(sale_id, None))
        return await asyncio.shield(pending)

    async def _read(self, sale_id: int) -> _Entry:
        self.reads += 1
        revision = await catalog_revision.current(self.ctx)
        old, now = self.entries.get(sale_id), time.monotonic()
        row = remaining = None
        if (old is not None and old.row is not None and old.revision == revision
                and now - old.row_read_at < ROW_MAX_AGE_S):
            row, row_read_at = old.row, old.row_read_at
            remaining = await seckill.remaining_of(self.ctx, row)
        if remaining is None:  # a changed or new row, or a cold sale (its page shows MySQL's count)
            self.row_reads += 1
            try:
                row = await seckill.get_sale_row(self.ctx, sale_id)
            except NotFound:
                row = None
            row_read_at = now
            remaining = None if row is None else await seckill.remaining_of(self.ctx, row)
        entry = _Entry(row, remaining, time.monotonic(), revision, row_read_at)
        if len(self.entries) >= MAX_SALES:
            self.entries.clear()
        self.entries[sale_id] = entry
        return entry
