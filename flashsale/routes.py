"""Every route of the app, gathered from the view modules in one place."""
from __future__ import annotations

from aiohttp import web

from flashsale.appkeys import SETTINGS
from flashsale.services.goods_photos import upload_root
from flashsale.settings import ROOT
from flashsale.static_files import add_static
from flashsale.views.api import accounts as api_accounts
from flashsale.views.api import addresses as api_addresses
from flashsale.views.api import admin_catalog as api_admin_catalog
from flashsale.views.api import admin_orders as api_admin_orders
from flashsale.views.api import admin_stats as api_admin_stats
from flashsale.views.api import admin_users as api_admin_users
from flashsale.views.api import catalog as api_catalog
from flashsale.views.api import orders as api_orders
from flashsale.views.api import seckill as api_seckill
from flashsale.views.api import admin_seckill as api_admin_seckill
from flashsale.views.api import system as api_system
from flashsale.views.pages import accounts as page_accounts
from flashsale.views.pages import addresses as page_addresses
from flashsale.views.pages import orders as page_orders
from flashsale.views.pages import seckill as page_seckill
from flashsale.views.pages import shop as page_shop
from flashsale.views.pages.admin import catalog as admin_catalog
from flashsale.views.pages.admin import dashboard as admin_dashboard
from flashsale.views.pages.admin import orders as admin_orders
from flashsale.views.pages.admin import seckill as admin_seckill
from flashsale.views.pages.admin import users as admin_users

ROUTE_TABLES = [
    api_system.routes,
    api_accounts.routes,
    api_admin_users.routes,
    page_accounts.routes,
    api_addresses.routes,
    api_orders.routes,
    page_addresses.routes,
    page_orders.routes,
    page_shop.routes,
    page_seckill.routes,
    api_catalog.routes,
    api_admin_catalog.routes,
    api_seckill.routes,
    api_admin_seckill.routes,
    api_admin_orders.routes,
    api_admin_stats.routes,
    admin_dashboard.routes,
    admin_orders.routes,
    admin_catalog.routes,
    admin_seckill.routes,
    admin_users.routes,
]


def setup_routes(app: web.Application) -> None:
    for table in ROUTE_TABLES:
        app.router.add_routes(table)
    add_static(app, "/static/uploads", upload_root(app[SETTINGS]), name="uploads", versioned=False)
    add_static(app, "/static", ROOT / "static", name="static")
