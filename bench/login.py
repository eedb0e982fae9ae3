"""Log every bench buyer in through POST /api/auth/login before the sale; keep cookie and CSRF token."""
from __future__ import annotations

import asyncio
import csv
import time
from pathlib import Path

import aiohttp

from flashsale.sessions import SESSION_COOKIE

ATTEMPTS = 5


class LoginFailed(RuntimeError):
    pass


async def login_one(http: aiohttp.ClientSession, base_url: str, username: str, password: str) -> tuple[str, str]:
    """(Cookie header value, CSRF token) of a fresh session; retries a 429/503 after a pause."""
    for attempt in range(ATTEMPTS):
        async with http.post(base_url + "/api/auth/login",
                             json={"username": username, "password": password}) as response:
            body = await response.json(content_type=None)
            if response.status == 200:
                morsel = response.cookies.get(SESSION_COOKIE)
                if morsel is None:
                    raise LoginFailed(f"{username}: no session cookie in the login answer")
                return f"{SESSION_COOKIE}={morsel.value}", body["data"]["csrf_token"]
            if response.status in (429, 503):
                await asyncio.sleep(0.2 * (attempt + 1))
                continue
            raise LoginFailed(f"{username}: login answered {response.status} {body}")
    raise LoginFailed(f"{username}: still refused after {ATTEMPTS} attempts")


async def login_all(base_url: str, accounts_file: Path, sessions_file: Path, password: str,
                    concurrency: int) -> dict[str, float]:
    """Read username,user_id,address_id; write the same rows plus cookie,csrf. Returns timings."""
    with open(accounts_file, newline="") as f:
        accounts = list(csv.DictReader(f))
    results: list[tuple[str, str] | None] = [None] * len(accounts)
    next_index = iter(range(len(accounts)))
    started = time.time()

    async def worker(http: aiohttp.ClientSession) -> None:
        for i in next_index:
            results[i] = await login_one(http, base_url, accounts[i]["username"], password)

    # no cookie jar: every login is a separate buyer, not one browser logging in again and again
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    seconds = time.time() - started
    with open(sessions_file, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["username", "user_id", "address_id", "cookie", "csrf"])
        for account, (cookie, csrf) in zip(accounts, results):
            writer.writerow([account["username"], account["user_id"], account["address_id"], cookie, csrf])
    return {"start": started, "end": started + seconds, "logins": len(accounts),
            "per_s": len(accounts) / seconds if seconds else 0.0}
