"""JSON address routes: the logged-in user's own addresses only."""
from __future__ import annotations

from aiohttp import web

from flashsale.appkeys import CTX
from flashsale.auth import require_user
from flashsale.services import addresses
from flashsale.webjson import envelope, read_json
from flashsale.views.common import id_of

routes = web.RouteTableDef()


@routes.get("/api/addresses")
async def list_addresses(request: web.Request) -> web.Response:
    user = await require_user(request)
    return envelope({"items": await addresses.list_addresses(request.app[CTX], user.id)})


@routes.post("/api/addresses")
async def create_address(request: web.Request) -> web.Response:
    user = await require_user(request)
    address = await addresses.create_address(request.app[CTX], user.id, await read_json(request))
    return envelope({"address": address}, status=201, msg="address added")


@routes.get(r"/api/addresses/{id:[0-9]{1,18}}")
async def get_address(request: web.Request) -> web.Response:
    user = await require_user(request)
    address = await addresses.get_address(request.app[CTX], user.id, id_of(request))
    return envelope({"address": address})


@routes.put(r"/api/addresses/{id:[0-9]{1,18}}")
async def update_address(request: web.Request) -> web.Response:
    user = await require_user(request)
    address = await addresses.update_address(request.app[CTX], user.id, id_of(request),
                                             await read_json(request))
    return envelope({"address": address}, msg="address saved")


@routes.delete(r"/api/addresses/{id:[0-9]{1,18}}")
async def delete_address(request: web.Request) -> web.Response:
    user = await require_user(request)
    await addresses.delete_address(request.app[CTX], user.id, id_of(request))
    return envelope(None, msg="address deleted")


@routes.post(r"/api/addresses/{id:[0-9]{1,18}}/default")
async def set_default(request: web.Request) -> web.Response:
    user = await require_user(request)
    address = await addresses.set_default(request.app[CTX], user.id, id_of(request))
    return envelope({"address": address}, msg="default address set")
