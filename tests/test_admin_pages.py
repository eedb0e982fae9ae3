"""The admin pages: who may see them, and one form flow per page through the shared services."""
from __future__ import annotations

import datetime as dt
import html
import io
import json
import re
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import FormData
from PIL import Image

from flashsale import db
from flashsale.services import catalog, catalog_admin, orders
from flashsale.static_files import static_url

from tests.support.auth import login
from tests.support.factory import unique
from tests.support.orders import insert_order, placed_order, utc_now
from tests.support.seckill import make_sale, remaining

PAGES = ["/admin", "/admin/orders", "/admin/goods", "/admin/goods/new", "/admin/categories", "/admin/seckill",
         "/admin/seckill/new", "/admin/users"]


@pytest.fixture
async def client(aiohttp_client, make_app):
    """The app without its background work: no sweeper may cancel an order a test set up."""
    return await aiohttp_client(make_app(background_tasks=False))


@pytest.fixture
async def admin_page(client, factory):
    """A logged-in admin posting forms: (client, admin, csrf token)."""
    admin = await factory.user(role="admin")
    return client, admin, await login(client, admin["username"])


async def page(client, path: str, status: int = 200) -> str:
    r = await client.get(path, allow_redirects=False)
    text = await r.text()
    assert r.status == status, text[:2000]
    return text


async def post(client, path: str, token: str, data: dict | None = None, status: int = 303):
    r = await client.post(path, data={**(data or {}), "csrf_token": token}, allow_redirects=False)
    text = await r.text()
    assert r.status == status, text[:2000]
    return r.headers.get("Location"), text


def flashes(text: str) -> list[str]:
    """The flash messages a page shows."""
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", "", m)).split())
            for m in re.findall(r'<div class="alert alert-\w+ alert-dismissible[^"]*" role="alert">(.*?)<button', text, re.S)]


def png(size=(8, 6)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (13, 110, 253)).save(out, format="PNG")
    return out.getvalue()


# --- who may see them -------------------------------------------------------------------------

async def test_every_page_renders_for_an_admin(admin_page, factory, ctx):
    client, admin, _ = admin_page
    goods_id = await factory.goods(name="Admin Lamp")
    sale = await make_sale(ctx, factory)
    order = await placed_order(ctx, factory, goods_id=goods_id)
    details = {f"/admin/goods/{goods_id}": "Admin Lamp", f"/admin/seckill/{sale['id']}": f"Flash sale #{sale['id']}",
               f"/admin/orders/{order['id']}": order["order_number"]}
    for path in PAGES + list(details):
        text = await page(client, path)
        assert 'data-testid="admin-nav"' in text, path
        assert details.get(path, "") in text, path
    assert admin["username"] in await page(client, "/admin/users")


async def test_shoppers_get_a_403_page_and_anonymous_users_the_login_page(client, factory, ctx):
    goods_id = await factory.goods()
    paths = PAGES + [f"/admin/goods/{goods_id}", "/admin/orders?status=paid&q=x"]
    for path in paths:
        r = await client.get(path, allow_redirects=False)
        assert r.status == 303, path
        location = urlsplit(r.headers["Location"])
        assert location.path == "/login" and parse_qs(location.query) == {"next": [path]}, path
    user = await factory.user()
    token = await login(client, user["username"])
    for path in paths:
        text = await page(client, path, 403)
        assert "You may not do that." in text and "admin-nav" not in text, path
    _, text = await post(client, "/admin/categories", token, {"name": "Nope"}, status=403)
    assert "You may not do that." in text
    assert await db.fetch_value(ctx.db, "SELECT COUNT(*) FROM categories WHERE name = 'Nope'") == 0


async def test_admin_nav_marks_the_current_section(admin_page):
    client, _, _ = admin_page
    text = await page(client, "/admin/goods/new")
    active = re.findall(r'<a class="nav-link text-nowrap active" href="([^"]+)"', text)
    assert active == ["/admin/goods"]


# --- dashboard --------------------------------------------------------------------------------

