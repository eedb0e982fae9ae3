"""The flash-sale purchase path: a few local checks, then one batched Redis round trip.

Every purchase of one event-loop tick shares one write to Redis (EVALSHA each) on a lean
pipelined connection (redis_mux.py), so the Redis cost per request stays small under a burst.
The buyer check (session epoch, logout, ban flag, address ownership) runs inside admit.lua, ahead
of the admission; when it needs MySQL (the user's auth hash is gone, or the address is new to
it) the script says so and the purchase is checked as on a cluster, then admitted. On a cluster
(routed per master: redis_routing.py) the user's auth hash lives in another slot than the sale's
keys, so the check is its own HMGET, sent before admit.lua: two round trips. A sale that answered
`sold_out` is remembered for a short time so that the rush after it costs no Redis call at all.

A hot sale split over `stock_shards` shards (each its own hash tag, so its own slot and, on a
cluster, spread over the masters). Design: the buyer is served elsewhere, units never move.

- A buyer's home shard is redis_keys.home_shard(user_id, shards). It alone keeps the buyer's
  units held (buyers), latest request (user_req), results and rate counter, so admit.lua checks
  the per-user limit there exactly, as on a one-shard sale.
- admit.lua on the home shard queues the purchase there while that shard has stock. When it is
  dry it reserves one unit of the buyer's limit (buyers += 1) and answers ADMIT_DRY; the
  admission then asks the other shards in turn, with take.lua, for one unit: take.lua decrements
  that shard's stock and appends the entry (with `h` = home) to that shard's stream, in one
  script on one slot. On success the home shard's user_req points at the request; when no shard
  has a unit, unhold.lua gives the reservation back and the buyer is told `sold_out`.
- Invariants: (1) stock is only ever decremented by a script that, in the same call, appends
  the entry of the purchase to the same shard's stream: a unit is in a shard's stock, or in its
  stream, or an order, never in flight between shards; the sale's remaining is exactly the sum
  of its shards' stocks. (2) units held per buyer (counting a reservation) live only on the home
  shard, changed only by scripts there: the limit is exact under any concurrency. (3) `sold_out`
  is answered only after the home shard and then every other shard answered a stock of zero
  within this request; without a give-back (cancel, dead letter, admin raise) stock never grows,
  so at the moment of the answer every shard holds zero. A unit given back after its shard was
  asked is announced on the stock channel, which clears the local sold-out flags.
- Crashes: a process dying after the reservation and before take.lua leaves a slot reserved
  (the buyer may buy one unit less; never more) and no unit lost; dying after take.lua and
  before user_req is written leaves an order made (the consumer of that shard writes it) whose
  result /result finds in MySQL only if the buyer had no earlier request. A rebuild recomputes
  buyers from MySQL and the streams, which drops stale reservations.
- A one-shard sale takes none of this: admit.lua answers sold_out itself, and the only added
  work on its path is comparing the shard count passed in with the sale's.
"""
from __future__ import annotations

import asyncio
import logging
import os
import random
import time

from redis.exceptions import NoScriptError, RedisError

from flashsale.context import Context
from flashsale.errors import Ended, Unauthenticated, Validation
from flashsale.jsonio import utcnow
from flashsale.metrics import count_admission
from flashsale.redis_keys import home_shard
from flashsale.scripts import (ADMIT_COLD, ADMIT_DRY, ADMIT_QUEUED, ADMIT_RESHARD, ADMIT_RESULTS, ADMIT_SOLD_OUT,
                               ADMIT_UNKNOWN, BUYER_CHECK_MYSQL, BUYER_SESSION_ENDED)
from flashsale.services import seckill, seckill_state, stock_notices
from flashsale.services.auth_cache import cache_addresses, session_field, session_state
from flashsale.services.user_sessions import is_live

log = logging.getLogger(__name__)

SOLD_OUT_TTL_S = 0.2
RATE_WINDOW_MS = 1000
DRY_HINT_S = 0.5  # a shard seen dry is asked last for this long (it is still asked)
# take.lua's codes that end the search for a donor: the sale ended or was cancelled meanwhile
TAKE_QUEUED, TAKE_DRY, TAKE_ENDED, TAKE_CANCELLED = 0, 1, 3, 4
SESSION_ENDED = "Your session has ended; please log in again."


