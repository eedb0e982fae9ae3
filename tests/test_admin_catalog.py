"""Catalog administration: categories and goods CRUD, pictures, guards and in-use refusals."""
from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest
from aiohttp import FormData
from PIL import Image

from flashsale import db
from flashsale.jsonio import utcnow
from flashsale.services import catalog_admin, goods_photos

from tests.support.auth import login
from tests.support.factory import unique

GOODS_BODY = {
    "name": "Pebble Bluetooth Speaker", "description": "Loud and small.", "price": "299.00",
    "original_price": "399.00", "stock": 500, "brand": "Pebble", "model": "BT2", "weight": "540 g",
    "dimensions": "180 x 70 x 70 mm", "material": "Fabric", "warranty": "1 year",
}


def picture(kind: str = "PNG", size: tuple[int, int] = (8, 6)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (220, 53, 69)).save(out, format=kind)
    return out.getvalue()


def photo_form(data: bytes, filename: str = "photo.png", content_type: str = "image/png") -> FormData:
    form = FormData()
    # a file object: aiohttp warns (an error here) about large raw bytes bodies
    form.add_field("photo", io.BytesIO(data), filename=filename, content_type=content_type)
    return form


def no_times(item: dict) -> dict:
    return {k: v for k, v in item.items() if k not in ("created_at", "updated_at")}


async def add_order(ctx, factory, goods_id: int) -> int:
    user = await factory.user()
    async with db.transaction(ctx.db) as cur:
        await cur.execute(
            "INSERT INTO orders (order_number, user_id, goods_id, quantity, unit_price, total_amount, "
            "payment_method, receiver_name, phone, province, city, detail_address) "
            "VALUES (%s, %s, %s, 1, %s, %s, 'alipay', 'R', '13800000000', 'P', 'C', 'D')",
            (unique("o")[:32], user["id"], goods_id, Decimal("1.00"), Decimal("1.00")))
        return cur.lastrowid


async def add_sale(ctx, goods_id: int) -> int:
    start = utcnow() + dt.timedelta(hours=1)
    async with db.transaction(ctx.db) as cur:
        await cur.execute(
            "INSERT INTO flash_sales (goods_id, price, total_stock, start_time, end_time) VALUES (%s, %s, %s, %s, %s)",
            (goods_id, Decimal("1.00"), 10, start, start + dt.timedelta(hours=1)))
        return cur.lastrowid


async def goods_row(ctx, goods_id: int) -> dict | None:
    return await db.fetch_one(ctx.db, "SELECT id, name, stock, sales, photo FROM goods WHERE id = %s", (goods_id,))


# --- guards -------------------------------------------------------------------------------------

ADMIN_ROUTES = [
    ("GET", "/api/admin/categories"), ("POST", "/api/admin/categories"),
    ("PUT", "/api/admin/categories/1"), ("DELETE", "/api/admin/categories/1"),
    ("GET", "/api/admin/goods"), ("GET", "/api/admin/goods/1"), ("POST", "/api/admin/goods"),
    ("PUT", "/api/admin/goods/1"), ("DELETE", "/api/admin/goods/1"), ("POST", "/api/admin/goods/1/photo"),
]


@pytest.mark.parametrize("method, path", ADMIN_ROUTES)
async def test_anonymous_callers_are_unauthenticated(client, method, path):
    r = await client.request(method, path, json={})
    assert r.status == 401, await r.text()
    assert (await r.json())["data"] == {"reason": "unauthenticated"}


@pytest.mark.parametrize("method, path", ADMIN_ROUTES)
async def test_shoppers_are_forbidden(user_client, method, path):
    client, _, headers = user_client
    r = await client.request(method, path, json={}, headers=headers)
    assert r.status == 403, await r.text()
    assert (await r.json())["data"] == {"reason": "forbidden"}


async def test_admin_writes_need_the_csrf_token(admin_client):
    client, _, _ = admin_client
    r = await client.post("/api/admin/categories", json={"name": unique("c")})
    assert r.status == 403
    assert (await r.json())["data"]["reason"] == "csrf"


# --- categories ---------------------------------------------------------------------------------