async def test_dashboard_shows_figures_chart_data_and_live_sales(admin_page, factory, ctx):
    client, _, _ = admin_page
    buyer = await factory.user()
    top = await factory.goods(name="Dashboard Drum")
    await insert_order(ctx, user_id=buyer["id"], goods_id=top, status="paid", quantity=99)
    await insert_order(ctx, user_id=buyer["id"], goods_id=top, status="paid", quantity=99)
    await insert_order(ctx, user_id=buyer["id"], goods_id=top, status="paid", quantity=99)
    sale = await make_sale(ctx, factory, stock=12)
    text = await page(client, "/admin?days=7")
    data = json.loads(html.unescape(re.search(r'data-stats="([^"]*)"', text).group(1)))
    assert len(data["daily"]) == 7 and data["daily"][-1]["date"] == utc_now().date().isoformat()
    assert set(data["status_counts"]) == {"pending", "paid", "shipped", "completed", "cancelled"}
    assert "Dashboard Drum" in text and 'id="daily-chart"' in text and 'id="status-chart"' in text
    assert re.search(rf'<tr data-sale-id="{sale["id"]}">.*?12 / 12', text, re.S)
    assert static_url("vendor/chartjs/chart.umd.min.js") in text and static_url("js/admin.js") in text
    assert 'data-testid="figure-to-ship"' in text


# --- categories -------------------------------------------------------------------------------

async def test_category_is_created_renamed_and_refused_deletion_while_in_use(admin_page, ctx):
    client, _, token = admin_page
    name = unique("Teas ")
    location, _ = await post(client, "/admin/categories", token, {"name": name, "description": "Leaves"})
    assert location == "/admin/categories"
    text = await page(client, location)
    assert flashes(text) == [f"Category “{name}” created."]
    category_id = await db.fetch_value(ctx.db, "SELECT id FROM categories WHERE name = %s", (name,))
    assert f'data-category-id="{category_id}"' in text

    _, text = await post(client, "/admin/categories", token, {"name": name}, status=409)
    assert "A category with that name already exists." in text and 'value="' + name + '"' in text
    _, text = await post(client, "/admin/categories", token, {"name": ""}, status=400)
    assert "This field is required." in text

    await post(client, f"/admin/categories/{category_id}", token, {"name": name + " & Herbs", "description": "More"})
    row = await db.fetch_one(ctx.db, "SELECT name, description FROM categories WHERE id = %s", (category_id,))
    assert row == {"name": name + " & Herbs", "description": "More"}
    assert flashes(await page(client, "/admin/categories")) == ["Category saved."]

    await catalog_admin.create_goods(ctx, {"category_id": category_id, "name": "Green tea", "price": "3.00"})
    location, _ = await post(client, f"/admin/categories/{category_id}/delete", token)
    assert flashes(await page(client, location)) == ["The category still has goods; move or delete them first."]
    assert await db.fetch_value(ctx.db, "SELECT COUNT(*) FROM categories WHERE id = %s", (category_id,)) == 1


# --- goods ------------------------------------------------------------------------------------

GOODS_FORM = {"name": "Cast Iron Teapot", "description": "Heavy.\nKeeps tea hot.", "price": "129.00",
              "original_price": "159.00", "stock": "40", "brand": "Iwachu", "model": "No. 5", "weight": "1.2 kg",
              "dimensions": "18 x 15 x 12 cm", "material": "Cast iron", "warranty": "1 year"}


