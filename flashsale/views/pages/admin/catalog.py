"""Admin catalog pages: categories, goods with their specifications, goods pictures."""
from __future__ import annotations

import asyncio
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from flashsale.appkeys import CTX
from flashsale.errors import Refusal, TooLarge, Validation
from flashsale.jsonio import page_data
from flashsale.services import catalog, catalog_admin, goods_photos
from flashsale.templating import flash
from flashsale.validate import Fields, int_param
from flashsale.views.common import act, admin_page, back_to, form_body, id_of, refusal_text
from flashsale.webjson import read_form

routes = web.RouteTableDef()

PER_PAGE = 20
# the goods form's labels of the specification fields (catalog.SPEC_FIELDS)
GOODS_SPEC_LABELS = {"brand": "Brand", "model": "Model", "weight": "Weight", "dimensions": "Dimensions",
                     "material": "Material", "warranty": "Warranty"}


# --- categories -------------------------------------------------------------------------------

async def _render_categories(request: web.Request, *, form=None, errors=None, error=None,
                             status: int = 200) -> web.Response:
    items = await catalog.admin_list_categories(request.app[CTX])
    return aiohttp_jinja2.render_template("admin/categories.html", request, {
        "categories": items, "form": form or {}, "errors": errors or {}, "error": error,
    }, status=status)


@routes.get("/admin/categories", name="admin_categories")
async def categories_page(request: web.Request) -> web.Response:
    await admin_page(request)
    return await _render_categories(request)


@routes.post("/admin/categories")
async def create_category(request: web.Request) -> web.Response:
    await admin_page(request)
    body = await form_body(request)
    try:
        category = await catalog_admin.create_category(request.app[CTX], body)
    except Refusal as exc:
        errors = exc.errors if isinstance(exc, Validation) else {"name": exc.message}
        return await _render_categories(request, form=body, errors=errors, error=exc.message, status=exc.status)
    await flash(request, f"Category “{category['name']}” created.")
    raise web.HTTPSeeOther("/admin/categories")


@routes.post(r"/admin/categories/{id:[0-9]{1,9}}")
async def update_category(request: web.Request) -> web.Response:
    await admin_page(request)
    body = await form_body(request)
    return await act(request, catalog_admin.update_category(request.app[CTX], id_of(request), body),
                     "Category saved.", "/admin/categories")


@routes.post(r"/admin/categories/{id:[0-9]{1,9}}/delete")
async def delete_category(request: web.Request) -> web.Response:
    await admin_page(request)
    return await act(request, catalog_admin.delete_category(request.app[CTX], id_of(request)),
                     "Category deleted.", "/admin/categories")


# --- goods ------------------------------------------------------------------------------------

def _list_filters(query) -> dict[str, Any]:
    """The goods list's search and category; a bad category id is dropped, not an error page."""
    fields = Fields(dict(query))
    category_id = fields.integer("category_id", low=1, high=2**32 - 1, required=False)
    q = " ".join(query.get("q", "").split())[:catalog.MAX_QUERY_LEN]
    return {"category_id": category_id, "q": q}


@routes.get("/admin/goods", name="admin_goods")
@aiohttp_jinja2.template("admin/goods.html")
async def goods_page(request: web.Request):
    await admin_page(request)
    ctx = request.app[CTX]
    filters = _list_filters(request.query)
    page = int_param(request.query.get("page"), 1, 1, 1_000_000)
    items, total = await catalog.admin_list_goods(ctx, category_id=filters["category_id"], q=filters["q"],
                                                  page=page, per_page=PER_PAGE)
    link_query = {k: v for k, v in filters.items() if v}
    return {"goods": page_data(items, page, PER_PAGE, total), "filters": filters, "link_query": link_query,
            "categories": await catalog.admin_list_categories(ctx)}


async def _render_goods_form(request: web.Request, *, goods: dict[str, Any] | None, form: dict[str, Any],
                             errors=None, error=None, status: int = 200) -> web.Response:
    return aiohttp_jinja2.render_template("admin/goods_form.html", request, {
        "goods": goods, "form": form, "errors": errors or {}, "error": error,
        "categories": await catalog.admin_list_categories(request.app[CTX]),
        "spec_fields": [(name, GOODS_SPEC_LABELS[name], max_len) for name, max_len in catalog.SPEC_FIELDS],
        "max_photo_mb": goods_photos.MAX_PHOTO_BYTES // (1024 * 1024),
    }, status=status)


