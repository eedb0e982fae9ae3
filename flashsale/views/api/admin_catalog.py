"""Admin JSON routes for the catalog: categories, goods and goods pictures."""
from __future__ import annotations

import asyncio

from aiohttp import web

from flashsale.appkeys import CTX
from flashsale.auth import require_admin
from flashsale.errors import TooLarge, Validation
from flashsale.jsonio import page_data
from flashsale.services import catalog, catalog_admin, goods_photos
from flashsale.validate import page_params
from flashsale.views.common import id_of
from flashsale.webjson import envelope, read_form, read_json

routes = web.RouteTableDef()
GOODS_QUERY = catalog.GOODS_QUERY.without("sort", "order")


@routes.get("/api/admin/categories")
async def list_categories(request: web.Request) -> web.Response:
    await require_admin(request)
    return envelope({"items": await catalog.admin_list_categories(request.app[CTX])})


@routes.post("/api/admin/categories")
async def create_category(request: web.Request) -> web.Response:
    await require_admin(request)
    category = await catalog_admin.create_category(request.app[CTX], await read_json(request))
    return envelope({"category": category}, status=201, msg="category created")


@routes.put(r"/api/admin/categories/{id:[0-9]{1,18}}")
async def update_category(request: web.Request) -> web.Response:
    await require_admin(request)
    category = await catalog_admin.update_category(request.app[CTX], id_of(request), await read_json(request))
    return envelope({"category": category}, msg="category updated")


@routes.delete(r"/api/admin/categories/{id:[0-9]{1,18}}")
async def delete_category(request: web.Request) -> web.Response:
    await require_admin(request)
    await catalog_admin.delete_category(request.app[CTX], id_of(request))
    return envelope(None, msg="category deleted")


@routes.get("/api/admin/goods")
async def list_goods(request: web.Request) -> web.Response:
    await require_admin(request)
    category_id = GOODS_QUERY.clean(request.query)["category_id"]
    q = " ".join(request.query.get("q", "").split())[:catalog.MAX_QUERY_LEN]
    page, per_page = page_params(request)
    items, total = await catalog.admin_list_goods(request.app[CTX], category_id=category_id, q=q,
                                                  page=page, per_page=per_page)
    return envelope(page_data(items, page, per_page, total))


@routes.get(r"/api/admin/goods/{id:[0-9]{1,18}}")
async def get_goods(request: web.Request) -> web.Response:
    await require_admin(request)
    return envelope({"goods": await catalog.admin_get_goods(request.app[CTX], id_of(request))})


@routes.post("/api/admin/goods")
async def create_goods(request: web.Request) -> web.Response:
    await require_admin(request)
    goods = await catalog_admin.create_goods(request.app[CTX], await read_json(request))
    return envelope({"goods": goods}, status=201, msg="goods created")


@routes.put(r"/api/admin/goods/{id:[0-9]{1,18}}")
async def update_goods(request: web.Request) -> web.Response:
    await require_admin(request)
    goods = await catalog_admin.update_goods(request.app[CTX], id_of(request), await read_json(request))
    return envelope({"goods": goods}, msg="goods updated")


@routes.delete(r"/api/admin/goods/{id:[0-9]{1,18}}")
async def delete_goods(request: web.Request) -> web.Response:
    await require_admin(request)
    await catalog_admin.delete_goods(request.app[CTX], id_of(request))
    return envelope(None, msg="goods deleted")


@routes.post(r"/api/admin/goods/{id:[0-9]{1,18}}/photo")
async def upload_photo(request: web.Request) -> web.Response:
    await require_admin(request)
    if request.content_type != "multipart/form-data":
        raise Validation({"photo": "Send the picture as multipart/form-data field `photo`."})
    # a body above client_max_size (6 MB) is refused by aiohttp here with 413
    form = await read_form(request)
    field = form.get("photo")
    if field is None or isinstance(field, str):
        raise Validation({"photo": "Attach a picture file."})
    data = await asyncio.to_thread(field.file.read, goods_photos.MAX_PHOTO_BYTES + 1)
    if len(data) > goods_photos.MAX_PHOTO_BYTES:
        raise TooLarge("The picture is larger than 5 MB.")
    goods = await catalog_admin.set_goods_photo(request.app[CTX], id_of(request), data)
    return envelope({"goods": goods}, msg="picture saved")
