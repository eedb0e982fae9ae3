"""An admin in Chromium: the dashboard's charts and live table, a flash sale made through the form,
a paid order shipped; screenshots of the dashboard and the orders on a desktop and a phone."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.async_api import expect

from flashsale import db
from flashsale.appkeys import CTX

from tests.support.factory import Factory, unique
from tests.support.orders import placed_order, utc_now

# the browser, the served app and the test share one loop (fixtures browser, live_app, page: conftest.py)
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

PHONE = {"width": 390, "height": 844}
SCREENSHOTS = "/tmp/admin-{name}-{size}.png"

# -> how many pixels of the canvas are not transparent (Chart.js drew something)
DRAWN_PIXELS = """(id) => {
  const canvas = document.getElementById(id);
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let drawn = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) drawn++;
  return drawn;
}"""


async def log_in(page, base: str, user: dict, next_path: str) -> None:
    await page.goto(f"{base}/login?next={next_path}")
    await page.fill("#f-username", user["username"])
    await page.fill("#f-password", user["password"])
    await page.click("form[action='/login'] button[type=submit]")
    await expect(page).to_have_url(f"{base}{next_path}")


async def screenshots(page, base: str, name: str, path: str) -> None:
    await page.goto(f"{base}{path}")
    await page.screenshot(path=SCREENSHOTS.format(name=name, size="desktop"), full_page=True)
    await page.set_viewport_size(PHONE)
    await page.goto(f"{base}{path}")
    await page.screenshot(path=SCREENSHOTS.format(name=name, size="phone"), full_page=True)
    await page.set_viewport_size({"width": 1280, "height": 900})


async def test_admin_reads_the_dashboard_schedules_a_sale_and_ships_an_order(live_app, page):
    base, app = live_app
    ctx = app[CTX]
    factory = Factory(ctx)
    admin = await factory.user(role="admin", username=unique("boss"))
    buyer = await factory.user(username=unique("buyer"))
    goods_id = await factory.goods(name=unique("Browser Teapot "), stock=50)
    order = await placed_order(ctx, factory, user=buyer, goods_id=goods_id, quantity=2, pay=True)

    await log_in(page, base, admin, "/admin")
    await page.wait_for_function("() => window.Chart && Chart.getChart(document.getElementById('daily-chart'))")
    assert await page.evaluate(DRAWN_PIXELS, "daily-chart") > 1000
    assert await page.evaluate(DRAWN_PIXELS, "status-chart") > 1000
    await expect(page.get_by_test_id("figure-to-ship")).to_contain_text("To ship")
    # the live table asks /api/admin/stats every 2 s and stamps the time of its last answer
    await expect(page.get_by_test_id("live-updated")).to_have_text(re.compile(r"\d{1,2}:\d{2}:\d{2}"), timeout=5000)

    # a flash sale through the form: times are typed in UTC
    await page.get_by_test_id("admin-nav").get_by_role("link", name="Flash sales").click()
    await page.get_by_test_id("new-sale").click()
    await expect(page).to_have_url(f"{base}/admin/seckill/new")
    start = (utc_now() + dt.timedelta(hours=1)).replace(second=0, microsecond=0)
    end = start + dt.timedelta(minutes=30)
    await page.select_option("#f-goods_id", str(goods_id))
    await page.fill("#f-price", "9.90")
    await page.fill("#f-total_stock", "25")
    await page.fill("#f-per_user_limit", "1")
    await page.fill("#f-start_time", start.strftime("%Y-%m-%dT%H:%M"))
    await page.fill("#f-end_time", end.strftime("%Y-%m-%dT%H:%M"))
    await page.get_by_test_id("save-sale").click()
    await expect(page).to_have_url(f"{base}/admin/seckill")
    await expect(page.get_by_role("alert")).to_contain_text("scheduled")
    sale = await db.fetch_one(ctx.db, "SELECT id, total_stock, start_time, end_time FROM flash_sales "
                                      "WHERE goods_id = %s", (goods_id,))
    assert (sale["total_stock"], sale["start_time"], sale["end_time"]) == (25, start, end)
    row = page.locator(f'[data-testid="sale-row"][data-sale-id="{sale["id"]}"]')
    for number in range(1, 100):  # the run's other sales may fill the first page: look on the upcoming tab
        if await row.count() or not await page.get_by_test_id("sale-row").count():
            break
        await page.goto(f"{base}/admin/seckill?state=upcoming&page={number}")
    await expect(row.get_by_test_id("sale-state").first).to_have_attribute("data-state", "upcoming")
    await expect(row.get_by_test_id("sale-left")).to_have_text("25 / 25")

    # the paid order: found by its buyer on the "To ship" tab, shipped with a note
    await page.goto(f"{base}/admin/orders?status=paid&q={buyer['username']}")
    await page.locator(f'[data-order-id="{order["id"]}"] a').first.click()
    await expect(page).to_have_url(f"{base}/admin/orders/{order['id']}")
    await page.fill("#f-remark", "SF Express 9988")
    await page.get_by_test_id("to-shipped").click()
    await expect(page.get_by_role("alert")).to_contain_text("Order marked as shipped.")
    await expect(page.get_by_test_id("order-status")).to_have_attribute("data-status", "shipped")
    await expect(page.get_by_test_id("order-timeline")).to_contain_text("SF Express 9988")
    await expect(page.get_by_test_id("to-completed")).to_be_visible()
    assert await db.fetch_value(ctx.db, "SELECT status FROM orders WHERE id = %s", (order["id"],)) == "shipped"

    await screenshots(page, base, "dashboard", "/admin")
    await screenshots(page, base, "orders", "/admin/orders")