def _goods_form(goods: dict[str, Any]) -> dict[str, Any]:
    """A goods object as the form's values."""
    return {**goods, "category_id": goods["category"]["id"],
            "original_price": goods["original_price"] if goods["original_price"] is not None else ""}


@routes.get("/admin/goods/new", name="admin_goods_new")
async def new_goods_page(request: web.Request) -> web.Response:
    await admin_page(request)
    form = {"category_id": request.query.get("category_id", ""), "stock": "0"}
    return await _render_goods_form(request, goods=None, form=form)


@routes.post("/admin/goods")
async def create_goods(request: web.Request) -> web.Response:
    await admin_page(request)
    body = await form_body(request)
    try:
        goods = await catalog_admin.create_goods(request.app[CTX], body)
    except Refusal as exc:
        errors = exc.errors if isinstance(exc, Validation) else {}
        return await _render_goods_form(request, goods=None, form=body, errors=errors, error=exc.message,
                                        status=exc.status)
    await flash(request, f"“{goods['name']}” created. Add a picture below.")
    raise web.HTTPSeeOther(f"/admin/goods/{goods['id']}")


@routes.get(r"/admin/goods/{id:[0-9]{1,18}}", name="admin_goods_edit")
async def edit_goods_page(request: web.Request) -> web.Response:
    await admin_page(request)
    goods = await catalog.admin_get_goods(request.app[CTX], id_of(request))
    return await _render_goods_form(request, goods=goods, form=_goods_form(goods))


@routes.post(r"/admin/goods/{id:[0-9]{1,18}}")
async def update_goods(request: web.Request) -> web.Response:
    await admin_page(request)
    ctx = request.app[CTX]
    goods = await catalog.admin_get_goods(ctx, id_of(request))
    body = await form_body(request)
    try:
        await catalog_admin.update_goods(ctx, goods["id"], body)  # an emptied original price clears it
    except Refusal as exc:
        errors = exc.errors if isinstance(exc, Validation) else {}
        return await _render_goods_form(request, goods=goods, form=body, errors=errors, error=exc.message,
                                        status=exc.status)
    await flash(request, "Goods saved.")
    raise web.HTTPSeeOther(f"/admin/goods/{goods['id']}")


@routes.post(r"/admin/goods/{id:[0-9]{1,18}}/photo")
async def upload_photo(request: web.Request) -> web.Response:
    """The same checks as the JSON route: a JPEG, PNG or WebP by content, at most 5 MB."""
    await admin_page(request)
    goods_id = id_of(request)
    back = f"/admin/goods/{goods_id}"
    form = await read_form(request)
    field = form.get("photo")
    try:
        if field is None or isinstance(field, str) or not field.filename:
            raise Validation({"photo": "Choose a picture file."})
        data = await asyncio.to_thread(field.file.read, goods_photos.MAX_PHOTO_BYTES + 1)
        if len(data) > goods_photos.MAX_PHOTO_BYTES:
            raise TooLarge("The picture is larger than 5 MB.")
        await catalog_admin.set_goods_photo(request.app[CTX], goods_id, data)
    except Refusal as exc:
        await flash(request, refusal_text(exc), "danger")
    else:
        await flash(request, "Picture saved.")
    raise web.HTTPSeeOther(back)


@routes.post(r"/admin/goods/{id:[0-9]{1,18}}/delete")
async def delete_goods(request: web.Request) -> web.Response:
    await admin_page(request)
    body = await form_body(request)
    back = back_to(body, "/admin/goods")
    # from its own page, a deleted item goes back to the list; a refusal stays where it was
    after = "/admin/goods" if back.split("?")[0] == f"/admin/goods/{id_of(request)}" else back
    return await act(request, catalog_admin.delete_goods(request.app[CTX], id_of(request)),
                     "Goods deleted.", after, refused=back)