async def test_admin_creates_a_category(admin_client):
    client, _, headers = admin_client
    name = unique("Cat")
    r = await client.post("/api/admin/categories", json={"name": f"  {name} ", "description": "Phones"},
                          headers=headers)
    assert r.status == 201, await r.text()
    body = await r.json()
    category = body["data"]["category"]
    assert body["code"] == 201
    assert no_times(category) == {"id": category["id"], "name": name, "description": "Phones", "goods_count": 0}
    assert category["created_at"].endswith("Z")
    r = await client.get("/api/admin/categories", headers=headers)
    assert category["id"] in [c["id"] for c in (await r.json())["data"]["items"]]


async def test_duplicate_category_name_is_refused_in_any_case(admin_client):
    client, _, headers = admin_client
    name = unique("Dup")
    r = await client.post("/api/admin/categories", json={"name": name}, headers=headers)
    assert r.status == 201
    r = await client.post("/api/admin/categories", json={"name": name.upper()}, headers=headers)
    assert r.status == 409, await r.text()
    assert (await r.json())["data"] == {"reason": "name_taken"}


async def test_category_fields_are_validated(admin_client):
    client, _, headers = admin_client
    r = await client.post("/api/admin/categories", json={"name": "x" * 65, "description": 5}, headers=headers)
    assert r.status == 400
    data = (await r.json())["data"]
    assert data["reason"] == "validation"
    assert set(data["errors"]) == {"name", "description"}
    r = await client.post("/api/admin/categories", json={}, headers=headers)
    assert (await r.json())["data"]["errors"] == {"name": "This field is required."}


async def test_admin_renames_a_category_and_keeps_what_was_left_out(admin_client, factory):
    client, _, headers = admin_client
    category = await factory.category()
    name = unique("Renamed")
    r = await client.put(f"/api/admin/categories/{category}", json={"name": name}, headers=headers)
    assert r.status == 200, await r.text()
    assert no_times((await r.json())["data"]["category"]) == {
        "id": category, "name": name, "description": "test category", "goods_count": 0}


async def test_renaming_onto_another_category_name_is_refused(admin_client, factory):
    client, _, headers = admin_client
    taken = unique("Taken")
    await factory.category(name=taken)
    category = await factory.category()
    r = await client.put(f"/api/admin/categories/{category}", json={"name": taken}, headers=headers)
    assert r.status == 409
    assert (await r.json())["data"] == {"reason": "name_taken"}


async def test_unknown_category_is_not_found(admin_client):
    client, _, headers = admin_client
    for method in ("PUT", "DELETE"):
        r = await client.request(method, "/api/admin/categories/999999999", json={"name": "x"}, headers=headers)
        assert r.status == 404, await r.text()
        assert (await r.json())["data"] == {"reason": "not_found"}


async def test_admin_deletes_an_empty_category(admin_client, ctx, factory):
    client, _, headers = admin_client
    category = await factory.category()
    r = await client.delete(f"/api/admin/categories/{category}", headers=headers)
    assert r.status == 200, await r.text()
    assert await db.fetch_value(ctx.db, "SELECT COUNT(*) FROM categories WHERE id = %s", (category,)) == 0


async def test_category_with_goods_is_in_use(admin_client, factory):
    client, _, headers = admin_client
    category = await factory.category()
    await factory.goods(category_id=category)
    r = await client.delete(f"/api/admin/categories/{category}", headers=headers)
    assert r.status == 409
    assert (await r.json())["data"] == {"reason": "in_use"}


# --- goods --------------------------------------------------------------------------------------

async def test_admin_creates_goods(admin_client, factory):
    client, _, headers = admin_client
    category = await factory.category()
    r = await client.post("/api/admin/goods", json={**GOODS_BODY, "category_id": category}, headers=headers)
    assert r.status == 201, await r.text()
    goods = (await r.json())["data"]["goods"]
    assert no_times(goods) == {
        **GOODS_BODY, "id": goods["id"], "sales": 0, "photo_url": "/static/img/placeholder.svg",
        "category": {"id": category, "name": goods["category"]["name"]}, "category_id": category,
    }
    r = await client.get(f"/api/goods/{goods['id']}")
    assert (await r.json())["data"]["name"] == GOODS_BODY["name"]


