"""The admin area's pages: dashboard, orders, goods and categories, flash sales, users."""
from __future__ import annotations

from flashsale.views.pages.admin import catalog, dashboard, orders, seckill, users

ROUTE_TABLES = [dashboard.routes, orders.routes, catalog.routes, seckill.routes, users.routes]
