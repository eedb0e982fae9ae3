"""FlashSale's commands: migrate, serve, create-admin, seed-demo."""
from __future__ import annotations

import argparse
import gc
import getpass
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
from pathlib import Path

import uvloop

from flashsale.settings import Settings

log = logging.getLogger("flashsale.run")
KEEPALIVE_TIMEOUT_S = 30.0  # aiohttp's default is 75
# connections the kernel queues before this process accepts them (capped by net.core.somaxconn):
# aiohttp's default of 128 overflows when a sale opens and thousands of browsers connect at once,
# and a dropped SYN is retried by the client only after 1 s, then 3 s
LISTEN_BACKLOG = 4096


def configure_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("FLASHSALE_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("asyncmy").setLevel(logging.ERROR)  # "table exists" notes on migrate


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from flashsale.migrate import migrate

    applied = uvloop.run(migrate(settings))
    print(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}")
    return 0


def serve_worker(settings: Settings, index: int, reuse_port: bool) -> None:
    """One full server process: its own loop, pool, Redis client and consumers."""
    from aiohttp import web

    from flashsale.app import create_app

    configure_logging()
    name = settings.consumer_name or f"{socket.gethostname()}-w{index}"
    settings = settings.replace(consumer_name=name)
    app = create_app(settings)
    # everything loaded so far lives as long as the process: keep the collector off it, and let
    # young objects pile up longer before a collection (a request makes a few hundred)
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    web.run_app(
        app, host=settings.host, port=settings.port, reuse_port=reuse_port,
        access_log=logging.getLogger("aiohttp.access") if settings.access_log else None,
        loop=uvloop.new_event_loop(), print=None, handle_signals=True, shutdown_timeout=10,
        # an idle keep-alive connection is closed after this; a body that stops arriving is answered
        # 408 by the views (FLASHSALE_BODY_TIMEOUT_S), so no connection is held for long by a client
        keepalive_timeout=KEEPALIVE_TIMEOUT_S,
        backlog=LISTEN_BACKLOG,
    )


def metrics_dir(settings: Settings) -> Path | None:
    """Point prometheus-client at an empty directory before any worker imports it.

    Every worker writes its metrics to its own file there and a scrape merges them all.
    Returns the directory when this process made it (and so removes it at exit).
    """
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return None
    base = Path(settings.var_dir) / "metrics"
    for old in base.glob("serve-*"):  # left by a server that was killed
        pid = old.name.removeprefix("serve-")
        if not pid.isdigit() or not os.path.exists(f"/proc/{pid}"):
            shutil.rmtree(old, ignore_errors=True)
    path = base / f"serve-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    settings = settings.replace(
        host=args.host or settings.host,
        port=args.port if args.port is not None else settings.port,
        workers=args.workers or settings.workers,
    )
    made = metrics_dir(settings)
    try:
        return serve(settings)
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)


def serve(settings: Settings) -> int:
    print(f"FlashSale serving on http://{settings.host}:{settings.port} with {settings.workers} worker(s)",
          flush=True)
    if settings.workers == 1:
        serve_worker(settings, 0, reuse_port=False)
        return 0
    ctx = multiprocessing.get_context("spawn")
    children = [ctx.Process(target=serve_worker, args=(settings, i, True), name=f"flashsale-w{i}")
                for i in range(settings.workers)]
    for child in children:
        child.start()

    def forward(signum, _frame):
        for child in children:
            if child.is_alive():
                os.kill(child.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    for child in children:
        child.join()
        status = status or (child.exitcode or 0)
    return status


def cmd_create_admin(settings: Settings, args: argparse.Namespace) -> int:
    from flashsale.commands import create_admin

    password = settings.admin_password
    if not password:
        if not sys.stdin.isatty():
            print("set FLASHSALE_ADMIN_PASSWORD or run in a terminal", file=sys.stderr)
            return 2
        password = getpass.getpass("Password for the new admin: ")
        if password != getpass.getpass("Again: "):
            print("the passwords differ", file=sys.stderr)
            return 2
    return uvloop.run(create_admin(settings, args.username, password, args.email))


def cmd_seed_demo(settings: Settings, args: argparse.Namespace) -> int:
    from flashsale.seed import seed_demo

    return uvloop.run(seed_demo(settings))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="run.py", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="create the database if missing and apply new migrations")
    serve = sub.add_parser("serve", help="serve HTTP")
    serve.add_argument("--host", help="default: FLASHSALE_HOST")
    serve.add_argument("--port", type=int, help="default: FLASHSALE_PORT")
    serve.add_argument("--workers", type=int, help="processes sharing the port (reuse_port)")
    admin = sub.add_parser("create-admin", help="make an admin account")
    admin.add_argument("--username", required=True)
    admin.add_argument("--email")
    sub.add_parser("seed-demo", help="load demo categories, goods, users and sales (once)")
    return p


COMMANDS = {
    "migrate": cmd_migrate,
    "serve": cmd_serve,
    "create-admin": cmd_create_admin,
    "seed-demo": cmd_seed_demo,
}


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    args = parser().parse_args(argv)
    settings = Settings.from_env()
    return COMMANDS[args.command](settings, args)


if __name__ == "__main__":
    sys.exit(main())