async def test_goods_need_only_name_category_and_price(admin_client, factory):
    client, _, headers = admin_client
    category = await factory.category()
    r = await client.post("/api/admin/goods", json={"name": "Bare", "category_id": str(category), "price": 5},
                          headers=headers)
    assert r.status == 201, await r.text()
    goods = (await r.json())["data"]["goods"]
    assert (goods["price"], goods["original_price"], goods["stock"], goods["description"], goods["brand"]) == (
        "5.00", None, 0, "", "")


@pytest.mark.parametrize("changes, errors", [
    ({"name": ""}, {"name"}),
    ({"name": "x" * 201}, {"name"}),
    ({"category_id": 999_999_999}, {"category_id"}),
    ({"category_id": "abc"}, {"category_id"}),
    ({"price": "abc"}, {"price"}),
    ({"price": "1.234"}, {"price"}),
    ({"price": "-1"}, {"price"}),
    ({"price": None}, {"price"}),
    ({"original_price": "1e3x"}, {"original_price"}),
    ({"original_price": "10.00"}, {"original_price"}),  # below the price
    ({"stock": -1}, {"stock"}),
    ({"stock": 10_000_001}, {"stock"}),
    ({"stock": "12.5"}, {"stock"}),
    ({"brand": "b" * 101, "weight": ["1 kg"], "description": "d" * 5001}, {"brand", "weight", "description"}),
])
async def test_goods_fields_are_validated_by_name(admin_client, factory, changes, errors):
    client, _, headers = admin_client
    category = await factory.category()
    r = await client.post("/api/admin/goods", json={**GOODS_BODY, "category_id": category, **changes},
                          headers=headers)
    assert r.status == 400, await r.text()
    data = (await r.json())["data"]
    assert data["reason"] == "validation"
    assert set(data["errors"]) == errors


async def test_stock_bounds_are_accepted(admin_client, factory):
    client, _, headers = admin_client
    category = await factory.category()
    for stock in (0, 10_000_000):
        r = await client.post("/api/admin/goods", json={**GOODS_BODY, "category_id": category, "stock": stock},
                              headers=headers)
        assert r.status == 201, await r.text()


async def test_admin_updates_some_goods_fields_and_keeps_the_rest(admin_client, ctx, factory):
    client, _, headers = admin_client
    category, other = await factory.category(), await factory.category()
    goods = await catalog_admin.create_goods(ctx, {**GOODS_BODY, "category_id": category})
    r = await client.put(f"/api/admin/goods/{goods['id']}",
                         json={"price": "279.00", "stock": 7, "category_id": other, "original_price": None},
                         headers=headers)
    assert r.status == 200, await r.text()
    updated = (await r.json())["data"]["goods"]
    assert no_times(updated) == {
        **no_times(goods), "price": "279.00", "original_price": None, "stock": 7, "category_id": other,
        "category": {"id": other, "name": updated["category"]["name"]},
    }


async def test_updating_goods_validates_the_result(admin_client, ctx, factory):
    client, _, headers = admin_client
    goods = await catalog_admin.create_goods(ctx, {**GOODS_BODY, "category_id": await factory.category()})
    r = await client.put(f"/api/admin/goods/{goods['id']}", json={"price": "500.00", "category_id": 999_999_999},
                         headers=headers)
    assert r.status == 400
    assert set((await r.json())["data"]["errors"]) == {"original_price", "category_id"}
    assert (await goods_row(ctx, goods["id"]))["name"] == GOODS_BODY["name"]


async def test_unknown_goods_is_not_found(admin_client):
    client, _, headers = admin_client
    for method in ("GET", "PUT", "DELETE"):
        r = await client.request(method, "/api/admin/goods/999999999", json={"name": "x"}, headers=headers)
        assert r.status == 404, await r.text()
        assert (await r.json())["data"] == {"reason": "not_found"}


async def test_admin_deletes_goods_nothing_refers_to(admin_client, ctx, factory):
    client, _, headers = admin_client
    goods_id = await factory.goods()
    r = await client.delete(f"/api/admin/goods/{goods_id}", headers=headers)
    assert r.status == 200, await r.text()
    assert await goods_row(ctx, goods_id) is None
    r = await client.get(f"/api/goods/{goods_id}")
    assert r.status == 404