async def test_goods_are_created_with_specs_edited_and_searched(admin_page, factory, ctx):
    client, _, token = admin_page
    category_id = await factory.category()
    _, text = await post(client, "/admin/goods", token, {**GOODS_FORM, "category_id": category_id, "price": "x"},
                         status=400)
    assert "Must be an amount like 19.90" in text and "Cast Iron Teapot" in text  # the form keeps its values

    location, _ = await post(client, "/admin/goods", token, {**GOODS_FORM, "category_id": category_id})
    goods_id = int(location.rsplit("/", 1)[1])
    goods = await catalog.admin_get_goods(ctx, goods_id)
    assert {k: str(goods[k]) for k in GOODS_FORM} == GOODS_FORM
    text = await page(client, location)
    assert flashes(text) == ["“Cast Iron Teapot” created. Add a picture below."]
    assert 'value="Iwachu"' in text and "Keeps tea hot." in text

    await post(client, location, token, {**GOODS_FORM, "category_id": category_id, "stock": "7", "original_price": ""})
    goods = await catalog.admin_get_goods(ctx, goods_id)
    assert (goods["stock"], goods["original_price"], goods["brand"]) == (7, None, "Iwachu")

    text = await page(client, f"/admin/goods?q=cast+iron&category_id={category_id}")
    assert f'data-goods-id="{goods_id}"' in text
    text = await page(client, f"/admin/goods?q=nothing+like+it&category_id={category_id}")
    assert 'data-testid="no-goods"' in text


