"""The home page."""
from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

routes = web.RouteTableDef()


@routes.get("/", name="home")
@aiohttp_jinja2.template("shop/home.html")
async def home(request: web.Request):
    return {}