async def test_goods_with_orders_are_in_use(admin_client, ctx, factory):
    client, _, headers = admin_client
    goods_id = await factory.goods()
    await add_order(ctx, factory, goods_id)
    r = await client.delete(f"/api/admin/goods/{goods_id}", headers=headers)
    assert r.status == 409
    assert (await r.json())["data"] == {"reason": "in_use"}
    assert await goods_row(ctx, goods_id) is not None


async def test_goods_with_a_flash_sale_are_in_use(admin_client, ctx, factory):
    client, _, headers = admin_client
    goods_id = await factory.goods()
    await add_sale(ctx, goods_id)
    r = await client.delete(f"/api/admin/goods/{goods_id}", headers=headers)
    assert r.status == 409
    assert (await r.json())["data"] == {"reason": "in_use"}


async def test_admin_goods_list_filters_searches_and_pages_newest_first(admin_client, factory):
    client, _, headers = admin_client
    category = await factory.category()
    made = [await factory.goods(category_id=category, name=f"Kettle model {n}") for n in range(3)]
    await factory.goods(category_id=category, name="Toaster")
    r = await client.get("/api/admin/goods", params={"category_id": category, "q": "kettle", "per_page": "2"},
                         headers=headers)
    assert r.status == 200, await r.text()
    data = (await r.json())["data"]
    assert [g["id"] for g in data["items"]] == [made[2], made[1]]
    assert (data["page"], data["per_page"], data["total"], data["pages"]) == (1, 2, 3, 2)
    assert {"description", "brand", "category", "created_at"} <= set(data["items"][0])
    r = await client.get("/api/admin/goods", params={"category_id": "x"}, headers=headers)
    assert r.status == 400


# --- pictures -----------------------------------------------------------------------------------

async def test_admin_uploads_a_png_which_is_then_served(admin_client, ctx, settings, factory):
    client, _, headers = admin_client
    goods_id = await factory.goods()
    data = picture("PNG")
    r = await client.post(f"/api/admin/goods/{goods_id}/photo", data=photo_form(data), headers=headers)
    assert r.status == 200, await r.text()
    goods = (await r.json())["data"]["goods"]
    photo = (await goods_row(ctx, goods_id))["photo"]
    assert photo.startswith("goods/") and photo.endswith(".png")
    assert goods["photo_url"] == f"/static/uploads/{photo}"
    stored = (Path(settings.upload_dir) / photo).read_bytes()  # re-encoded: the same pixels
    with Image.open(io.BytesIO(stored)) as image:
        assert image.format == "PNG" and image.size == (8, 6) and image.getpixel((0, 0)) == (220, 53, 69)
    served = await client.get(goods["photo_url"])
    assert served.status == 200
    assert await served.read() == stored


@pytest.mark.parametrize("kind, ext", [("JPEG", "jpg"), ("WEBP", "webp")])
async def test_jpeg_and_webp_are_accepted_with_their_own_extension(admin_client, ctx, factory, kind, ext):
    client, _, headers = admin_client
    goods_id = await factory.goods()
    r = await client.post(f"/api/admin/goods/{goods_id}/photo",
                          data=photo_form(picture(kind), filename="anything.png"), headers=headers)
    assert r.status == 200, await r.text()
    assert (await goods_row(ctx, goods_id))["photo"].endswith("." + ext)


async def test_a_new_picture_replaces_and_removes_the_old_file(admin_client, ctx, settings, factory):
    client, _, headers = admin_client
    goods_id = await factory.goods()
    await client.post(f"/api/admin/goods/{goods_id}/photo", data=photo_form(picture()), headers=headers)
    old = Path(settings.upload_dir) / (await goods_row(ctx, goods_id))["photo"]
    assert old.is_file()
    r = await client.post(f"/api/admin/goods/{goods_id}/photo", data=photo_form(picture("JPEG")), headers=headers)
    assert r.status == 200
    new = Path(settings.upload_dir) / (await goods_row(ctx, goods_id))["photo"]
    assert new.is_file() and not old.exists()


