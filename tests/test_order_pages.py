"""Checkout and order pages: forms post to page routes and share the services with the API."""
from __future__ import annotations

import dataclasses
import re
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from flashsale import db
from flashsale.services import addresses, orders
from flashsale.static_files import static_url

from tests.support.auth import login
from tests.support.orders import ADDRESS, flash_order, goods_row, order_count, set_status

NEW = {"new_receiver_name": "Han Meimei", "new_phone": "13900000000", "new_province": "Jiangsu",
       "new_city": "Suzhou", "new_district": "", "new_detail_address": "8 Canal Street"}


@pytest.fixture
async def client(aiohttp_client, make_app):
    """The app without its background work: no sweeper may cancel an order a test set up."""
    return await aiohttp_client(make_app(background_tasks=False))


@pytest.fixture
async def page_user(client, factory):
    """A logged-in shopper for form posts: (client, user, csrf token)."""
    user = await factory.user()
    return client, user, await login(client, user["username"])


def checked_value(html: str, name: str) -> str | None:
    for tag in re.findall(r"<input[^>]*>", html):
        if f'name="{name}"' in tag and re.search(r"\schecked\b", tag):
            return re.search(r'value="([^"]*)"', tag).group(1)
    return None


async def orders_of(ctx, user_id) -> list[dict]:
    return (await orders.list_orders(ctx, user_id, "", 1, 100))[0]


async def test_anonymous_checkout_redirects_to_login_and_back(client, factory):
    goods_id = await factory.goods()
    r = await client.get(f"/checkout/{goods_id}?quantity=2", allow_redirects=False)
    assert r.status == 303
    location = urlsplit(r.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query) == {"next": [f"/checkout/{goods_id}?quantity=2"]}
    for path in ("/orders", "/orders/1"):
        r = await client.get(path, allow_redirects=False)
        assert r.status == 303 and r.headers["Location"].startswith("/login?next=")


async def test_checkout_page_preselects_the_default_address(page_user, factory):
    client, user, token = page_user
    goods_id = await factory.goods(name="Red Teapot", price="12.50")
    other = await factory.address(user["id"], is_default=False)
    default = await factory.address(user["id"])
    r = await client.get(f"/checkout/{goods_id}?quantity=3")
    assert r.status == 200
    html = await r.text()
    assert "Red Teapot" in html and "¥37.50" in html
    assert re.search(r'name="quantity"[^>]*value="3"', html)
    assert checked_value(html, "address_id") == str(default)
    assert f'value="{other}"' in html
    assert checked_value(html, "payment_method") == "alipay"
    assert "<details" in html and "Add a new address" in html and "<details class=\"border rounded p-2\" id=\"new-address\" open" not in html


async def test_checkout_page_without_addresses_opens_the_inline_form(page_user, factory):
    client, user, token = page_user
    goods_id = await factory.goods()
    html = await (await client.get(f"/checkout/{goods_id}?quantity=abc")).text()
    assert checked_value(html, "address_id") == "new"
    assert 'id="new-address" open' in html and "Add your address" in html
    assert re.search(r'name="quantity"[^>]*value="1"', html)  # junk quantity falls back to 1


async def test_checkout_of_unknown_goods_is_404(page_user):
    client, user, token = page_user
    assert (await client.get("/checkout/999999999")).status == 404


async def test_checkout_with_a_saved_address_places_the_order(page_user, factory, ctx):
    client, user, token = page_user
    goods_id = await factory.goods(stock=5, price="19.90")
    address_id = await factory.address(user["id"])
    r = await client.post(f"/checkout/{goods_id}", allow_redirects=False, data={
        "csrf_token": token, "quantity": "2", "address_id": str(address_id), "payment_method": "card"})
    assert r.status == 303, await r.text()
    [order] = await orders_of(ctx, user["id"])
    assert r.headers["Location"] == f"/orders/{order['id']}"
    assert (order["quantity"], order["total_amount"], order["payment_method"], order["address"]) == \
        (2, Decimal("39.80"), "card", ADDRESS)
    assert await goods_row(ctx, goods_id) == {"stock": 3, "sales": 2}
    html = await (await client.get(r.headers["Location"])).text()
    assert f"Order {order['order_number']} placed." in html
    assert 'data-testid="order-pay"' in html and 'data-testid="order-cancel"' in html


