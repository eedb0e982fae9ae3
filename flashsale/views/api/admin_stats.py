"""Admin JSON route for the dashboard's figures."""
from __future__ import annotations

from aiohttp import web

from flashsale.appkeys import CTX
from flashsale.auth import require_admin
from flashsale.errors import Validation
from flashsale.services import admin_stats
from flashsale.webjson import envelope

routes = web.RouteTableDef()


@routes.get("/api/admin/stats")
async def stats(request: web.Request) -> web.Response:
    """`?days=14` (1 to 90); `?only=live` answers `{live_sales}` alone (the dashboard polls it every 2 s)."""
    await require_admin(request)
    ctx = request.app[CTX]
    only = request.query.get("only", "")
    if only not in ("", "live"):
        raise Validation({"only": "Must be live, or left out."})
    if only == "live":
        return envelope({"live_sales": await admin_stats.live_sales(ctx)})
    days = admin_stats.STATS_QUERY.clean(request.query)["days"]
    return envelope(await admin_stats.dashboard(ctx, days))