@pytest.mark.parametrize("data", [
    b"just some text, not a picture\n" * 10,
    picture("PNG")[:40],  # a truncated PNG
    picture("GIF"),  # a picture, but not one of the three kinds
])
async def test_anything_but_a_jpeg_png_or_webp_is_a_bad_image(admin_client, ctx, factory, data):
    client, _, headers = admin_client
    goods_id = await factory.goods()
    r = await client.post(f"/api/admin/goods/{goods_id}/photo", data=photo_form(data, filename="fake.png"),
                          headers=headers)
    assert r.status == 400, await r.text()
    assert (await r.json())["data"] == {"reason": "bad_image"}
    assert (await goods_row(ctx, goods_id))["photo"] is None


@pytest.mark.parametrize("size", [5 * 1024 * 1024 + 1, 7 * 1024 * 1024])
async def test_a_picture_over_5_mb_is_too_large(admin_client, ctx, factory, size):
    client, _, headers = admin_client
    goods_id = await factory.goods()
    data = picture() + b"\0" * (size - len(picture()))
    r = await client.post(f"/api/admin/goods/{goods_id}/photo", data=photo_form(data), headers=headers)
    assert r.status == 413, await r.text()
    assert (await r.json())["data"]["reason"] == "too_large"
    assert (await goods_row(ctx, goods_id))["photo"] is None


async def test_upload_without_a_photo_field_names_the_field(admin_client, factory):
    client, _, headers = admin_client
    goods_id = await factory.goods()
    form = FormData()
    form.add_field("picture", picture(), filename="a.png", content_type="image/png")
    r = await client.post(f"/api/admin/goods/{goods_id}/photo", data=form, headers=headers)
    assert r.status == 400
    assert set((await r.json())["data"]["errors"]) == {"photo"}
    r = await client.post(f"/api/admin/goods/{goods_id}/photo", json={"photo": "x"}, headers=headers)
    assert r.status == 400
    assert set((await r.json())["data"]["errors"]) == {"photo"}


async def test_picture_for_unknown_goods_is_not_found_and_leaves_no_file(admin_client, settings):
    client, _, headers = admin_client
    before = set((Path(settings.upload_dir) / "goods").iterdir())
    r = await client.post("/api/admin/goods/999999999/photo", data=photo_form(picture()), headers=headers)
    assert r.status == 404
    assert set((Path(settings.upload_dir) / "goods").iterdir()) == before


async def test_deleting_goods_removes_its_picture(admin_client, ctx, settings, factory):
    client, _, headers = admin_client
    goods_id = await factory.goods()
    await client.post(f"/api/admin/goods/{goods_id}/photo", data=photo_form(picture()), headers=headers)
    path = Path(settings.upload_dir) / (await goods_row(ctx, goods_id))["photo"]
    r = await client.delete(f"/api/admin/goods/{goods_id}", headers=headers)
    assert r.status == 200
    assert not path.exists()


async def test_a_stored_path_outside_the_upload_directory_is_never_removed(settings, tmp_path):
    assert goods_photos.stored_path(settings, "../../etc/passwd") is None
    assert goods_photos.stored_path(settings, "goods/a.png") == (Path(settings.upload_dir) / "goods/a.png").resolve()


async def test_admin_page_login_then_api_flow(client, factory):
    """An admin logged in through the API can manage the catalog end to end."""
    admin = await factory.user(role="admin")
    headers = {"X-CSRF-Token": await login(client, admin["username"])}
    r = await client.post("/api/admin/categories", json={"name": unique("Flow")}, headers=headers)
    category = (await r.json())["data"]["category"]["id"]
    r = await client.post("/api/admin/goods", json={**GOODS_BODY, "category_id": category}, headers=headers)
    goods_id = (await r.json())["data"]["goods"]["id"]
    r = await client.get("/api/categories")
    assert next(c for c in (await r.json())["data"]["items"] if c["id"] == category)["goods_count"] == 1
    assert (await client.delete(f"/api/admin/categories/{category}", headers=headers)).status == 409
    assert (await client.delete(f"/api/admin/goods/{goods_id}", headers=headers)).status == 200
    assert (await client.delete(f"/api/admin/categories/{category}", headers=headers)).status == 200
