"""Browser helpers: log in through the page's form, and the phone and desktop viewports."""
from __future__ import annotations

from playwright.async_api import expect

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


async def log_in(page, base: str, user: dict, next_path: str = "/") -> None:
    """Log in with the login form and land on `next_path`."""
    await page.goto(f"{base}/login?next={next_path}")
    await page.fill("#f-username", user["username"])
    await page.fill("#f-password", user["password"])
    await page.click("form[action='/login'] button[type=submit]")
    await expect(page).to_have_url(f"{base}{next_path}")
