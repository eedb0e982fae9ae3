"""`python run.py create-admin` as an operator runs it: a real process, settings from the environment."""
from __future__ import annotations

import asyncio
import os
import sys
import tempfile

from flashsale.settings import ROOT

from tests.support.auth import login
from tests.support.factory import unique


async def run_py(settings, *args: str, password: str | None) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASHSALE_")}
    env.update({
        "FLASHSALE_DB_NAME": settings.db_name,
        "FLASHSALE_DB_HOST": settings.db_host,
        "FLASHSALE_DB_PORT": str(settings.db_port),
        "FLASHSALE_REDIS_URL": settings.redis_url,
        "FLASHSALE_REDIS_PREFIX": settings.redis_prefix,
        # no var/secret.key written into the checkout by a test
        "FLASHSALE_SECRET_KEY": settings.secret_key,
        "FLASHSALE_VAR_DIR": tempfile.gettempdir(),
    })
    if password is not None:
        env["FLASHSALE_ADMIN_PASSWORD"] = password
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "run.py"), *args, cwd=str(ROOT), env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode, out.decode(), err.decode()


async def test_create_admin_makes_an_admin_who_can_log_in(client, settings):
    name = unique("boss")
    code, out, err = await run_py(settings, "create-admin", "--username", name, password="admin-passw0rd")
    assert code == 0, err
    assert f"admin {name} created" in out
    token = await login(client, name, "admin-passw0rd")
    r = await client.get("/api/me")
    user = (await r.json())["data"]["user"]
    assert (user["username"], user["role"], user["email"]) == (name, "admin", None)
    assert (await client.get("/api/admin/users")).status == 200
    assert token


async def test_create_admin_with_an_email(client, settings):
    name = unique("boss")
    code, out, err = await run_py(settings, "create-admin", "--username", name, "--email", f"{name}@Example.com",
                                  password="admin-passw0rd")
    assert code == 0, err
    await login(client, name, "admin-passw0rd")
    user = (await (await client.get("/api/me")).json())["data"]["user"]
    assert (user["role"], user["email"]) == ("admin", f"{name}@example.com")


async def test_create_admin_refuses_a_taken_name_or_a_short_password(settings, factory):
    taken = await factory.user()
    code, out, err = await run_py(settings, "create-admin", "--username", taken["username"], password="admin-passw0rd")
    assert code == 2
    assert "That username is taken." in err
    code, out, err = await run_py(settings, "create-admin", "--username", unique("boss"), password="short")
    assert code == 2
    assert "password: Must be 8 to 128 characters." in err


async def test_create_admin_without_a_password_or_terminal_stops(settings):
    code, out, err = await run_py(settings, "create-admin", "--username", unique("boss"), password=None)
    assert code == 2
    assert "FLASHSALE_ADMIN_PASSWORD" in err
