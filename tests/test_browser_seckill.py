"""A shopper in Chromium: log in, grab a flash-sale unit, pay for it; the page's clock and live stock."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.async_api import expect

from flashsale import db
from flashsale.appkeys import CTX
from flashsale.services import seckill

from tests.support.auth import session_cookie
from tests.support.factory import Factory, unique
from tests.support.seckill import buyers, iso, now, purchase

# the browser, the served app and the test share one loop (fixtures browser, live_app, page: conftest.py)
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

PHONE = {"width": 390, "height": 844}
SCREENSHOT = "/tmp/seckill-phone.png"


async def shopper_and_sale(app, *, start_in_s: float = -5, stock: int = 5, name: str | None = None):
    """A user with a default address, and a one-hour sale of new goods at 9.90 instead of 29.90."""
    ctx = app[CTX]
    factory = Factory(ctx)
    user = await factory.user(username=unique("sk_shopper"))
    address_id = await factory.address(user["id"])
    goods_id = await factory.goods(name=name or unique("Flash Teapot "), stock=1000)
    start = now() + dt.timedelta(seconds=start_in_s)
    sale = await seckill.create_sale(ctx, {
        "goods_id": goods_id, "price": "9.90", "total_stock": stock, "per_user_limit": 1,
        "start_time": iso(start), "end_time": iso(start + dt.timedelta(hours=1))})
    return user, address_id, sale


async def log_in(page, base: str, user: dict, next_path: str) -> None:
    await page.goto(f"{base}/login?next={next_path}")
    await page.fill("#f-username", user["username"])
    await page.fill("#f-password", user["password"])
    await page.click("form[action='/login'] button[type=submit]")
    await expect(page).to_have_url(f"{base}{next_path}")


async def test_shopper_grabs_a_flash_sale_unit_and_pays_for_it(live_app, page):
    base, app = live_app
    ctx = app[CTX]
    user, address_id, sale = await shopper_and_sale(app)

    # anonymous first: the panel asks to log in and links back here
    await page.goto(f"{base}/seckill/{sale['id']}")
    await page.get_by_test_id("login-to-buy").click()
    await expect(page).to_have_url(f"{base}/login?next=/seckill/{sale['id']}")
    await page.fill("#f-username", user["username"])
    await page.fill("#f-password", user["password"])
    await page.click("form[action='/login'] button[type=submit]")
    await expect(page).to_have_url(f"{base}/seckill/{sale['id']}")

    await expect(page.get_by_test_id("sale-countdown")).to_have_text(re.compile(r"^00:5\d:\d\d$"))
    await expect(page.get_by_test_id("buy-address")).to_have_value(str(address_id))
    await page.get_by_test_id("buy-payment").select_option("wechat")
    buy = page.get_by_test_id("buy-button")
    await expect(buy).to_be_enabled()
    await buy.click()

    status = page.get_by_test_id("buy-status")
    await expect(status).to_contain_text("Got it! Pay by ")
    # the panel knows the buyer now: their order with the pay window counting down, no Buy button
    await expect(status).to_contain_text(re.compile(r"You got one ·\s+Pay now \(1[45]:\d\d left\)"))
    await expect(buy).to_be_disabled()
    await expect(buy).to_have_text("You got one")
    # the outcome has the focus (and is announced: the region is aria-live)
    assert await page.evaluate("document.getElementById('buy-status').contains(document.activeElement)")
    assert await status.get_attribute("aria-live") == "polite"
    # the WebSocket brings the new stock
    await expect(page.get_by_test_id("sale-remaining")).to_have_text("4 of 5 left")
    await page.get_by_test_id("pay-now").click()

    await expect(page).to_have_url(re.compile(rf"{re.escape(base)}/orders/\d+$"))
    order_id = int(page.url.rsplit("/", 1)[1])
    await expect(page.get_by_test_id("order-status")).to_have_attribute("data-status", "pending")
    await expect(page.get_by_test_id("pay-deadline")).to_contain_text("Pay within")
    await expect(page.get_by_test_id("order-total")).to_have_text("¥9.90")
    await page.get_by_test_id("order-pay").click()
    await expect(page.get_by_text("Payment received. Thank you!")).to_be_visible()
    await expect(page.get_by_test_id("order-status")).to_have_attribute("data-status", "paid")

    row = await db.fetch_one(ctx.db, "SELECT user_id, flash_sale_id, status, payment_method, unit_price "
                                     "FROM orders WHERE id = %s", (order_id,))
    assert row == {"user_id": user["id"], "flash_sale_id": sale["id"], "status": "paid",
                   "payment_method": "wechat", "unit_price": sale["price"]}

    # back on the sale: the earlier purchase is shown, and no Buy button invites a second try
    await page.goto(f"{base}/seckill/{sale['id']}")
    await expect(page.get_by_test_id("view-order")).to_have_attribute("href", f"/orders/{order_id}")
    await expect(buy).to_be_disabled()
    await expect(buy).to_have_text("You got one")


async def test_buy_button_opens_when_the_countdown_reaches_the_start(live_app, page):
    base, app = live_app
    user, _, sale = await shopper_and_sale(app, start_in_s=3)
    await log_in(page, base, user, f"/seckill/{sale['id']}")
    buy = page.get_by_test_id("buy-button")
    await expect(page.get_by_test_id("sale-state")).to_have_attribute("data-state", "upcoming")
    await expect(page.get_by_test_id("sale-countdown")).to_have_text(re.compile(r"^00:00:0[1-3]$"))
    await expect(buy).to_be_disabled()
    # no reload: the countdown on the server's clock flips the page to live
    await expect(buy).to_be_enabled(timeout=6000)
    await expect(page.get_by_test_id("sale-state")).to_have_attribute("data-state", "live")
    await expect(page.get_by_test_id("sale-countdown")).to_have_text(re.compile(r"^00:59:\d\d$"))


async def test_stock_falls_back_to_polling_when_the_socket_fails(live_app, page):
    base, app = live_app
    _, _, sale = await shopper_and_sale(app, stock=3)
    refused = []

    async def refuse(ws):  # the server never sees the socket: it closes at once
        refused.append(ws.url)
        await ws.close()

    await page.route_web_socket(re.compile(r".*/api/seckill/\d+/live$"), refuse)
    await page.goto(f"{base}/seckill/{sale['id']}")
    await expect(page.get_by_test_id("sale-remaining")).to_have_text("3 of 3 left")
    [person] = await buyers(app[CTX], 1)
    status, body = await purchase_via(app, base, sale["id"], person)
    assert status == 202, body
    await expect(page.get_by_test_id("sale-remaining")).to_have_text("2 of 3 left", timeout=5000)
    assert refused == [f"{base.replace('http', 'ws')}/api/seckill/{sale['id']}/live"]


async def purchase_via(app, base: str, sale_id: int, person: dict):
    """A purchase by someone else, straight to the served app."""
    import aiohttp

    headers, _ = await session_cookie(app, person["id"])
    async with aiohttp.ClientSession(base) as http:
        return await purchase(http, sale_id, headers, person["address_id"])


async def test_sale_page_fits_a_phone(live_app, browser):
    base, app = live_app
    user, _, sale = await shopper_and_sale(app, name=unique("Hush Pro Noise-Cancelling Headphones "))
    context = await browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    try:
        page = await context.new_page()
        await log_in(page, base, user, f"/seckill/{sale['id']}")
        await expect(page.get_by_test_id("buy-button")).to_be_enabled()
        # nothing sticks out sideways
        assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        await page.screenshot(path=SCREENSHOT)
        await page.screenshot(path=SCREENSHOT.replace(".png", "-full.png"), full_page=True)
        await page.goto(f"{base}/seckill")
        assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        await page.screenshot(path=SCREENSHOT.replace("phone", "list-phone"), full_page=True)
    finally:
        await context.close()


REFUSALS = [
    # (status, reason, extra data, what the panel says, whether the button opens again)
    (409, "sold_out", {}, "Sold out: every unit is taken.", False),
    (409, "already_purchased", {}, "You already have your share of this sale.", True),
    (409, "ended", {}, "Sorry, this sale has ended.", False),
    (429, "rate_limited", {"retry_after": 1}, "Too many tries, wait a second.", True),
    (400, "validation", {"errors": {"address_id": "Choose one of your own addresses."}},
     "Choose one of your own addresses.", True),
]


def answer(status: int, data: dict):
    """A route handler that answers with the contract's envelope."""
    headers = {"Retry-After": str(data["retry_after"])} if "retry_after" in data else {}

    async def handler(route):
        await route.fulfill(status=status, json={"code": status, "msg": data["reason"], "data": data},
                            headers=headers)
    return handler


