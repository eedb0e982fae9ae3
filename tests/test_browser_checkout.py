"""A shopper in Chromium: log in, find the goods from home, check out with a new address, pay."""
from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from flashsale import db
from flashsale.appkeys import CTX

from tests.support.factory import Factory, unique

# the browser, the served app and the test share one loop: Playwright and the pool are bound to it
# (fixtures browser, live_app and page live in conftest.py)
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


async def test_shopper_checks_out_with_a_new_address_and_pays(live_app, page):
    base, app = live_app
    ctx = app[CTX]
    factory = Factory(ctx)
    user = await factory.user(username=unique("browser_shopper"))
    name = unique("Browser Kettle ")
    category_id = await factory.category(unique("Browser category "))
    # best seller by far: first on the home page, whatever other tests left in this database
    goods_id = await factory.goods(stock=5, price="25.00", name=name, sales=10**9, category_id=category_id)

    await page.goto(f"{base}/login")
    await page.fill("#f-username", user["username"])
    await page.fill("#f-password", user["password"])
    await page.click("form[action='/login'] button[type=submit]")
    await expect(page.get_by_test_id("nav-username")).to_have_text(user["username"])

    await page.goto(f"{base}/")
    await page.get_by_text(name, exact=True).click()  # the card's title link
    await expect(page).to_have_url(f"{base}/goods/{goods_id}")
    await page.get_by_test_id("buy-form").locator("input[name=quantity]").fill("2")
    await page.get_by_role("button", name="Buy now").click()

    await expect(page).to_have_url(f"{base}/checkout/{goods_id}?quantity=2")
    await expect(page.get_by_test_id("checkout-total")).to_have_text("¥50.00")
    await expect(page.locator("#new-address")).to_have_attribute("open", "")
    await page.fill("#f-new_receiver_name", "Han Meimei")
    await page.fill("#f-new_phone", "13900000000")
    await page.fill("#f-new_province", "Jiangsu")
    await page.fill("#f-new_city", "Suzhou")
    await page.fill("#f-new_detail_address", "8 Canal Street")
    await page.get_by_text("WeChat Pay").click()
    await page.get_by_test_id("place-order").click()

    await expect(page).to_have_url(re.compile(rf"{re.escape(base)}/orders/\d+$"))
    order_id = int(page.url.rsplit("/", 1)[1])
    await expect(page.get_by_role("alert").filter(has_text="placed")).to_be_visible()
    await expect(page.get_by_test_id("order-status")).to_have_attribute("data-status", "pending")
    await expect(page.get_by_test_id("order-total")).to_have_text("¥50.00")
    await expect(page.get_by_text("8 Canal Street")).to_be_visible()

    await page.get_by_test_id("order-pay").click()
    await expect(page.get_by_text("Payment received. Thank you!")).to_be_visible()
    await expect(page.get_by_test_id("order-status")).to_have_attribute("data-status", "paid")
    await expect(page.get_by_test_id("transaction-id")).to_have_text(re.compile(r"^SIM[0-9A-F]{24}$"))
    await expect(page.get_by_test_id("order-timeline")).to_contain_text("To pay → Paid")

    await page.goto(f"{base}/orders?status=paid")
    await expect(page.locator(f'[data-testid=order-row][data-order-id="{order_id}"]')).to_contain_text(name)

    assert await db.fetch_one(ctx.db, "SELECT stock, sales FROM goods WHERE id = %s", (goods_id,)) == \
        {"stock": 3, "sales": 10**9 + 2}
    row = await db.fetch_one(ctx.db, "SELECT status, payment_method, receiver_name FROM orders WHERE id = %s",
                             (order_id,))
    assert row == {"status": "paid", "payment_method": "wechat", "receiver_name": "Han Meimei"}
    default = await db.fetch_value(ctx.db, "SELECT is_default FROM addresses WHERE user_id = %s", (user["id"],))
    assert default == 1
