"""JSON flash-sale routes: the list (shoppers' and admins'), detail, purchase (the hot path), result and live updates."""
from __future__ import annotations

import asyncio
import logging

from aiohttp import WSMsgType, web

from flashsale.appkeys import ADMISSION, BROADCASTS, CTX, LIVE_LIMITS, OUTCOMES, SALE_CACHE
from flashsale.auth import require_admin
from flashsale.csrf import checks_own_csrf, token_matches
from flashsale.errors import CsrfFailed, Refusal, Unauthenticated, Validation
from flashsale.fast_lane import fast_lane, refusal_response, sold_out_response
from flashsale.jsonio import page_data
from flashsale.metrics import count_admission
from flashsale.services import seckill
from flashsale.services.orders import PAYMENT_METHODS
from flashsale.sessions import read_session_fast
from flashsale.validate import page_params
from flashsale.webjson import envelope, read_json
from flashsale.views.common import id_of

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

STATES = frozenset({"live", "upcoming", "ended"})
MAX_WAIT_MS = 10_000


@routes.get("/api/seckill")
async def list_sales(request: web.Request) -> web.Response:
    state = request.query.get("state", "")
    if state and state not in STATES:
        raise Validation({"state": "Must be one of: ended, live, upcoming."})
    page, per_page = page_params(request)
    items, total = await seckill.list_sales(request.app[CTX], state, page, per_page)
    return envelope(page_data(items, page, per_page, total))


@routes.get("/api/admin/seckill")
async def admin_list_sales(request: web.Request) -> web.Response:
    """The same list for the admin API (admins only), so that the two cannot drift apart."""
    await require_admin(request)
    return await list_sales(request)


@routes.get(r"/api/seckill/{id:[0-9]{1,18}}")
async def get_sale(request: web.Request) -> web.Response:
    """From the process's sale cache (at most a second old): no MySQL query per call."""
    cache = request.app[SALE_CACHE]
    sale = await cache.sale(id_of(request))
    return envelope({**sale, "server_time": await cache.server_time()})


def _buyer(request: web.Request) -> tuple[int, int, str | None]:
    """(user id, session epoch, session id) from the cookie alone; checked against Redis later."""
    session = read_session_fast(request)
    if not session or "uid" not in session:
        raise Unauthenticated()
    return int(session["uid"]), int(session.get("ep", -1)), session.get("sid")


@routes.post(r"/api/seckill/{id:[0-9]{1,18}}/purchase")
@checks_own_csrf
@fast_lane
async def purchase(request: web.Request) -> web.Response:
    """Session, CSRF, body, sold-out flag, then the buyer check and admit.lua (one round trip).

    In the fast lane (fast_lane.py): no middleware but the error one; refusals are answered here,
    the sold-out one from prebuilt bytes without a Redis call."""
    try:
        sale_id = id_of(request)
        session = read_session_fast(request)
        if not session or "uid" not in session:
            raise Unauthenticated()
        expected, given = session.get("csrf"), request.headers.get("X-CSRF-Token")
        if not token_matches(expected, given):
            raise CsrfFailed()
        body = await read_json(request)
        address_id, method = body.get("address_id"), body.get("payment_method")
        errors = {}
        if isinstance(address_id, str) and address_id.isascii() and address_id.isdigit() and len(address_id) <= 18:
            address_id = int(address_id)
        if not isinstance(address_id, int) or isinstance(address_id, bool) or not 0 < address_id < 2**63:
            errors["address_id"] = "Choose one of your own addresses."
        if not isinstance(method, str) or method not in PAYMENT_METHODS:  # a list is unhashable
            errors["payment_method"] = "Must be one of: alipay, card, wechat."
        if errors:
            raise Validation(errors)
        admission = request.app[ADMISSION]
        if admission.answer_sold_out(sale_id):
            count_admission("sold_out")
            return sold_out_response()
        request_id = await admission.purchase(sale_id, int(session["uid"]), int(session.get("ep", -1)),
                                              session.get("sid"), address_id, method)
    except Refusal as exc:
        return refusal_response(exc)
    return envelope({"status": "queued", "request_id": request_id}, status=202, msg="queued")


def _wait_ms(request: web.Request) -> int:
    raw = request.query.get("wait_ms")
    if raw is None or raw == "":
        return 0
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 5 or int(raw) > MAX_WAIT_MS:
        raise Validation({"wait_ms": f"Must be a whole number of milliseconds from 0 to {MAX_WAIT_MS}."})
    return int(raw)


@routes.get(r"/api/seckill/{id:[0-9]{1,18}}/result")
@fast_lane
async def result(request: web.Request) -> web.Response:
    """The latest purchase's outcome; with wait_ms, held until it is final or the wait ends.

    The outcome is read once; a queued one then waits on this process's waiter table, which the
    one notice per committed batch resolves (outcomes.py): no Redis call while waiting. In the fast
    lane: it reads the session from the cookie itself and needs no other middleware."""
    wait_ms = _wait_ms(request)
    user_id, epoch, sid = _buyer(request)
    answer = await request.app[ADMISSION].result(id_of(request), user_id, epoch, sid)
    if answer["status"] == "queued" and wait_ms:
        outcome = await request.app[OUTCOMES].wait(answer["request_id"], wait_ms / 1000)
        if outcome is not None:
            answer = seckill.result_json(answer["request_id"], outcome)
    return envelope(answer)


@routes.get(r"/api/seckill/{id:[0-9]{1,18}}/live")
async def live(request: web.Request) -> web.StreamResponse:
    """WebSocket: `{remaining, state, server_time}` whenever it changes, at most once a second.

    The process's broadcaster for the sale reads the figures once a second for all its sockets
    (broadcast.py); a socket costs no MySQL or Redis call of its own."""
    sale_id = id_of(request)
    await request.app[SALE_CACHE].row(sale_id)  # 404 for an unknown sale
    # over a cap: refused (429 per address, 503 per process) before the upgrade, nothing held
    with request.app[LIVE_LIMITS].hold(request.remote or ""):
        return await _serve_live(request, sale_id)


async def _serve_live(request: web.Request, sale_id: int) -> web.WebSocketResponse:
    # no permessage-deflate (browsers offer it): a frame of ~60 bytes would be deflated once per
    # socket, each push costing the process as much as the rest of its work for that socket
    ws = web.WebSocketResponse(heartbeat=30.0, compress=False)
    await ws.prepare(request)
    broadcasts = request.app[BROADCASTS]
    feed = broadcasts.join(sale_id, _write_now(ws, request.transport))
    reader = asyncio.create_task(_drain(ws))
    reader.add_done_callback(lambda _task: feed.close())  # the client left: stop waiting
    try:
        while not ws.closed:
            message = await feed.next()
            if message is None:
                break
            await ws.send_str(message)  # a slow socket waits here alone; its feed keeps the latest
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        broadcasts.leave(sale_id, feed)
        reader.cancel()
        await ws.close()
    return ws


def _write_now(ws: web.WebSocketResponse, transport: asyncio.Transport | None):
    """The socket's connection takes a broadcast's frame at once, unless it is closing or still
    holds unsent data (then the socket's task sends it, waiting for the connection to drain)."""
    def write(frame: bytes) -> bool:
        if ws.closed or transport is None or transport.is_closing() or transport.get_write_buffer_size():
            return False
        transport.write(frame)
        return True
    return write


async def _drain(ws: web.WebSocketResponse) -> None:
    """Read (and ignore) what the client sends, so that a close is noticed."""
    async for message in ws:
        if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            break
