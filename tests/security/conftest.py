"""Security suites: a world of actors (anonymous, owner, other user, banned user, admin) with their
sessions, the objects the routes act on, raw HTTP for what aiohttp's client will not send, state
snapshots for "a refusal changes nothing", and the summary printed at the end of the run."""
from __future__ import annotations

from typing import Any

import pytest

from tests.support.security import Snapshots, World, raw_request
from tests.support.security_summary import STATS


def pytest_terminal_summary(terminalreporter):
    if not (STATS["fuzz_routes"] or STATS["matrix_routes"] or STATS["known_hole_cases"] or STATS["schemathesis"]):
        return
    write = terminalreporter.write_line
    terminalreporter.section("security summary")
    if STATS["fuzz_routes"] or STATS["known_hole_cases"]:
        write(f"fuzz: routes covered {len(STATS['fuzz_routes'])}, cases generated {STATS['fuzz_cases']}, "
              f"known-hole cases {STATS['known_hole_cases']}, 5xx found {len(STATS['fuzz_5xx'])}"
              " (random part)")
        for line in STATS["fuzz_5xx"][:20]:
            write(f"  5xx: {line}")
    if STATS["matrix_routes"]:
        write(f"access matrix: routes covered {len(STATS['matrix_routes'])}, "
              f"matrix cells checked {STATS['matrix_cells']}, wrong cells {len(STATS['matrix_wrong'])}")
        for line in STATS["matrix_wrong"][:400]:
            write(f"  wrong: {line}")
    if STATS["schemathesis"]:
        write(STATS["schemathesis"])


@pytest.fixture
async def world(client, factory, ctx) -> World:
    return await World(client, factory, ctx).build()


@pytest.fixture(scope="session")
def security_stats() -> dict[str, Any]:
    return STATS


@pytest.fixture
def raw(client):
    async def send(method: str, path: str, headers: dict[str, bytes | str], body: bytes = b""):
        lines = [f"{method} {path} HTTP/1.1".encode(), f"Host: {client.server.host}".encode(),
                 b"Connection: close"]
        for name, value in headers.items():
            lines.append(name.encode() + b": " + (value if isinstance(value, bytes) else value.encode()))
        if "Content-Length" not in headers:
            lines.append(f"Content-Length: {len(body)}".encode())
        return await raw_request(client, b"\r\n".join(lines) + b"\r\n\r\n", body)
    return send


@pytest.fixture
def snapshots():
    def make(ctx, keys):
        return Snapshots(ctx, keys)
    return make
