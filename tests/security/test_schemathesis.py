"""Schemathesis over /api/openapi.json against the live app: every operation fuzzed with bodies and
parameters drawn from the document, then stateful runs along its links (register -> login; address
-> order -> pay; admin: category -> goods -> sale). No answer may be a 5xx, and every answer must be
one the document lists, with its status, content type and schema."""
from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from aiohttp import web

from flashsale.app import create_app
from flashsale.appkeys import CTX
from flashsale.migrate import migrate
from flashsale.sessions import SESSION_COOKIE

from tests.support.security_summary import STATS
from tests.support.auth import login
from tests.support.factory import Factory
from tests.support.isolation import delete_run_keys, drop_database, run_dir

pytestmark = pytest.mark.asyncio(loop_scope="module")

ST = str(Path(sys.executable).with_name("st"))
CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"
MAX_EXAMPLES = 25
SEED = 20261124
RUN_TIMEOUT_S = 150

# Operations left out because calling them ends the one session every request shares (the cookie
# is fixed by -H), which would turn the rest of the run into 401s. They are covered by tests/test_accounts.py.
SESSION_ENDERS = ["logout", "logoutAll", "changePassword"]

# Classes of input that once found a 5xx (issue 11 item 1: far dates, bad multipart) are fixed and
# fuzzed again: an operation is excluded here only while a named bug is open.
KNOWN_BUG_EXCLUSIONS: list[str] = []


@pytest_asyncio.fixture(loop_scope="module")
async def fuzzed_app(settings):
    """The real app on 127.0.0.1 over a database and Redis prefix of its own: the hostile rows it
    keeps (names full of control characters, sales in year 358) stay out of the other tests' lists."""
    own = settings.replace(db_name=settings.db_name + "_st", redis_prefix=settings.redis_prefix + "st:",
                           upload_dir=str(run_dir() / "st-uploads"))
    await drop_database(own)
    await migrate(own)
    app = create_app(own)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}", app
    finally:
        await runner.cleanup()
        await drop_database(own)
        delete_run_keys(own)


async def test_schemathesis_finds_no_5xx_and_every_answer_conforms(fuzzed_app, tmp_path):
    base, app = fuzzed_app
    factory = Factory(app[CTX])
    admin = await factory.user(role="admin")
    async with aiohttp.ClientSession(base_url=base, cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        csrf = await login(http, admin["username"])
        cookie = next(c.value for c in http.cookie_jar if c.key == SESSION_COOKIE)
    args = [
        ST, "run", f"{base}/api/openapi.json", "--checks", CHECKS, "--mode", "positive",
        "--phases", "fuzzing,stateful", "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED),
        "--workers", "1", "--no-shrink", "--request-timeout", "15", "--suppress-health-check", "all",
        "-H", f"Cookie: {SESSION_COOKIE}={cookie}", "-H", f"X-CSRF-Token: {csrf}",
        "--report", "ndjson", "--report-ndjson-path", str(tmp_path / "events.ndjson"),
        "--warnings", "off",
    ]
    for operation_id in SESSION_ENDERS + KNOWN_BUG_EXCLUSIONS:
        args += ["--exclude-operation-id", operation_id]
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT, cwd=tmp_path)
    out, _ = await asyncio.wait_for(proc.communicate(), RUN_TIMEOUT_S)
    text = out.decode(errors="replace")
    print(text[-3000:])
    assert proc.returncode == 0, text[-20000:]
    tested = re.search(r"Tested: (\d+)", text)
    cases = re.search(r"(\d+) generated", text)
    links = re.search(r"API Links:\s+(\d+) covered / (\d+)", text)
    assert tested and cases and int(tested[1]) >= 45, text[-3000:]
    STATS["schemathesis"] = (f"schemathesis: {tested[1]} operations tested, {cases[1]} cases generated, "
                             f"{links[1] if links else '?'} of {links[2] if links else '?'} links followed, "
                             "5xx found: 0")
