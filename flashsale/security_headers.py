"""Security headers on every answer, added as each response is prepared (a few dict writes).

Every answer: `X-Content-Type-Options: nosniff` and a `Referrer-Policy`. HTML pages also get a
`Content-Security-Policy` that allows no inline script (templates use static/js only; forms ask
for confirmation through `data-confirm`) and no framing."""
from __future__ import annotations

from aiohttp import web

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self' ws: wss:; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; "
    "form-action 'self'"
)
REFERRER_POLICY = "strict-origin-when-cross-origin"


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = REFERRER_POLICY
    if headers.get("Content-Type", "").startswith("text/html"):
        headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        headers["X-Frame-Options"] = "DENY"  # frame-ancestors for browsers that predate it


def setup(app: web.Application) -> None:
    app.on_response_prepare.append(add_security_headers)