async def test_checkout_with_a_new_address_saves_it_as_default(page_user, factory, ctx):
    client, user, token = page_user
    goods_id = await factory.goods(stock=5)
    r = await client.post(f"/checkout/{goods_id}", allow_redirects=False, data={
        "csrf_token": token, "quantity": "1", "address_id": "new", "payment_method": "wechat", **NEW})
    assert r.status == 303, await r.text()
    [address] = await addresses.list_addresses(ctx, user["id"])
    assert address["is_default"] is True and address["receiver_name"] == "Han Meimei"
    [order] = await orders_of(ctx, user["id"])
    assert order["address"] == {k.removeprefix("new_"): v for k, v in NEW.items()}


async def test_checkout_errors_rerender_and_write_nothing(page_user, factory, ctx):
    client, user, token = page_user
    goods_id = await factory.goods(stock=5)
    r = await client.post(f"/checkout/{goods_id}", data={
        "csrf_token": token, "quantity": "0", "address_id": "new", "payment_method": "cash",
        **NEW, "new_phone": "not a phone", "new_city": ""})
    assert r.status == 400
    html = await r.text()
    for message in ("Must be between 1 and 99.", "Not a valid phone number.", "This field is required.",
                    "Must be one of: alipay, card, wechat."):
        assert message in html
    assert 'value="Han Meimei"' in html and checked_value(html, "address_id") == "new"
    assert await addresses.list_addresses(ctx, user["id"]) == []
    assert await order_count(ctx, goods_id) == 0
    assert await goods_row(ctx, goods_id) == {"stock": 5, "sales": 0}


async def test_checkout_beyond_the_stock_says_so(page_user, factory, ctx):
    client, user, token = page_user
    goods_id = await factory.goods(stock=1)
    address_id = await factory.address(user["id"])
    r = await client.post(f"/checkout/{goods_id}", data={
        "csrf_token": token, "quantity": "2", "address_id": str(address_id), "payment_method": "alipay"})
    assert r.status == 409
    html = await r.text()
    assert "Not enough stock." in html and checked_value(html, "address_id") == str(address_id)
    assert await order_count(ctx, goods_id) == 0


async def test_checkout_with_another_users_address_is_refused(page_user, factory, ctx):
    client, user, token = page_user
    goods_id = await factory.goods(stock=5)
    await factory.address(user["id"])
    other = await factory.user()
    foreign = await factory.address(other["id"])
    r = await client.post(f"/checkout/{goods_id}", data={
        "csrf_token": token, "quantity": "1", "address_id": str(foreign), "payment_method": "alipay"})
    assert r.status == 400
    assert "Choose one of your addresses." in await r.text()
    assert await order_count(ctx, goods_id) == 0


async def test_checkout_post_without_csrf_token_is_403(page_user, factory, ctx):
    client, user, token = page_user
    goods_id = await factory.goods(stock=5)
    address_id = await factory.address(user["id"])
    r = await client.post(f"/checkout/{goods_id}", data={
        "quantity": "1", "address_id": str(address_id), "payment_method": "alipay"})
    assert r.status == 403
    assert await order_count(ctx, goods_id) == 0


async def test_order_list_tabs_and_pages(page_user, factory, ctx):
    client, user, token = page_user
    goods_id = await factory.goods(stock=100, name="Green Mug")
    address_id = await factory.address(user["id"])
    ids = []
    roomy = dataclasses.replace(ctx, settings=ctx.settings.replace(max_pending_orders=20))  # 12 unpaid
    for _ in range(12):
        ids.append((await orders.place_order(roomy, user["id"], {
            "goods_id": goods_id, "quantity": 1, "address_id": address_id, "payment_method": "alipay"}))["id"])
    await set_status(ctx, ids[0], "shipped")

    html = await (await client.get("/orders")).text()
    rows = re.findall(r'data-testid="order-row" data-order-id="(\d+)"', html)
    assert rows == [str(i) for i in reversed(ids[2:])]  # newest first, 10 a page
    assert 'href="/orders?page=2"' in html and "Green Mug" in html

    html = await (await client.get("/orders?page=2")).text()
    assert re.findall(r'data-order-id="(\d+)"', html) == [str(ids[1]), str(ids[0])]

    html = await (await client.get("/orders?status=shipped")).text()
    assert re.findall(r'data-order-id="(\d+)"', html) == [str(ids[0])]
    assert re.search(r'class="nav-link text-nowrap active" aria-current="page"\s+href="/orders\?status=shipped"', html)

    html = await (await client.get("/orders?status=completed")).text()
    assert 'data-testid="no-orders"' in html
    assert (await client.get("/orders?status=bogus")).status == 200