async def test_photo_upload_goes_through_the_same_checks(admin_page, factory, ctx):
    client, _, token = admin_page
    goods_id = await factory.goods()

    def form(data: bytes, filename: str = "lamp.png") -> FormData:
        f = FormData()
        f.add_field("csrf_token", token)
        f.add_field("photo", io.BytesIO(data), filename=filename, content_type="image/png")
        return f

    r = await client.post(f"/admin/goods/{goods_id}/photo", data=form(b"not a picture"), allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == f"/admin/goods/{goods_id}"
    assert flashes(await page(client, r.headers["Location"])) == ["The file is not a JPEG, PNG or WebP image."]

    r = await client.post(f"/admin/goods/{goods_id}/photo", data=form(png()), allow_redirects=False)
    assert r.status == 303
    text = await page(client, r.headers["Location"])
    assert flashes(text) == ["Picture saved."]
    goods = await catalog.admin_get_goods(ctx, goods_id)
    assert goods["photo_url"].startswith("/static/uploads/goods/") and goods["photo_url"].endswith(".png")
    assert goods["photo_url"] in text

    r = await client.post(f"/admin/goods/{goods_id}/photo", data={"csrf_token": token}, allow_redirects=False)
    assert flashes(await page(client, r.headers["Location"])) == [
        "Some fields are not valid. Photo: Choose a picture file."]


async def test_goods_with_orders_are_not_deleted_and_others_are(admin_page, factory, ctx):
    client, _, token = admin_page
    sold = await factory.goods()
    await placed_order(ctx, factory, goods_id=sold)
    back = "/admin/goods?q=x&page=2"
    location, _ = await post(client, f"/admin/goods/{sold}/delete", token, {"next": back})
    assert location == back
    assert flashes(await page(client, "/admin/goods")) == [
        "Orders or flash sales refer to these goods; they cannot be deleted."]

    spare = await factory.goods()
    location, _ = await post(client, f"/admin/goods/{spare}/delete", token, {"next": f"/admin/goods/{spare}"})
    assert location == "/admin/goods"
    assert flashes(await page(client, location)) == ["Goods deleted."]
    location, _ = await post(client, f"/admin/goods/{sold}/delete", token, {"next": "https://evil.example/"})
    assert location == "/admin/goods"


# --- flash sales ------------------------------------------------------------------------------

async def test_sale_is_created_from_utc_inputs_edited_while_live_and_cancelled(admin_page, factory, ctx):
    client, _, token = admin_page
    goods_id = await factory.goods(name="Sale Kettle")
    text = await page(client, f"/admin/seckill/new?goods_id={goods_id}")
    assert f'<option value="{goods_id}" selected>' in text and "Starts <span data-utc-note>(UTC)</span>" in text

    start = (utc_now() - dt.timedelta(minutes=1)).replace(microsecond=0)
    end = start + dt.timedelta(hours=2)
    form = {"goods_id": goods_id, "price": "9.90", "total_stock": "30", "per_user_limit": "2",
            "start_time": start.strftime("%Y-%m-%dT%H:%M:%S"), "end_time": end.strftime("%Y-%m-%dT%H:%M")}
    _, text = await post(client, "/admin/seckill", token, {**form, "end_time": form["start_time"]}, status=400)
    assert "Must be after the start time." in text
    location, _ = await post(client, "/admin/seckill", token, form)
    assert location == "/admin/seckill"
    row = await db.fetch_one(ctx.db, "SELECT id, price, total_stock, per_user_limit, start_time, end_time "
                                     "FROM flash_sales WHERE goods_id = %s", (goods_id,))
    assert (row["start_time"], row["end_time"]) == (start, end.replace(second=0))  # read as UTC
    assert (row["price"], row["total_stock"], row["per_user_limit"]) == (Decimal("9.90"), 30, 2)
    assert await remaining(ctx, row["id"]) == 30
    text = await page(client, location)
    assert flashes(text) == [f"Flash sale #{row['id']} of “Sale Kettle” scheduled."]
    assert re.search(rf'data-sale-id="{row["id"]}".*?data-state="live".*?30 / 30', text, re.S)

    edit = f"/admin/seckill/{row['id']}"
    text = await page(client, edit)
    assert "The sale is live" in text and re.search(r'name="price"[^>]*disabled', text)
    # a browser sends only the enabled fields; a changed price is refused with the service's message
    _, text = await post(client, edit, token, {"price": "1.00", "total_stock": "30",
                                               "end_time": form["end_time"]}, status=400)
    assert "Cannot change once the sale is live." in text
    new_end = end + dt.timedelta(hours=1)
    location, _ = await post(client, edit, token, {"total_stock": "40",
                                                   "end_time": new_end.strftime("%Y-%m-%dT%H:%M:%S")})
    assert flashes(await page(client, location)) == [f"Flash sale #{row['id']} saved."]
    assert await remaining(ctx, row["id"]) == 40
    assert await db.fetch_value(ctx.db, "SELECT end_time FROM flash_sales WHERE id = %s", (row["id"],)) == new_end

    location, _ = await post(client, f"{edit}/cancel", token, {"next": "/admin/seckill?state=live"})
    assert location == "/admin/seckill?state=live"
    assert flashes(await page(client, location)) == ["Flash sale cancelled: no new purchases; orders already made stay."]
    await post(client, f"{edit}/cancel", token)
    assert flashes(await page(client, "/admin/seckill")) == ["The sale is already cancelled."]
    assert "it can no longer change" in await page(client, edit)


async def test_sale_list_shows_sold_units(admin_page, factory, ctx):
    client, _, _ = admin_page
    sale = await make_sale(ctx, factory, stock=9)
    await db.execute(ctx.db, "UPDATE flash_sales SET sold = 4 WHERE id = %s", (sale["id"],))
    for number in range(1, 100):  # the run's other live sales may come first: page on until it shows
        text = await page(client, f"/admin/seckill?state=live&page={number}")
        if f'data-sale-id="{sale["id"]}"' in text or 'data-sale-id="' not in text:
            break
    assert re.search(rf'data-sale-id="{sale["id"]}".*?data-testid="sale-sold">4<', text, re.S)


# --- orders -----------------------------------------------------------------------------------

async def test_order_list_filters_figures_and_export_link(admin_page, factory, ctx):
    client, _, _ = admin_page
    buyer = await factory.user()
    goods_id = await factory.goods()
    paid = await insert_order(ctx, user_id=buyer["id"], goods_id=goods_id, status="paid")
    pending = await insert_order(ctx, user_id=buyer["id"], goods_id=goods_id)
    text = await page(client, f"/admin/orders?status=paid&q={buyer['username']}&from=2020-01-01")
    assert re.findall(r'data-testid="order-row" data-order-id="(\d+)"', text) == [str(paid)]
    export = html.unescape(re.search(r'href="([^"]+)" data-testid="export-csv"', text).group(1))
    assert urlsplit(export).path == "/api/admin/orders/export.csv"
    assert parse_qs(urlsplit(export).query) == {"status": ["paid"], "q": [buyer["username"]], "from": ["2020-01-01"]}
    assert 'data-testid="figure-to-ship"' in text
    text = await page(client, f"/admin/orders?q={buyer['username']}")
    assert re.findall(r'data-testid="order-row" data-order-id="(\d+)"', text) == [str(pending), str(paid)]
    text = await page(client, "/admin/orders?from=someday", 400)
    assert "Give a date (2026-11-24)" in text and 'data-testid="no-orders"' in text


async def test_paid_order_is_shipped_from_its_page_and_refusals_are_messages(admin_page, factory, ctx):
    client, admin, token = admin_page
    order = await placed_order(ctx, factory, pay=True)
    path = f"/admin/orders/{order['id']}"
    text = await page(client, path)
    assert re.findall(r'data-testid="to-(\w+)"', text) == ["shipped", "cancelled"]

    location, _ = await post(client, f"{path}/status", token, {"status": "shipped", "remark": "SF 1234"})
    assert location == path
    text = await page(client, path)
    assert flashes(text) == ["Order marked as shipped."]
    assert re.findall(r'data-testid="to-(\w+)"', text) == ["completed"]
    assert "SF 1234" in text and f"admin {admin['username']}" in text
    assert (await orders.get_order(ctx, order["id"], owner_id=None))["shipped_at"] is not None

    await post(client, f"{path}/status", token, {"status": "shipped"})
    assert flashes(await page(client, path)) == ["Only a paid order can become shipped."]


async def test_remark_is_added_from_the_order_page(admin_page, factory, ctx):
    client, admin, token = admin_page
    order = await placed_order(ctx, factory)
    path = f"/admin/orders/{order['id']}"
    location, _ = await post(client, f"{path}/remarks", token, {"content": "Buyer asked for <gift> wrap"})
    assert location == f"{path}#remarks"
    text = await page(client, path)
    assert flashes(text) == ["Remark added."]
    assert "Buyer asked for &lt;gift&gt; wrap" in text and admin["username"] in text
    await post(client, f"{path}/remarks", token, {"content": "  "})
    assert flashes(await page(client, path)) == ["Some fields are not valid. Content: This field is required."]


# --- users ------------------------------------------------------------------------------------

async def test_user_is_banned_and_unbanned_and_self_changes_are_refused(admin_page, factory, aiohttp_client, make_app):
    client, admin, token = admin_page
    victim = await factory.user()
    other = await aiohttp_client(make_app(background_tasks=False))
    await login(other, victim["username"])
    back = f"/admin/users?q={victim['username']}"

    location, _ = await post(client, f"/admin/users/{victim['id']}", token, {"is_active": "0", "next": back})
    assert location == back
    text = await page(client, location)
    assert flashes(text) == [f"{victim['username']} is banned and logged out everywhere."]
    assert 'data-testid="banned"' in text and f'data-testid="unban-{victim["id"]}"' in text
    assert (await other.get("/api/me")).status == 401  # the session ended

    await post(client, f"/admin/users/{victim['id']}", token, {"is_active": "1"})
    assert flashes(await page(client, "/admin/users")) == [f"{victim['username']} may log in again."]
    await post(client, f"/admin/users/{victim['id']}", token, {"role": "admin"})
    assert flashes(await page(client, "/admin/users")) == [f"{victim['username']} is now an admin."]

    await post(client, f"/admin/users/{admin['id']}", token, {"is_active": "0"})
    assert flashes(await page(client, "/admin/users")) == ["You cannot do that to your own account."]
    await post(client, f"/admin/users/{admin['id']}/delete", token)
    assert flashes(await page(client, "/admin/users")) == ["You cannot do that to your own account."]


async def test_user_with_orders_is_not_deleted_and_the_message_suggests_a_ban(admin_page, factory, ctx):
    client, _, token = admin_page
    buyer = await factory.user()
    await placed_order(ctx, factory, user=buyer)
    await post(client, f"/admin/users/{buyer['id']}/delete", token)
    assert flashes(await page(client, "/admin/users")) == ["The user has orders; ban the account instead."]
    loner = await factory.user()
    await post(client, f"/admin/users/{loner['id']}/delete", token)
    assert flashes(await page(client, "/admin/users")) == [f"{loner['username']} deleted."]
    assert await db.fetch_value(ctx.db, "SELECT COUNT(*) FROM users WHERE id = %s", (loner["id"],)) == 0
