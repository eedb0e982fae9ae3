"""The flash-sale purchase path: a few local checks, then two batched Redis round trips.

Every purchase of one event-loop tick shares one write for the buyer checks (session epoch,
ban flag, address ownership: one HMGET each) and one for the admission script (EVALSHA each),
on a lean pipelined connection (redis_mux.py), so the Redis cost per request stays small under
a burst. A sale that answered
`sold_out` is remembered for a short time so that the rush after it costs no Redis call at all.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time

from redis.exceptions import NoScriptError, RedisError

from flashsale.context import Context
from flashsale.errors import Ended, SoldOut, Unauthenticated, Validation
from flashsale.jsonio import utcnow
from flashsale.metrics import count_admission
from flashsale.redis_mux import open_mux
from flashsale.scripts import ADMIT_COLD, ADMIT_QUEUED, ADMIT_RESULTS, ADMIT_SOLD_OUT, ADMIT_UNKNOWN
from flashsale.services import seckill, seckill_state, stock_notices
from flashsale.services.auth_cache import auth_state, cache_addresses

log = logging.getLogger(__name__)

SOLD_OUT_TTL_S = 0.2
RATE_WINDOW_MS = 1000


class Admission:
    """One per process: the tick pipeline, the admission script's SHA and the sold-out flags."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.pipeline = open_mux(ctx.settings, ctx.redis, ctx.scripts)
        self.sold_out_until: dict[int, float] = {}
        # sales found over (ended or cancelled) when their Redis state was missing: answered
        # `ended` here from then on, never rebuilt, never asked of MySQL again (over is final)
        self.over: set[int] = set()
        self.admit_script = ctx.scripts.admit

    # sold-out flags: set by a sold_out answer, gone after SOLD_OUT_TTL_S or when stock returns
    def is_sold_out(self, sale_id: int) -> bool:
        until = self.sold_out_until.get(sale_id)
        if until is None:
            return False
        if time.monotonic() >= until:
            self.sold_out_until.pop(sale_id, None)
            return False
        return True

    def clear_sold_out(self, sale_id: int) -> None:
        self.sold_out_until.pop(sale_id, None)

    async def check_session(self, user_id: int, epoch: int, *, address_id: int | None = None) -> None:
        """The session is current and the user not banned; with address_id, the address is theirs.

        One HMGET, sent with the other purchases of this tick."""
        key = self.ctx.keys.user_auth(user_id)
        cached_epoch, active, addrs = await self.pipeline.call("HMGET", key, "epoch", "active", "addrs")
        if cached_epoch is None:
            state = await auth_state(self.ctx, user_id)
            if state is None:
                raise Unauthenticated()
            cached_epoch, active = state[0], int(state[2])
        if int(cached_epoch) != epoch or not int(active):
            raise Unauthenticated("Your session has ended; please log in again.")
        if address_id is None:
            return
        if addrs is None or str(address_id) not in addrs.split(","):
            # first purchase of this user, or an address added since: ask MySQL once
            if str(address_id) not in await cache_addresses(self.ctx, user_id):
                raise Validation({"address_id": "Choose one of your own addresses."})

    async def result(self, sale_id: int, user_id: int) -> dict:
        """The user's latest purchase outcome: two HGETs on the pipelined connection."""
        k = self.ctx.keys
        request_id = await self.pipeline.call("HGET", k.sale_user_request(sale_id), user_id)
        if request_id is None:
            return await seckill.purchase_result(self.ctx, sale_id, user_id)  # asks MySQL
        outcome = await self.pipeline.call("HGET", k.sale_results(sale_id), request_id)
        return seckill.result_json(request_id, outcome)

    async def admit(self, sale_id: int, user_id: int, address_id: int, payment_method: str) -> str:
        """Run admit.lua; returns the request id when queued, raises the contract's refusal."""
        if self.is_sold_out(sale_id):
            count_admission("sold_out")
            raise SoldOut()
        if sale_id in self.over:
            count_admission("ended")
            raise Ended()
        k = self.ctx.keys
        request_id = os.urandom(16).hex()
        keys = (k.sale_window(sale_id), k.sale_stock(sale_id), k.sale_buyers(sale_id), k.sale_stream(sale_id),
                k.sale_user_request(sale_id), k.sale_stats(sale_id), k.sale_purchase_rate(sale_id, user_id))
        args = (user_id, request_id, address_id, payment_method,
                self.ctx.settings.purchase_rate_per_s, RATE_WINDOW_MS)
        try:
            code, detail = await self.pipeline.call("EVALSHA", self.admit_script.sha, len(keys), *keys, *args)
        except NoScriptError:
            # Redis restarted and forgot the script: load it again (once) and retry directly
            code, detail = await self.admit_script(keys=list(keys), args=list(args))
        result = ADMIT_RESULTS.get(code, ADMIT_UNKNOWN)
        count_admission(result.reason)
        if code == ADMIT_QUEUED:
            return request_id
        if code == ADMIT_SOLD_OUT:
            self.sold_out_until[sale_id] = time.monotonic() + SOLD_OUT_TTL_S
        if code == ADMIT_COLD:
            row = await seckill.get_sale_row(self.ctx, sale_id)  # 404 for a sale that does not exist
            if seckill_state.is_over(row, utcnow()):
                self.over.add(sale_id)  # its keys expired (or were lost) after the end: no rebuild
                raise Ended()
            asyncio.get_running_loop().create_task(self._rebuild(sale_id))
        raise result.refusal(detail)

    async def _rebuild(self, sale_id: int) -> None:
        try:
            await seckill_state.rebuild_state(self.ctx, sale_id)
        except (RedisError, OSError, RuntimeError):
            log.exception("rebuilding sale %s failed; the watcher will try again", sale_id)

    async def close(self) -> None:
        await self.pipeline.close()

    async def listen_for_returned_stock(self, stop: asyncio.Event) -> None:
        """Clear the sold-out flag of a sale as soon as any process gives stock back."""
        while not stop.is_set():
            try:
                async with self.ctx.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    receive = await stock_notices.subscribe(self.ctx, pubsub)
                    while not stop.is_set():
                        message = await receive(timeout=1.0)
                        if message is not None:
                            try:
                                self.clear_sold_out(int(message["data"]))
                            except (TypeError, ValueError):
                                pass
            except (OSError, RedisError):
                log.warning("stock-returned subscription lost; retrying", exc_info=True)
                try:
                    await asyncio.wait_for(stop.wait(), 1.0)
                except asyncio.TimeoutError:
                    pass
