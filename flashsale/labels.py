"""What the pages call things: one table each, read by the views, the templates (as Jinja globals,
see templating.py) and the scripts (in data the templates render)."""
from __future__ import annotations

# order status -> its label; the order is the order of the life cycle (tabs and charts follow it)
ORDER_STATUS_LABELS = {"pending": "To pay", "paid": "Paid", "shipped": "Shipped", "completed": "Completed",
                       "cancelled": "Cancelled"}
# payment method (services.orders.PAYMENT_METHODS) -> (label, Bootstrap icon), in the order offered
PAYMENT_CHOICES = (("alipay", "Alipay", "bi-wallet2"), ("wechat", "WeChat Pay", "bi-wechat"),
                   ("card", "Bank card", "bi-credit-card"))
PAYMENT_LABELS = {value: label for value, label, _ in PAYMENT_CHOICES}
