"""A first visit of each main page in Chromium: bytes on the wire, and icons drawn from the subset font."""
from __future__ import annotations

import pytest

from flashsale.appkeys import CTX

from tests.support.auth import session_cookie
from tests.support.factory import Factory, unique
from tests.support.page_weight import first_visit
from tests.support.seckill import make_sale

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

SALE_PAGE_BUDGET = 200 * 1024  # bytes on the wire for a first visit of a sale page (issue 14)

# -> for each <i class="bi ..."> of the page: its icon class, the font of its ::before and whether it has a glyph
ICONS = """() => [...document.querySelectorAll("i.bi")].map(i => {
  const before = getComputedStyle(i, "::before");
  const name = [...i.classList].find(c => c.startsWith("bi-"));
  const text = before.content.replace(/^"|"$/g, "");
  return {name, font: before.fontFamily, content: text,
          drawn: text.length > 0 && document.fonts.check("16px bootstrap-icons", text)};
})"""


async def main_pages(app) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """The pages of issue 14's table, with a sale and goods of their own; the admin's cookie."""
    ctx = app[CTX]
    factory = Factory(ctx)
    sale = await make_sale(ctx, factory, length_s=3600)
    admin = await factory.user(role="admin", username=unique("pw_admin"))
    headers, _ = await session_cookie(app, admin["id"])
    return [("home", "/"), ("goods", f"/goods/{sale['goods']['id']}"), ("sale", f"/seckill/{sale['id']}"),
            ("login", "/login"), ("admin", "/admin")], {"Cookie": headers["Cookie"]}


async def test_first_visits_stay_light_and_the_sale_page_under_its_budget(live_app, browser):
    base, app = live_app
    pages, admin_headers = await main_pages(app)
    weights = {}
    for name, path in pages:
        weights[name] = await first_visit(browser, base + path,
                                          headers=admin_headers if name == "admin" else None)
    print("\npage    on the wire   uncompressed  requests")
    for name, w in weights.items():
        print(f"{name:<7} {w.wire / 1024:8.1f} KB  {w.decoded / 1024:9.1f} KB  {len(w.resources):5}")

    sale = weights["sale"]
    assert sale.wire < SALE_PAGE_BUDGET, sale.resources
    # every static file came compressed or is a format that is compressed already
    assert all(size < 60 * 1024 for size in sale.resources.values()), sale.resources
    # Chart.js only where a chart is drawn
    assert not any("chart" in url for name in ("home", "goods", "sale", "login")
                   for url in weights[name].resources)
    assert any("chart" in url for url in weights["admin"].resources)


async def test_icons_render_from_the_subset_font(live_app, page):
    base, app = live_app
    pages, admin_headers = await main_pages(app)
    for name, path in pages:
        await page.context.set_extra_http_headers(admin_headers if name == "admin" else {})
        await page.goto(base + path, wait_until="networkidle")
        await page.evaluate("document.fonts.ready.then(() => true)")
        icons = await page.evaluate(ICONS)
        assert icons, path
        for icon in icons:
            assert "bootstrap-icons" in icon["font"], (path, icon)
            assert icon["content"] not in ("", "none", "normal") and icon["drawn"], (path, icon)


# -> a hash of every element's computed style but the sizes text changes move (a live countdown ticks between loads)
STYLES = """() => {
  const skip = new Set(["width", "height", "inline-size", "block-size", "transform-origin", "perspective-origin"]);
  return [...document.querySelectorAll("*")].map(el => {
    const cs = getComputedStyle(el);
    const text = [...cs].filter(p => !skip.has(p)).map(p => p + ":" + cs.getPropertyValue(p)).join(";");
    let hash = 2166136261;  // FNV-1a: a short answer instead of a megabyte of styles
    for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 16777619);
    return el.tagName + "." + el.className + " " + (hash >>> 0).toString(16);
  });
}"""
FULL_BOOTSTRAP = "static/vendor/bootstrap/bootstrap.min.css"


async def styles(page, url: str, *, full_bootstrap: bool, open_menu: bool) -> list[str]:
    await page.unroute("**/static/build/bootstrap.css*")
    if full_bootstrap:
        await page.route("**/static/build/bootstrap.css*",
                         lambda route: route.fulfill(path=FULL_BOOTSTRAP, content_type="text/css"))
    await page.goto(url, wait_until="load")
    if open_menu:
        await page.click(".navbar-toggler")
        await page.wait_for_selector("#mainNav.show")
        await page.wait_for_timeout(400)  # the collapse transition
    return await page.evaluate(STYLES)


@pytest.mark.slow
@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 900}, {"width": 390, "height": 844}],
                         ids=["desktop", "phone"])
async def test_the_cut_down_bootstrap_styles_pages_as_the_full_one_does(live_app, browser, viewport):
    base, app = live_app
    pages, admin_headers = await main_pages(app)
    phone = viewport["width"] < 992
    for name, path in pages:
        if phone and name in ("goods", "login"):
            continue  # the same markup as on desktop; the phone run checks the open navbar menu
        context = await browser.new_context(viewport=viewport,
                                            extra_http_headers=admin_headers if name == "admin" else {})
        try:
            page = await context.new_page()
            for open_menu in ([False, True] if phone else [False]):
                full = await styles(page, base + path, full_bootstrap=True, open_menu=open_menu)
                cut = await styles(page, base + path, full_bootstrap=False, open_menu=open_menu)
                assert len(full) == len(cut), path
                differ = [(a, b) for a, b in zip(full, cut) if a != b]
                assert not differ, (path, open_menu, differ[:3])
        finally:
            await context.close()
