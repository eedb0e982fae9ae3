"""Flash-sale pages: the list with its tabs, one sale's page and buy panel, and the demo seed's sales."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest

from flashsale import db
from flashsale.seed import DEMO_SHOPPER, GOODS, SALES, seed_demo
from flashsale.services import orders, seckill, seckill_state
from flashsale.static_files import static_url

from tests.support.auth import login, session_cookie
from tests.support.factory import unique
from tests.support.seckill import buyers, iso, now, purchase
from tests.support.waiting import wait_until

CARD = re.compile(r'data-testid="sale-card-(\d+)" data-sale\s+data-start="([^"]+)" data-end="([^"]+)"'
                  r' data-state="(\w+)"')
# -> the demo seed's sales: of its goods (by name, with a drawn picture)
DEMO_SALES = """
SELECT s.id FROM flash_sales s JOIN goods g ON g.id = s.goods_id
 WHERE g.name IN (%s, %s) AND g.photo LIKE 'goods/demo-%%' ORDER BY s.id"""
STATE_RANK = {"live": 0, "upcoming": 1, "ended": 2, "cancelled": 3}


async def named_sale(ctx, factory, name: str, *, start_in_s: float = -1, length_s: float = 3600,
                     stock: int = 5, price: str = "9.90", limit: int = 1) -> dict:
    """A sale of new goods called `name` (goods price 19.90, original 29.90)."""
    goods_id = await factory.goods(name=name, stock=1000)
    start = now() + dt.timedelta(seconds=start_in_s)
    return await seckill.create_sale(ctx, {
        "goods_id": goods_id, "price": price, "total_stock": stock, "per_user_limit": limit,
        "start_time": iso(start), "end_time": iso(start + dt.timedelta(seconds=length_s))})


def cards(html: str) -> list[tuple[int, str]]:
    """(sale id, state) of every card on a list page, in order."""
    return [(int(m.group(1)), m.group(4)) for m in CARD.finditer(html)]


def card_html(html: str, sale_id: int) -> str:
    start = html.index(f'data-testid="sale-card-{sale_id}"')
    end = html.find('data-testid="sale-card-', start + 1)
    return html[start:end if end > 0 else len(html)]


def active_tab(html: str) -> str:
    [href] = re.findall(r'class="nav-link text-nowrap active" aria-current="page"\s+href="([^"]+)"', html)
    return href


def section(html: str, start: str, end: str) -> str:
    """The text between the first `start` and the next `end`."""
    return html.split(start, 1)[1].split(end, 1)[0]


async def page(client, path: str, status: int = 200, **kwargs) -> str:
    r = await client.get(path, **kwargs)
    text = await r.text()
    assert r.status == status, text
    return text


@pytest.fixture
async def on_show(client, ctx, factory):
    """A live sale with one unit sold, an upcoming sale and one that just ended, each of its own goods."""
    tag = unique("s")
    # a very late end puts this live sale first among the live ones, whatever else the run made
    live = await named_sale(ctx, factory, f"Live Kettle {tag}", stock=5, length_s=3650 * 86400)
    upcoming = await named_sale(ctx, factory, f"Soon Toaster {tag}", start_in_s=30, stock=50)
    ended = await named_sale(ctx, factory, f"Gone Lamp {tag}", start_in_s=-2.5, length_s=2)
    [person] = await buyers(ctx, 1)
    status, body = await purchase(client, live["id"], (await session_cookie(client.app, person["id"]))[0],
                                  person["address_id"])
    assert status == 202, body
    return {"live": live, "upcoming": upcoming, "ended": ended, "tag": tag}


async def test_sale_list_shows_live_sales_then_upcoming_then_the_rest(client, on_show):
    html = await page(client, "/seckill")
    shown = cards(html)
    assert shown, html
    ranks = [STATE_RANK[state] for _, state in shown]
    assert ranks == sorted(ranks)
    assert shown[0] == (on_show["live"]["id"], "live")
    assert f"Live Kettle {on_show['tag']}" in html
    assert active_tab(html) == "/seckill"


async def test_live_card_shows_prices_sold_bar_and_countdown_to_the_end(client, on_show):
    live = on_show["live"]
    card = card_html(await page(client, "/seckill?state=live"), live["id"])
    assert f"Live Kettle {on_show['tag']}" in card
    assert f'href="/seckill/{live["id"]}"' in card and live["goods"]["photo_url"] in card
    assert '<span class="price fs-5">¥9.90</span>' in card
    assert '<del class="price-old ms-1">¥29.90</del>' in card
    assert 'aria-valuenow="1" aria-valuemin="0" aria-valuemax="5"' in card
    assert "progress-bar bg-danger pct-20" in card
    assert '<span data-role="remaining">4</span> of 5 left' in card
    assert f'data-end="{iso(live["end_time"])}"' in card
    assert 'data-state="live"' in card and "Ends in" in card


async def test_each_tab_lists_only_its_state(client, on_show):
    tag = on_show["tag"]
    names = {"live": f"Live Kettle {tag}", "upcoming": f"Soon Toaster {tag}", "ended": f"Gone Lamp {tag}"}
    for state in ("live", "upcoming", "ended"):
        html = await page(client, f"/seckill?state={state}")
        assert {s for _, s in cards(html)} == {state}, (state, cards(html))
        assert names[state] in html
        assert [n for s, n in names.items() if s != state and n in html] == []
        assert active_tab(html) == f"/seckill?state={state}"
    upcoming_card = card_html(await page(client, "/seckill?state=upcoming"), on_show["upcoming"]["id"])
    assert "Starts in" in upcoming_card and "0 of 50 left" not in upcoming_card
    assert f'data-start="{iso(on_show["upcoming"]["start_time"])}"' in upcoming_card


async def test_unknown_tab_falls_back_to_all_and_an_empty_page_says_so(client):
    html = await page(client, "/seckill?state=bogus&page=999")
    assert active_tab(html) == "/seckill"
    assert 'data-testid="no-sales"' in html and cards(html) == []


async def test_sale_list_paginates_twelve_a_page(client, ctx, factory):
    tag = unique("p")
    for i in range(13):  # far in the future, so they sort after every other upcoming sale
        await named_sale(ctx, factory, f"Later {tag} #{i}", start_in_s=300 * 86400 + i)
    html = await page(client, "/seckill?state=upcoming")
    assert len(cards(html)) == 12
    assert 'href="/seckill?state=upcoming&amp;page=2"' in html
    total = int(await db.fetch_value(ctx.db, "SELECT COUNT(*) FROM flash_sales WHERE status = 'scheduled' "
                                             "AND start_time > UTC_TIMESTAMP(3)"))
    last = (total + 11) // 12
    html = await page(client, f"/seckill?state=upcoming&page={last}")
    assert f"Later {tag} #12" in html
    assert len(cards(html)) == total - 12 * (last - 1)


async def test_sale_page_for_anonymous_offers_a_login_link_and_no_buy_button(client, on_show):
    live = on_show["live"]
    html = await page(client, f"/seckill/{live['id']}")
    assert f'<h1 class="h4 mb-2" data-testid="sale-name">Live Kettle {on_show["tag"]}</h1>' in html
    assert live["goods"]["photo_url"] in html
    assert '<span class="price fs-2" data-testid="sale-price">¥9.90</span>' in html
    assert '<del class="price-old fs-6 ms-1" data-testid="sale-original-price">¥29.90</del>' in html
    assert "−66%" in html  # 9.90 instead of 29.90
    assert 'data-testid="sale-limit">1 per person</dd>' in html
    assert f'<time datetime="{iso(live["start_time"])}" data-local="datetime" data-testid="sale-start">' in html
    assert f'<time datetime="{iso(live["end_time"])}" data-local="datetime" data-testid="sale-end">' in html
    assert '<span data-role="remaining">4</span> of 5 left' in html
    assert f'href="/login?next=/seckill/{live["id"]}" data-testid="login-to-buy"' in html
    assert "Log in to buy" in html
    assert 'data-testid="buy-button"' not in html and 'id="buy-form"' not in html
    assert f'<script src="{static_url("js/seckill.js")}"></script>' in html
    assert f'data-sale-id="{live["id"]}"' in html and 'data-state="live"' in html


async def test_sale_page_for_a_shopper_offers_their_addresses_payment_and_a_buy_button(
        client, factory, on_show):
    user = await factory.user()
    other_user = await factory.user()
    spare = await factory.address(user["id"], is_default=False)
    default = await factory.address(user["id"])
    foreign = await factory.address(other_user["id"])
    await login(client, user["username"])
    html = await page(client, f"/seckill/{on_show['upcoming']['id']}")
    options = dict(re.findall(r'<option value="(\d+)"( selected)?', html))
    assert options == {str(default): " selected", str(spare): ""}
    assert str(foreign) not in options
    assert re.findall(r'<option value="(\w+)">', section(html, 'data-testid="buy-payment"', "</select>")) == ["alipay", "wechat", "card"]
    # disabled until the countdown (on the server's clock) reaches the start
    assert re.search(r'<button class="btn btn-danger btn-lg w-100" id="buy-button" type="submit" disabled', html)
    assert "login-to-buy" not in html
    assert 'data-earlier=""' in html
    assert section(html, 'data-testid="buy-status" tabindex="-1">', "</div>").strip() == ""
    assert 'data-state="upcoming"' in html and "Starts in" in html
    assert re.search(r'<span data-role="buy-label">Starts at <time datetime="[^"]+Z" data-local="time">\d\d:\d\d UTC</time>', html)


async def test_sale_page_for_a_shopper_without_addresses_links_to_the_address_book(client, factory, on_show):
    user = await factory.user()
    await login(client, user["username"])
    sale_id = on_show["live"]["id"]
    html = await page(client, f"/seckill/{sale_id}")
    assert f'href="/addresses?next=/seckill/{sale_id}" data-testid="add-address"' in html
    assert 'data-testid="buy-button"' not in html


async def test_sale_page_shows_an_earlier_purchase_with_its_order(client, ctx, factory, on_show):
    user = await factory.user()
    address_id = await factory.address(user["id"])
    token = await login(client, user["username"])
    sale_id = on_show["live"]["id"]
    r = await client.post(f"/api/seckill/{sale_id}/purchase", headers={"X-CSRF-Token": token},
                          json={"address_id": address_id, "payment_method": "card"})
    assert r.status == 202, await r.text()

    async def order_id():
        result = await seckill.purchase_result(ctx, sale_id, user["id"])
        return result.get("order_id")

    order = await orders.get_order(ctx, await wait_until(order_id), owner_id=user["id"])
    html = await page(client, f"/seckill/{sale_id}")
    assert 'data-earlier="success"' in html
    assert f'href="/orders/{order["id"]}" data-testid="pay-now"' in html
    assert "You got one ·" in html and order["order_number"] in html
    # the pay window counts down from about 15:00, and the deadline is named
    assert re.search(r'data-role="pay-left" data-deadline="[^"]+Z">1[45]:\d\d</span> left\)', html)
    assert f'<time datetime="{iso(order["pay_deadline"])}" data-local="time">' in html
    # the buyer has their one unit: no Buy button to press
    assert re.search(r'<button class="btn btn-success btn-lg w-100" id="buy-button" type="submit" disabled', html)

    await orders.cancel_order(ctx, order["id"], owner_id=user["id"], actor="user", actor_id=user["id"])
    html = await page(client, f"/seckill/{sale_id}")
    assert "was cancelled, so you may buy again" in html and "pay-now" not in html
    assert '<button class="btn btn-danger btn-lg w-100" id="buy-button"' in html


async def test_unknown_sale_is_a_404_page(client):
    html = await page(client, "/seckill/999999999", status=404)
    assert "We could not find that flash sale" in html and 'href="/seckill"' in html
    await page(client, "/seckill/abc", status=404)


# --- the demo seed ---------------------------------------------------------------------------

async def test_seed_demo_schedules_one_live_and_one_upcoming_sale_once(settings, ctx):
    # the seed runs once per database: if another test of this run seeded already, its sales count
    await seed_demo(settings)
    demo_goods = {GOODS[index][1]: (index, price, stock, start_in_s, length_s)
                  for index, price, stock, start_in_s, length_s in SALES}
    ids = [r["id"] for r in await db.fetch_all(ctx.db, DEMO_SALES, tuple(demo_goods))]
    assert len(ids) == 2
    found = {}
    for sale_id in ids:
        sale = await seckill.get_sale(ctx, sale_id)
        created = (await seckill.get_sale_row(ctx, sale_id))["created_at"]
        index, price, stock, start_in_s, length_s = demo_goods[sale["goods"]["name"]]
        assert sale["price"] == Decimal(price) < Decimal(GOODS[index][2]) * Decimal("0.8")
        assert sale["total_stock"] == stock and sale["per_user_limit"] == 1
        assert abs((sale["start_time"] - created).total_seconds() - start_in_s) < 5
        assert sale["end_time"] - sale["start_time"] == dt.timedelta(seconds=length_s)
        assert await seckill_state.is_warm(ctx, sale_id)
        found[sale["state"]] = sale
    assert set(found) == {"live", "upcoming"}
    assert found["live"]["total_stock"] == 20 and found["upcoming"]["total_stock"] == 50
    assert found["live"]["end_time"] - found["live"]["start_time"] == dt.timedelta(hours=2)
    assert found["upcoming"]["end_time"] - found["upcoming"]["start_time"] == dt.timedelta(hours=1)
    assert await db.fetch_value(ctx.db, "SELECT 1 FROM users WHERE username = %s", (DEMO_SHOPPER,))

    # a second run adds nothing
    assert await seed_demo(settings) == 0
    assert [r["id"] for r in await db.fetch_all(ctx.db, DEMO_SALES, tuple(demo_goods))] == ids
