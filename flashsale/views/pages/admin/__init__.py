"""The admin area's pages: dashboard, orders, goods and categories, flash sales, users."""
