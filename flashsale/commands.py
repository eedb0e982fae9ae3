"""Command-line actions that have no web route: making an admin."""
from __future__ import annotations

import sys

from flashsale.context import open_context
from flashsale.errors import Refusal, Validation
from flashsale.services import accounts
from flashsale.settings import Settings


async def create_admin(settings: Settings, username: str, password: str, email: str | None) -> int:
    async with open_context(settings) as ctx:
        try:
            user = await accounts.register(
                ctx, {"username": username, "password": password, "email": email},
                role="admin", require_contact=False)
        except Validation as exc:
            for field, message in exc.errors.items():
                print(f"{field}: {message}", file=sys.stderr)
            return 2
        except Refusal as exc:
            print(exc.message, file=sys.stderr)
            return 2
    print(f"admin {user['username']} created (id {user['id']})")
    return 0
