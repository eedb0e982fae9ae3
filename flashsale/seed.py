"""`run.py seed-demo`: a demo shop (categories, goods, two flash sales, a shopper, an admin), once."""
from __future__ import annotations

import datetime as dt
import secrets
from decimal import Decimal
from pathlib import Path

from flashsale import db
from flashsale.context import Context, open_context
from flashsale.jsonio import iso, utcnow
from flashsale.services import accounts, search, seckill
from flashsale.settings import Settings

DEMO_SHOPPER = "demo"
DEMO_ADMIN = "admin"

# -> 1 when the demo shopper exists: the seed already ran
SEEDED = "SELECT 1 FROM users WHERE username = %s"
INSERT_CATEGORY = "INSERT INTO categories (name, description) VALUES (%s, %s)"
INSERT_GOODS = """
INSERT INTO goods (category_id, name, description, price, original_price, stock, sales, photo,
                   brand, model, weight, dimensions, material, warranty)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"""
INSERT_ADDRESS = """
INSERT INTO addresses (user_id, receiver_name, phone, province, city, district, detail_address, is_default)
VALUES (%s, %s, %s, %s, %s, %s, %s, 1)"""

CATEGORIES = [
    ("Phones", "Smartphones and accessories"),
    ("Computers", "Laptops, tablets and peripherals"),
    ("Home", "Kitchen and household appliances"),
    ("Audio", "Headphones and speakers"),
]

# (category index, name, price, original price, stock, sales, brand, model, weight, dimensions,
#  material, warranty, colour, glyph)
GOODS = [
    (0, "Aurora X1 Smartphone 256 GB", "6999.00", "7999.00", 120, 340, "Aurora", "X1", "189 g",
     "152 x 71 x 8 mm", "Glass, aluminium", "2 years", "#0d6efd", "📱"),
    (0, "Aurora Lite Smartphone 128 GB", "2499.00", "2899.00", 300, 820, "Aurora", "Lite", "172 g",
     "150 x 70 x 8 mm", "Plastic", "1 year", "#6f42c1", "📱"),
    (0, "FastCharge 65 W USB-C Charger", "149.00", "199.00", 800, 2100, "Volt", "FC65", "110 g",
     "55 x 55 x 30 mm", "PC", "1 year", "#198754", "🔌"),
    (1, "Nimbus 14 Laptop, 16 GB RAM", "5999.00", "6899.00", 60, 150, "Nimbus", "N14", "1.3 kg",
     "312 x 221 x 16 mm", "Aluminium", "2 years", "#495057", "💻"),
    (1, "Nimbus Pad 11 Tablet", "2299.00", "2599.00", 90, 410, "Nimbus", "Pad11", "480 g",
     "254 x 166 x 6 mm", "Aluminium", "1 year", "#20c997", "📲"),
    (1, "Clicky Mechanical Keyboard", "399.00", "499.00", 250, 960, "KeyWorks", "K87", "820 g",
     "360 x 135 x 38 mm", "ABS, steel", "1 year", "#fd7e14", "⌨️"),
    (2, "SteamChef Rice Cooker 4 L", "699.00", "899.00", 150, 530, "SteamChef", "RC4", "3.2 kg",
     "280 x 260 x 240 mm", "Stainless steel", "2 years", "#dc3545", "🍚"),
    (2, "PureAir Purifier", "1299.00", "1599.00", 70, 230, "PureAir", "PA300", "6.5 kg",
     "380 x 200 x 560 mm", "ABS", "3 years", "#0dcaf0", "🌬️"),
    (2, "Morning Kettle 1.7 L", "199.00", "259.00", 400, 1500, "HomeJoy", "MK17", "1.1 kg",
     "220 x 150 x 250 mm", "Glass", "1 year", "#ffc107", "🫖"),
    (3, "Hush Pro Noise-Cancelling Headphones", "1999.00", "2499.00", 110, 640, "Hush", "Pro",
     "250 g", "190 x 170 x 80 mm", "Protein leather", "2 years", "#212529", "🎧"),
    (3, "Pebble Bluetooth Speaker", "299.00", "399.00", 500, 1800, "Pebble", "BT2", "540 g",
     "180 x 70 x 70 mm", "Fabric, silicone", "1 year", "#d63384", "🔊"),
    (3, "TrueBuds Wireless Earbuds", "499.00", "699.00", 350, 2500, "TrueBuds", "TB3", "48 g",
     "60 x 48 x 25 mm", "PC", "1 year", "#6610f2", "🎵"),
]