async def test_refusals_of_a_purchase_get_a_friendly_message(live_app, page):
    base, app = live_app
    user, _, sale = await shopper_and_sale(app)
    await log_in(page, base, user, f"/seckill/{sale['id']}")
    buy, panel = page.get_by_test_id("buy-button"), page.get_by_test_id("buy-status")
    for status, reason, extra, message, reopens in REFUSALS:
        # the engine's answers are tested elsewhere: here the page meets each one on cue
        await page.route("**/api/seckill/*/purchase", answer(status, {"reason": reason, **extra}))
        await page.reload()
        await expect(buy).to_be_enabled()
        await buy.click()
        await expect(panel).to_contain_text(message)
        if reopens:
            await expect(buy).to_be_enabled()
            await expect(buy).to_have_text("Buy now")
        else:
            await expect(buy).to_be_disabled()
            await expect(buy).to_have_text("Sold out" if reason == "sold_out" else "Sale ended")
        await page.unroute("**/api/seckill/*/purchase")

    await page.route("**/api/seckill/*/purchase", answer(401, {"reason": "unauthenticated"}))
    await page.reload()
    await expect(buy).to_be_enabled()
    # to the login page (which sends a logged-in user straight back)
    async with page.expect_request(f"{base}/login?next=/seckill/{sale['id']}"):
        await buy.click()