async def test_order_page_walks_the_life_cycle(page_user, factory, ctx):
    client, user, token = page_user
    goods_id = await factory.goods(stock=5)
    address_id = await factory.address(user["id"])
    order = await orders.place_order(ctx, user["id"], {
        "goods_id": goods_id, "quantity": 1, "address_id": address_id, "payment_method": "alipay"})
    url = f"/orders/{order['id']}"

    async def act(action, expect_location=url):
        r = await client.post(f"{url}/{action}", data={"csrf_token": token}, allow_redirects=False)
        assert r.status == 303, await r.text()
        assert r.headers["Location"] == expect_location
        return await (await client.get(expect_location)).text()

    html = await (await client.get(url)).text()
    assert 'data-testid="pay-deadline"' in html and "go back into stock" in html  # ordinary orders too
    assert "Order placed" in html

    html = await act("pay")
    assert "Payment received. Thank you!" in html
    assert 'data-status="paid"' in html and 'data-testid="transaction-id"' in html
    assert 'data-testid="order-pay"' not in html and 'data-testid="order-cancel"' in html
    assert "To pay → Paid" in html

    html = await act("confirm")  # not shipped yet
    assert "The order is not in a state that allows this." in html and 'data-status="paid"' in html

    await set_status(ctx, order["id"], "shipped")
    html = await (await client.get(url)).text()
    assert 'data-testid="order-confirm"' in html and 'data-testid="order-cancel"' not in html
    html = await act("confirm")
    assert "Receipt confirmed." in html and 'data-status="completed"' in html
    assert 'data-testid="order-delete"' in html

    html = await act("delete", "/orders")
    assert "Order deleted." in html and f'data-order-id="{order["id"]}"' not in html
    assert (await client.get(url)).status == 404


async def test_order_page_cancel_returns_stock(page_user, factory, ctx):
    client, user, token = page_user
    goods_id = await factory.goods(stock=5)
    address_id = await factory.address(user["id"])
    order = await orders.place_order(ctx, user["id"], {
        "goods_id": goods_id, "quantity": 2, "address_id": address_id, "payment_method": "alipay"})
    r = await client.post(f"/orders/{order['id']}/cancel", data={"csrf_token": token})
    assert r.status == 200
    html = await r.text()
    assert "Order cancelled." in html and 'data-status="cancelled"' in html
    assert "To pay → Cancelled" in html
    assert await goods_row(ctx, goods_id) == {"stock": 5, "sales": 0}


async def test_pending_flash_order_shows_a_pay_countdown(page_user, factory, ctx):
    client, user, token = page_user
    order_id, _ = await flash_order(ctx, user["id"], await factory.goods())
    html = await (await client.get(f"/orders/{order_id}")).text()
    deadline = await db.fetch_value(ctx.db, "SELECT pay_deadline FROM orders WHERE id = %s", (order_id,))
    assert re.search(r'data-testid="pay-deadline"', html)
    assert f'data-countdown="{deadline.strftime("%Y-%m-%dT%H:%M:%S.")}' in html
    assert static_url("js/shop.js") in html and "Flash sale" in html


async def test_expired_flash_order_page_pay_says_expired(page_user, factory, ctx):
    client, user, token = page_user
    order_id, _ = await flash_order(ctx, user["id"], await factory.goods(), deadline_s=-1)
    r = await client.post(f"/orders/{order_id}/pay", data={"csrf_token": token})
    assert r.status == 200
    assert "The payment window has closed." in await r.text()


async def test_another_users_order_page_is_404(page_user, factory, ctx):
    client, user, token = page_user
    other = await factory.user()
    theirs, _ = await flash_order(ctx, other["id"], await factory.goods())
    assert (await client.get(f"/orders/{theirs}")).status == 404
    for action in ("pay", "cancel", "confirm", "delete"):
        r = await client.post(f"/orders/{theirs}/{action}", data={"csrf_token": token}, allow_redirects=False)
        assert r.status == 404, action
    assert await db.fetch_value(ctx.db, "SELECT status FROM orders WHERE id = %s", (theirs,)) == "pending"


async def test_order_action_without_csrf_token_is_403(page_user, factory, ctx):
    client, user, token = page_user
    address_id = await factory.address(user["id"])
    order = await orders.place_order(ctx, user["id"], {
        "goods_id": await factory.goods(), "quantity": 1, "address_id": address_id, "payment_method": "alipay"})
    r = await client.post(f"/orders/{order['id']}/pay", data={}, allow_redirects=False)
    assert r.status == 403
    assert await db.fetch_value(ctx.db, "SELECT status FROM orders WHERE id = %s", (order["id"],)) == "pending"
