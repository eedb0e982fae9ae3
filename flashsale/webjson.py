"""JSON over HTTP: the contract's envelope `{code, msg, data}` and the request's object body."""
from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from flashsale.errors import Validation
from flashsale.jsonio import dumps


def envelope(data: Any = None, *, status: int = 200, msg: str = "ok",
             headers: dict[str, str] | None = None) -> web.Response:
    body = dumps({"code": status, "msg": msg, "data": data})
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body; a form body is accepted too (pages post forms)."""
    if request.content_type == "application/json":
        raw = await request.read()
        if not raw:
            return {}
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise Validation({"body": "Not valid JSON."}) from None
        if not isinstance(body, dict):
            raise Validation({"body": "Expected a JSON object."})
        return body
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        return {k: v for k, v in form.items() if isinstance(v, str)}
    if not request.body_exists:
        return {}
    raise Validation({"body": "Send application/json."})
