"""Times in the viewer's own zone: the same order time in Shanghai and New York, with the zone named;
an admin in Shanghai types a sale's start in local time and the server stores UTC."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import expect

from flashsale import db
from flashsale.appkeys import CTX

from tests.support.browser import log_in
from tests.support.factory import Factory, unique
from tests.support.orders import placed_order
from tests.support.seckill import iso

# the browser, the served app and the test share one loop (fixtures browser, live_app: conftest.py)
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

UTC = dt.timezone.utc


async def in_zone(browser, zone: str):
    return await browser.new_context(timezone_id=zone, locale="en-US", viewport={"width": 1280, "height": 800})


async def test_an_order_time_shows_in_each_viewers_zone_with_the_zone_named(live_app, browser):
    base, app = live_app
    factory = Factory(app[CTX])
    user = await factory.user(username=unique("tz_shopper"))
    order = await placed_order(app[CTX], factory, user=user)
    placed = order["created_at"].replace(tzinfo=UTC)
    seen = {}
    for zone, name in (("Asia/Shanghai", "GMT+8"), ("America/New_York", placed.astimezone(ZoneInfo("America/New_York")).tzname())):
        context = await in_zone(browser, zone)
        try:
            page = await context.new_page()
            await log_in(page, base, user, f"/orders/{order['id']}")
            placed_at = page.locator(f'time[datetime="{iso(order["created_at"])}"]').first
            local = placed.astimezone(ZoneInfo(zone))
            await expect(placed_at).to_contain_text(local.strftime("%H:%M"))
            await expect(placed_at).to_contain_text(name)
            await expect(placed_at).to_contain_text(local.strftime("%d"))
            seen[zone] = await placed_at.inner_text()
            # the readable UTC fallback is kept as the tooltip
            assert await placed_at.get_attribute("title") == placed.strftime("%Y-%m-%d %H:%M UTC")
            # the list shows it the same way, and the footer names the zone
            await page.goto(f"{base}/orders")
            await expect(page.locator(f'time[datetime="{iso(order["created_at"])}"]').first).to_have_text(seen[zone])
            await expect(page.locator("footer [data-zone-name]")).to_have_text(name)
        finally:
            await context.close()
    assert seen["Asia/Shanghai"] != seen["America/New_York"]


async def test_an_admin_types_sale_times_in_their_zone_and_the_server_stores_utc(live_app, browser):
    base, app = live_app
    ctx = app[CTX]
    factory = Factory(ctx)
    admin = await factory.user(username=unique("tz_admin"), role="admin")
    goods_id = await factory.goods(name=unique("Zone Kettle "), stock=50)
    day = (dt.datetime.now(UTC) + dt.timedelta(days=2)).date()
    context = await in_zone(browser, "Asia/Shanghai")
    try:
        page = await context.new_page()
        await log_in(page, base, admin, "/admin/seckill/new")
        # the labels name the admin's zone, not UTC
        await expect(page.locator("label[for=f-start_time]")).to_have_text("Starts (GMT+8)")
        await page.select_option("#f-goods_id", str(goods_id))
        await page.fill("#f-price", "9.90")
        await page.fill("#f-total_stock", "10")
        await page.fill("#f-start_time", f"{day.isoformat()}T20:00")
        await page.fill("#f-end_time", f"{day.isoformat()}T21:30")
        await page.get_by_test_id("save-sale").click()
        await expect(page).to_have_url(f"{base}/admin/seckill")
        sale = await db.fetch_one(ctx.db, "SELECT id, start_time, end_time FROM flash_sales WHERE goods_id = %s",
                                  (goods_id,))
        assert (sale["start_time"], sale["end_time"]) == (dt.datetime.combine(day, dt.time(12, 0)),
                                                          dt.datetime.combine(day, dt.time(13, 30)))
        # editing shows the stored UTC time back in local time
        await page.goto(f"{base}/admin/seckill/{sale['id']}")
        await expect(page.locator("#f-start_time")).to_have_value(f"{day.isoformat()}T20:00")
        # a refused form keeps what was typed, still in local time
        await page.fill("#f-end_time", f"{day.isoformat()}T19:00")
        await page.get_by_test_id("save-sale").click()
        await expect(page.locator("#f-end_time-error")).to_have_text("Must be after the start time.")
        await expect(page.locator("#f-end_time")).to_have_value(f"{day.isoformat()}T19:00")
        await expect(page.locator("#f-start_time")).to_have_value(f"{day.isoformat()}T20:00")
    finally:
        await context.close()


async def test_without_javascript_the_sale_form_takes_utc(live_app, browser):
    base, app = live_app
    ctx = app[CTX]
    factory = Factory(ctx)
    admin = await factory.user(username=unique("tz_admin"), role="admin")
    goods_id = await factory.goods(name=unique("Plain Kettle "), stock=50)
    day = (dt.datetime.now(UTC) + dt.timedelta(days=2)).date()
    context = await browser.new_context(timezone_id="Asia/Shanghai", java_script_enabled=False)
    try:
        page = await context.new_page()
        await log_in(page, base, admin, "/admin/seckill/new")
        await expect(page.locator("label[for=f-start_time]")).to_have_text("Starts (UTC)")
        await page.select_option("#f-goods_id", str(goods_id))
        await page.fill("#f-price", "9.90")
        await page.fill("#f-total_stock", "10")
        await page.fill("#f-start_time", f"{day.isoformat()}T20:00")
        await page.fill("#f-end_time", f"{day.isoformat()}T21:00")
        await page.click("[data-testid=save-sale]")
        await expect(page).to_have_url(f"{base}/admin/seckill")
        start = await db.fetch_value(ctx.db, "SELECT start_time FROM flash_sales WHERE goods_id = %s", (goods_id,))
        assert start == dt.datetime.combine(day, dt.time(20, 0))
    finally:
        await context.close()