# (index into GOODS, sale price, stock, starts in s, length in s): one live now, one soon
SALES = [
    (11, "99.00", 20, -60, 2 * 3600),
    (9, "999.00", 50, 10 * 60, 3600),
]


def draw_picture(name: str, colour: str, glyph: str) -> str:
    """A simple product card as SVG: a gradient, a big glyph and the name."""
    from xml.sax.saxutils import escape

    label = escape(name if len(name) <= 28 else name[:27] + "…")
    return f"""<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 300" width="400" height="300">
<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">
<stop offset="0" stop-color="{colour}" stop-opacity="0.95"/><stop offset="1" stop-color="{colour}" stop-opacity="0.55"/>
</linearGradient></defs>
<rect width="400" height="300" fill="url(#g)"/>
<circle cx="330" cy="60" r="90" fill="#fff" fill-opacity="0.08"/>
<text x="200" y="165" font-size="110" text-anchor="middle">{glyph}</text>
<text x="200" y="265" font-size="20" font-family="sans-serif" fill="#fff" text-anchor="middle">{label}</text>
</svg>
"""


async def seed_goods(ctx: Context) -> list[int]:
    upload = Path(ctx.settings.upload_dir) / "goods"
    upload.mkdir(parents=True, exist_ok=True)
    ids = []
    async with db.transaction(ctx.db) as cur:
        category_ids = []
        for name, description in CATEGORIES:
            await cur.execute(INSERT_CATEGORY, (name, description))
            category_ids.append(cur.lastrowid)
        for i, (cat, name, price, original, stock, sales, brand, model, weight, dims, material,
                warranty, colour, glyph) in enumerate(GOODS):
            file_name = f"demo-{i + 1}-{secrets.token_hex(4)}.svg"
            (upload / file_name).write_text(draw_picture(name, colour, glyph), encoding="utf-8")
            description = (f"{name} from {brand}. A demo item of the FlashSale shop: "
                           f"{material.lower()}, {weight}, {warranty} warranty.")
            await cur.execute(INSERT_GOODS, (
                category_ids[cat], name, description, Decimal(price), Decimal(original), stock, sales,
                f"goods/{file_name}", brand, model, weight, dims, material, warranty))
            ids.append(cur.lastrowid)
            await search.index_goods(cur, cur.lastrowid)
    return ids


async def seed_sales(ctx: Context, goods_ids: list[int]) -> list[dict]:
    """Schedule the demo flash sales through the service, so that Redis gets their warm state."""
    now = utcnow()
    made = []
    for index, price, stock, start_in_s, length_s in SALES:
        start = now + dt.timedelta(seconds=start_in_s)
        made.append(await seckill.create_sale(ctx, {
            "goods_id": goods_ids[index], "price": price, "total_stock": stock, "per_user_limit": 1,
            "start_time": iso(start), "end_time": iso(start + dt.timedelta(seconds=length_s))}))
    return made


async def seed_demo(settings: Settings) -> int:
    async with open_context(settings) as ctx:
        if await db.fetch_value(ctx.db, SEEDED, (DEMO_SHOPPER,)):
            print("demo data already there; nothing to do")
            return 0
        goods_ids = await seed_goods(ctx)
        sales = await seed_sales(ctx, goods_ids)
        shopper_password = "demo-" + secrets.token_urlsafe(6)
        shopper = await accounts.register(ctx, {"username": DEMO_SHOPPER, "password": shopper_password,
                                                "email": "demo@example.com"})
        await db.execute(ctx.db, INSERT_ADDRESS, (shopper["id"], "Demo Shopper", "13800000000", "Zhejiang",
                                                  "Hangzhou", "Xihu", "1 Demo Road, Building 2"))
        admin_password = secrets.token_urlsafe(12)
        admin = None
        if not await db.fetch_value(ctx.db, SEEDED, (DEMO_ADMIN,)):
            admin = await accounts.register(ctx, {"username": DEMO_ADMIN, "password": admin_password},
                                            role="admin", require_contact=False)
    print(f"demo shop loaded: {len(CATEGORIES)} categories, {len(goods_ids)} goods")
    for sale in sales:
        print(f"  flash sale /seckill/{sale['id']}: {sale['goods']['name']} at {sale['price']}, "
              f"{sale['state']}, {iso(sale['start_time'])} to {iso(sale['end_time'])}")
    print(f"  shopper: {DEMO_SHOPPER} / {shopper_password}")
    if admin:
        print(f"  admin:   {DEMO_ADMIN} / {admin_password}   (shown once: note it down)")
    return 0
