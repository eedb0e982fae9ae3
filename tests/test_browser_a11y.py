"""Accessibility: axe-core (vendored in tests/vendor/axe-core, no network) finds no violation on any
page, desktop and phone, logged out, as a shopper and as an admin, with data on every page."""
from __future__ import annotations

import datetime as dt
import os
import pathlib

import pytest
from playwright.async_api import expect

from flashsale import db
from flashsale.appkeys import CTX
from flashsale.services import orders, seckill

from tests.support.browser import DESKTOP, PHONE, log_in
from tests.support.factory import Factory, unique
from tests.support.orders import placed_order
from tests.support.seckill import iso, now

# the browser, the served app and the test share one loop (fixtures browser, live_app: conftest.py)
pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

AXE = pathlib.Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
# -> [{id, impact, help, targets: [the first few nodes' selectors]}]
RUN_AXE = """async () => {
  const NODES = %d;
  // target-size (24 px, WCAG 2.2) is off by default: on here, for phones
  const r = await axe.run(document, {resultTypes: ["violations"], rules: {"target-size": {enabled: true}}});
  return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                 targets: v.nodes.slice(0, NODES).map(n => {
                                   const d = (n.any[0] || {}).data || {};  // colour-contrast: the colours
                                   return n.target.join(" ") + (d.fgColor ? ` ${d.fgColor} on ${d.bgColor} ${d.contrastRatio}` : "");
                                 })}));
}""" % int(os.environ.get("AXE_NODES", "4"))


async def violations_of(page, url: str) -> list[dict]:
    response = await page.goto(url)
    assert response is not None
    await page.wait_for_load_state("load")
    await page.add_script_tag(path=str(AXE))
    return await page.evaluate(RUN_AXE)


async def shop_data(app) -> dict:
    """A category of goods (more than a page of them), a live and an upcoming sale, a shopper with an
    address and orders (a paid one with a log, a pending flash-sale one), an admin."""
    ctx = app[CTX]
    factory = Factory(ctx)
    category = await factory.category(unique("A11y Phones "))
    goods = [await factory.goods(category_id=category, name=unique("A11y Smartphone "), sales=n) for n in range(25)]
    start = now()
    live = await seckill.create_sale(ctx, {
        "goods_id": goods[0], "price": "9.90", "total_stock": 5, "per_user_limit": 1,
        "start_time": iso(start - dt.timedelta(minutes=1)), "end_time": iso(start + dt.timedelta(hours=1))})
    upcoming = await seckill.create_sale(ctx, {
        "goods_id": goods[1], "price": "5.00", "total_stock": 5, "per_user_limit": 1,
        "start_time": iso(start + dt.timedelta(hours=2)), "end_time": iso(start + dt.timedelta(hours=3))})
    shopper = await factory.user(username=unique("a11y_shopper"))
    paid = await placed_order(ctx, factory, user=shopper, goods_id=goods[2], pay=True)
    address_id = await db.fetch_value(ctx.db, "SELECT id FROM addresses WHERE user_id = %s", (shopper["id"],))
    await orders.place_order(ctx, shopper["id"], {"goods_id": goods[3], "quantity": 1, "address_id": address_id,
                                                  "payment_method": "wechat"})
    admin = await factory.user(username=unique("a11y_admin"), role="admin")
    return {"category": category, "goods": goods, "live": live["id"], "upcoming": upcoming["id"],
            "shopper": shopper, "admin": admin, "order": paid["id"], "address": address_id}


def pages_for(role: str, d: dict) -> list[str]:
    g = d["goods"][0]
    public = ["/", f"/goods/{g}", "/categories", f"/?category_id={d['category']}", "/seckill",
              f"/seckill/{d['live']}", f"/seckill/{d['upcoming']}", "/no-such-page"]
    if role == "anonymous":
        return public + ["/login", "/register", "/password/forgot", "/password/reset?token=abc"]
    shopper = public + [f"/checkout/{g}", "/account/password", "/addresses", "/orders", f"/orders/{d['order']}"]
    if role == "shopper":
        return shopper
    return ["/admin", "/admin/goods", "/admin/goods/new", f"/admin/goods/{g}", "/admin/categories",
            "/admin/seckill", "/admin/seckill/new", f"/admin/seckill/{d['live']}", f"/admin/seckill/{d['upcoming']}",
            "/admin/orders", f"/admin/orders/{d['order']}", "/admin/users", "/admin/nothing-here"]


def report(found: dict[str, list[dict]]) -> str:
    lines = []
    for where, violations in found.items():
        for v in violations:
            lines.append(f"{where}: {v['id']} ({v['impact']}) {v['help']}: {', '.join(v['targets'])}")
    return "\n".join(lines)


@pytest.mark.parametrize("role", ["anonymous", "shopper", "admin"])
async def test_every_page_has_no_axe_violation(live_app, browser, role):
    base, app = live_app
    data = await shop_data(app)
    found: dict[str, list[dict]] = {}
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        phone = viewport is PHONE
        # bypass_csp: the pages allow only their own script files (script-src 'self'); axe-core is
        # injected by the test, as an inline script tag
        context = await browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone, bypass_csp=True)
        try:
            page = await context.new_page()
            page.set_default_timeout(10_000)
            if role != "anonymous":
                await log_in(page, base, data[role], "/")
            for path in pages_for(role, data):
                violations = await violations_of(page, f"{base}{path}")
                if violations:
                    found[f"{name} {path}"] = violations
            if role == "anonymous":
                # a form in error: the fields point at their messages
                await page.goto(f"{base}/register")
                await page.click("form[action='/register'] button[type=submit]")
                await expect(page.locator("#f-username")).to_have_attribute("aria-invalid", "true")
                await page.add_script_tag(path=str(AXE))
                violations = await page.evaluate(RUN_AXE)
                if violations:
                    found[f"{name} /register (in error)"] = violations
        finally:
            await context.close()
    assert not found, "axe-core found:\n" + report(found)


async def test_the_skip_link_comes_first_and_focus_shows_on_the_red_navbar(live_app, page):
    base, _ = live_app
    await page.goto(f"{base}/seckill")
    await page.keyboard.press("Tab")
    skip = page.locator(":focus")
    await expect(skip).to_have_text("Skip to content")
    await expect(skip).to_have_attribute("href", "#main")
    assert await skip.evaluate("el => el.getBoundingClientRect().top >= 0")  # shown once focused
    await page.keyboard.press("Enter")
    await expect(page.locator(":focus")).to_have_id("main")
    # the next stop is in the navbar: a white ring outside a dark one, not the browser's faint default
    await page.goto(f"{base}/seckill")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    ring = await page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
        return [document.activeElement.closest('.navbar') !== null, s.outlineStyle, s.outlineWidth, s.outlineColor]; }""")
    assert ring == [True, "solid", "3px", "rgb(255, 255, 255)"]