class Admission:
    """One per process: the tick pipeline, the admission script's SHA and the sold-out flags."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.pipeline = ctx.mux  # the context's lean connection (opened and closed with it)
        self.sold_out_until: dict[int, float] = {}
        # sales found over (ended or cancelled) when their Redis state was missing: answered
        # `ended` here from then on, never rebuilt, never asked of MySQL again (over is final)
        self.over: set[int] = set()
        self.admit_script = ctx.scripts.admit
        # sale id -> stock shards as admit.lua last told (unknown: 1; the script corrects a stale one)
        self.shards: dict[int, int] = {}
        self.dry_until: dict[tuple[int, int], float] = {}  # (sale, shard) -> hint expiry
        # one Redis: the buyer check rides in admit.lua and result.lua (a script may span slots)
        self.check_in_script = not ctx.settings.redis_cluster

    # sold-out flags: set by a sold_out answer, gone after SOLD_OUT_TTL_S or when stock returns
    def is_sold_out(self, sale_id: int) -> bool:
        until = self.sold_out_until.get(sale_id)
        if until is None:
            return False
        if time.monotonic() >= until:
            self.sold_out_until.pop(sale_id, None)
            return False
        return True

    def answer_sold_out(self, sale_id: int) -> bool:
        """Answer this purchase sold_out without asking Redis? True while the sale's flag holds.
        Once it has run out, ONE caller is let through to ask (admit() sets the flag again on
        sold_out, clears it when admitted) while the others are still answered from the flag for
        another period: the rush after a sell-out costs one Redis call per period, not one per
        request in flight when the flag runs out."""
        until = self.sold_out_until.get(sale_id)
        if until is None:
            return False
        now = time.monotonic()
        if now < until:
            return True
        self.sold_out_until[sale_id] = now + SOLD_OUT_TTL_S
        return False

    def clear_sold_out(self, sale_id: int) -> None:
        self.sold_out_until.pop(sale_id, None)

    async def check_session(self, user_id: int, epoch: int, sid: str | None, *,
                            address_id: int | None = None) -> None:
        """The session is live (not logged out) and current, the user not banned; with address_id,
        the address is theirs.

        One HMGET (epoch, active, addrs and the session's field), sent with the other purchases of this tick."""
        if not isinstance(sid, str):
            raise Unauthenticated()
        key = self.ctx.keys.user_auth(user_id)
        field = session_field(sid)
        cached_epoch, active, addrs, live = await self.pipeline.call("HMGET", key, "epoch", "active", "addrs", field)
        if cached_epoch is None:
            state = await session_state(self.ctx, user_id, sid)  # Redis lost the hash: rebuilt from MySQL
            if state is None:
                raise Unauthenticated()
            cached_epoch, active, live = state[0], int(state[2]), state[3]
        if int(cached_epoch) != epoch or not int(active) or not is_live(live):
            raise Unauthenticated(SESSION_ENDED)
        if address_id is None:
            return
        if addrs is None or str(address_id) not in addrs.split(","):
            # first purchase of this user, or an address added since: ask MySQL once
            if str(address_id) not in await cache_addresses(self.ctx, user_id):
                raise Validation({"address_id": "Choose one of your own addresses."})

    def _buyer_check(self, user_id: int, epoch: int, sid: str) -> tuple[tuple[str, ...], tuple]:
        """The key and arguments that put the buyer check into a script (on one Redis only)."""
        return (self.ctx.keys.user_auth(user_id),), (epoch, session_field(sid))

    async def result(self, sale_id: int, user_id: int, epoch: int, sid: str | None) -> dict:
        """The buyer check and the user's latest purchase outcome: one script (its request id,
        then that request's outcome) on the pipelined connection, on the buyer's home shard
        (results of a request admitted on another shard are written there)."""
        if not isinstance(sid, str):
            raise Unauthenticated()
        k = self.ctx.keys
        home = home_shard(user_id, self.shards.get(sale_id, 1))
        keys, args = (k.sale_user_request(sale_id, home), k.sale_results(sale_id, home)), (user_id,)
        if self.check_in_script:
            check_keys, check_args = self._buyer_check(user_id, epoch, sid)
            found = await self._run(self.ctx.scripts.result, keys + check_keys, args + check_args)
        else:
            found = BUYER_CHECK_MYSQL
        if found == BUYER_SESSION_ENDED:
            raise Unauthenticated(SESSION_ENDED)
        if found == BUYER_CHECK_MYSQL:
            await self.check_session(user_id, epoch, sid)
            found = await self._run(self.ctx.scripts.result, keys, args)
        if found is None:
            # asks Redis for the sale's shard count (this process may not know it), then MySQL
            return await seckill.purchase_result(self.ctx, sale_id, user_id)
        request_id, outcome = found[0], found[1] if len(found) > 1 else None
        return seckill.result_json(request_id, outcome)

    async def _run(self, script, keys: tuple[str, ...], args: tuple) -> list:
        """A script by SHA on the pipelined connection (sent with this tick's other commands)."""
        try:
            return await self.pipeline.call("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:
            # Redis restarted and forgot the script: load it again (once) and retry directly
            return await script(keys=list(keys), args=list(args))

    async def _admit_home(self, sale_id: int, user_id: int, request_id: str, address_id: int,
                          payment_method: str, shards: int, buyer: tuple[int, str] | None = None) -> tuple[int, int]:
        """admit.lua on the buyer's home shard; with buyer (epoch, session id), the buyer check first."""
        k, home = self.ctx.keys, home_shard(user_id, shards)
        keys = (k.sale_window(sale_id, home), k.sale_stock(sale_id, home), k.sale_buyers(sale_id, home),
                k.sale_stream(sale_id, home), k.sale_user_request(sale_id, home), k.sale_stats(sale_id, home),
                k.sale_purchase_rate(sale_id, user_id, home))
        args = (user_id, request_id, address_id, payment_method,
                self.ctx.settings.purchase_rate_per_s, RATE_WINDOW_MS, shards)
        if buyer is not None:
            check_keys, check_args = self._buyer_check(user_id, *buyer)
            keys, args = keys + check_keys, args + check_args
        code, detail = await self._run(self.admit_script, keys, args)
        return int(code), detail

    async def _admit_away(self, sale_id: int, user_id: int, request_id: str, address_id: int,
                          payment_method: str, shards: int) -> int:
        """The home shard is dry and holds a reservation: take a unit from another shard (those
        not seen dry lately first, from a random one on), or give the reservation back. Returns
        ADMIT_QUEUED, ADMIT_SOLD_OUT (every shard answered zero), ADMIT_COLD (a shard has no
        state: a rebuild is due, and sold_out cannot be told) or the sale's end."""
        k, home, now = self.ctx.keys, home_shard(user_id, shards), time.monotonic()
        self.dry_until[(sale_id, home)] = now + DRY_HINT_S
        others = [s for s in range(shards) if s != home]
        turn = random.randrange(len(others))
        others = others[turn:] + others[:turn]
        others.sort(key=lambda s: self.dry_until.get((sale_id, s), 0.0) > now)  # stable: hinted last
        outcome = ADMIT_SOLD_OUT
        for shard in others:
            code, left = await self._run(
                self.ctx.scripts.take,
                (k.sale_window(sale_id, shard), k.sale_stock(sale_id, shard), k.sale_stream(sale_id, shard),
                 k.sale_stats(sale_id, shard)),
                (user_id, request_id, address_id, payment_method, home))
            code = int(code)
            if code == TAKE_QUEUED:
                if int(left) <= 0:
                    self.dry_until[(sale_id, shard)] = now + DRY_HINT_S
                await self.pipeline.call("HSET", k.sale_user_request(sale_id, home), user_id, request_id)
                return ADMIT_QUEUED
            if code == TAKE_DRY:
                self.dry_until[(sale_id, shard)] = now + DRY_HINT_S
            elif code == ADMIT_COLD:
                outcome = ADMIT_COLD
            else:
                outcome = code  # ended or cancelled: no other shard can sell either
                break
        await self._run(self.ctx.scripts.unhold,
                        (k.sale_buyers(sale_id, home), k.sale_results(sale_id, home), k.sale_stats(sale_id, home)),
                        (user_id, 1, "", "", ADMIT_RESULTS[outcome].reason if outcome != ADMIT_COLD else ""))
        return outcome

    async def purchase(self, sale_id: int, user_id: int, epoch: int, sid: str | None, address_id: int,
                       payment_method: str) -> str:
        """The buyer check (the cookie's session is live and current, the user not banned, the
        address theirs), then admit.lua; returns the request id when queued, raises the contract's
        refusal. One round trip on a single Redis, where admit.lua checks the buyer first."""
        if not isinstance(sid, str):
            raise Unauthenticated()
        if self.check_in_script:
            return await self.admit(sale_id, user_id, address_id, payment_method, buyer=(epoch, sid))
        await self.check_session(user_id, epoch, sid, address_id=address_id)
        return await self.admit(sale_id, user_id, address_id, payment_method)

    async def admit(self, sale_id: int, user_id: int, address_id: int, payment_method: str,
                    buyer: tuple[int, str] | None = None) -> str:
        """Run admit.lua (with buyer (epoch, session id), checking the buyer first); returns the
        request id when queued, raises the contract's refusal. The caller asked answer_sold_out()."""
        if sale_id in self.over:
            count_admission("ended")
            raise Ended()
        request_id = os.urandom(16).hex()
        shards = self.shards.get(sale_id, 1)
        code, detail = await self._admit_home(sale_id, user_id, request_id, address_id, payment_method, shards,
                                              buyer)
        if code == BUYER_SESSION_ENDED:
            raise Unauthenticated(SESSION_ENDED)
        if code == BUYER_CHECK_MYSQL:
            await self.check_session(user_id, *buyer, address_id=address_id)
            code, detail = await self._admit_home(sale_id, user_id, request_id, address_id, payment_method, shards)
        if code == ADMIT_RESHARD:  # first sight of a sharded sale here, or it was laid out anew
            shards = self.shards[sale_id] = int(detail)
            code, detail = await self._admit_home(sale_id, user_id, request_id, address_id, payment_method, shards)
        if code == ADMIT_DRY:
            code = await self._admit_away(sale_id, user_id, request_id, address_id, payment_method, shards)
        result = ADMIT_RESULTS.get(code, ADMIT_UNKNOWN)
        count_admission(result.reason)
        if code == ADMIT_QUEUED:
            if self.sold_out_until:  # a unit was there after all: the next buyer asks too
                self.sold_out_until.pop(sale_id, None)
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