async def test_sold_out_stock_closes_the_button_live(live_app, page):
    base, app = live_app
    user, _, sale = await shopper_and_sale(app, stock=1)
    await log_in(page, base, user, f"/seckill/{sale['id']}")
    buy = page.get_by_test_id("buy-button")
    await expect(buy).to_be_enabled()
    [person] = await buyers(app[CTX], 1)
    status, body = await purchase_via(app, base, sale["id"], person)
    assert status == 202, body
    await expect(page.get_by_test_id("sale-remaining")).to_have_text("0 of 1 left")
    await expect(buy).to_be_disabled()
    await expect(buy).to_have_text("Sold out")


async def test_the_buy_panel_remembers_the_buyer_after_a_reload(live_app, page):
    base, app = live_app
    user, _, sale = await shopper_and_sale(app)
    await log_in(page, base, user, f"/seckill/{sale['id']}")
    buy = page.get_by_test_id("buy-button")
    await buy.click()
    status = page.get_by_test_id("buy-status")
    await expect(status).to_contain_text(re.compile(r"You got one ·\s+Pay now \(1[45]:\d\d left\)"))
    # the success message names the pay deadline in the viewer's zone, e.g. "Pay by 20:15 UTC"
    await expect(status).to_contain_text(re.compile(r"Got it! Pay by \d\d:\d\d \S+ to keep it\."))
    first = await page.get_by_test_id("pay-now").inner_text()

    await page.reload()
    await expect(buy).to_be_disabled()
    await expect(buy).to_have_text("You got one")
    bought = page.get_by_test_id("bought")
    await expect(bought).to_contain_text(re.compile(r"You got one ·\s+Pay now \(1[45]:\d\d left\)"))
    # the countdown is live: the text moves on within two seconds
    pay_now = page.get_by_test_id("pay-now")
    await expect(pay_now).not_to_have_text(first, timeout=3000)
    later = await pay_now.inner_text()
    await expect(pay_now).not_to_have_text(later, timeout=3000)
    await pay_now.click()
    await expect(page).to_have_url(re.compile(rf"{re.escape(base)}/orders/\d+$"))


async def test_an_upcoming_sale_says_when_it_starts_in_local_time(live_app, browser):
    base, app = live_app
    user, _, sale = await shopper_and_sale(app, start_in_s=3600)
    start = dt.datetime.fromisoformat(iso(sale["start_time"]).replace("Z", "+00:00"))
    context = await browser.new_context(timezone_id="Asia/Shanghai", locale="en-US")
    try:
        page = await context.new_page()
        await log_in(page, base, user, f"/seckill/{sale['id']}")
        buy = page.get_by_test_id("buy-button")
        shanghai = (start + dt.timedelta(hours=8)).strftime("%H:%M")
        await expect(buy).to_be_disabled()
        await expect(buy).to_have_text(f"Starts at {shanghai} GMT+8")
    finally:
        await context.close()
