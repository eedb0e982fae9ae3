"""Helpers shared by the tests; fixtures stay in tests/conftest.py.

Import them one way only, `from tests.support.<module> import <name>`:

- isolation: this pytest process's own database, Redis key prefix and directories (settings, cleanup)
- factory:   rows made through the real services or plain SQL (`Factory`), unique names, the password
- auth:      logged-in sessions: through the login API, or a sealed session cookie without a request
- orders:    orders written straight into MySQL (any status, any time) or placed through the services
- seckill:   flash sales, bulk buyers, purchases, and what a sale holds in MySQL and Redis
- browser:   Playwright: log in through the form; the desktop and phone viewports
- waiting:   wait for background work: poll a condition until it holds, or fail at a deadline
"""
