"""JSON over HTTP: the contract's envelope `{code, msg, data}` and the request's object body."""
from __future__ import annotations

import asyncio
import binascii
from typing import Any

import orjson
from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from multidict import MultiDictProxy

from flashsale.appkeys import SETTINGS
from flashsale.errors import BodyTimeout, Validation
from flashsale.jsonio import dumps
from flashsale.multipart_form import read_multipart

JSON = "application/json"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# what aiohttp raises for a body it cannot read: bad gzip, a cut-off or boundary-less multipart,
# a part without headers, bad base64 transfer encoding, undecodable form text
BAD_BODY_ERRORS = (RequestPayloadError, HttpProcessingError, ValueError, binascii.Error, LookupError)


def media_type(request: web.Request) -> str:
    """The body's media type, as request.content_type gives it. The header every client of the
    API sends, exactly `application/json`, is taken as it is: aiohttp's parse of the header
    costs about as much as the rest of a purchase's checks together."""
    raw = request.headers.get(hdrs.CONTENT_TYPE)
    return JSON if raw == JSON else request.content_type


def envelope(data: Any = None, *, status: int = 200, msg: str = "ok",
             headers: dict[str, str] | None = None) -> web.Response:
    body = dumps({"code": status, "msg": msg, "data": data})
    return web.Response(body=body, status=status, content_type=JSON, headers=headers)


async def read_body(request: web.Request) -> bytes:
    """The raw body, in at most FLASHSALE_BODY_TIMEOUT_S (a body shorter than its Content-Length
    would hold the handler forever); 408 `timeout`, or 400 when it cannot be decoded. A body that
    has arrived whole (a small one comes with its headers) is read without arming the timer."""
    try:
        if request.content.is_eof():
            # arrived whole: taken at once, without request.read()'s coroutine per chunk (a few
            # microseconds on the purchase path); the size limit is the one read() applies
            body = request.content.read_nowait()
            if not body and request.content.total_bytes:
                return await request.read()  # read before, through request.read(): its copy
            limit = request.app[SETTINGS].max_body_bytes
            if len(body) > limit:
                raise web.HTTPRequestEntityTooLarge(limit, len(body))
            return body
        async with asyncio.timeout(request.app[SETTINGS].body_timeout_s):
            return await request.read()
    except TimeoutError:
        raise BodyTimeout() from None
    except BAD_BODY_ERRORS:
        raise Validation({"body": "The request body could not be read."}) from None


async def read_form(request: web.Request) -> MultiDictProxy:
    """The form body (request.post(), or read_multipart for multipart) with the same time limit and
    the same 400 for a body it cannot parse."""
    try:
        async with asyncio.timeout(request.app[SETTINGS].body_timeout_s):
            if media_type(request) == "multipart/form-data" and request.method in request.POST_METHODS:
                return await read_multipart(request)
            return await request.post()
    except TimeoutError:
        raise BodyTimeout() from None
    except BAD_BODY_ERRORS:
        raise Validation({"body": "The form could not be read."}) from None


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body; a form body is accepted too (pages post forms)."""
    kind = media_type(request)
    if kind == JSON:
        raw = await read_body(request)
        if not raw:
            return {}
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise Validation({"body": "Not valid JSON."}) from None
        if not isinstance(body, dict):
            raise Validation({"body": "Expected a JSON object."})
        return body
    if kind in FORM_TYPES:
        form = await read_form(request)
        return {k: v for k, v in form.items() if isinstance(v, str)}
    if not request.body_exists:
        return {}
    raise Validation({"body": "Send application/json."})
