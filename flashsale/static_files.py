"""Static files: versioned URLs for templates, and answers browsers may cache for a year.

Pages link `static_url("css/app.css")`: `/static/dist/css/app.<hash>.css` when scripts/build_static.py
made that name (a link to the file, with its .br and .gz copies beside it, which aiohttp's FileResponse
sends to browsers that accept them), else `/static/css/app.css?v=<hash>` (a file edited since the last
build: sent uncompressed rather than as a stale copy). Either URL changes with the content, so both are
cached for a year as immutable.
"""
from __future__ import annotations

import hashlib
import os
import re
from functools import lru_cache
from pathlib import Path

from aiohttp import web

from flashsale.settings import ROOT

STATIC_ROOT = ROOT / "static"
VERSIONED = "public, max-age=31536000, immutable"  # the URL changes when the content does
UNVERSIONED = "public, max-age=300"  # a plain /static/... URL: re-checked after five minutes
UPLOADS = "public, max-age=86400"  # photos are stored under new random names, never rewritten


@lru_cache(maxsize=None)
def file_version(path: str) -> str:
    """The first 12 hex digits of the SHA-256 of static/<path> (read once per process)."""
    return hashlib.sha256((STATIC_ROOT / path).read_bytes()).hexdigest()[:12]


# a built name: static/dist/<folder>/<name>.<hash>.<ext>, a link made by the build (no "..": the pattern)
DIST_NAME = re.compile(r"dist/(?:[\w-]+/)*[\w-]+(?:\.[\w-]+)*\.[0-9a-f]{12}\.[a-z0-9]+")


@lru_cache(maxsize=None)
def static_url(path: str) -> str:
    version = file_version(path)
    folder, _, name = path.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    built = f"dist/{folder}/{stem}.{version}.{ext}" if folder else f"dist/{stem}.{version}.{ext}"
    if dot and os.path.lexists(STATIC_ROOT / built):
        return f"/static/{built}"
    return f"/static/{path}?v={version}"


class CachedStaticResource(web.StaticResource):
    """add_static's resource, with Cache-Control and Vary on what it answers (only static requests pay)."""

    def __init__(self, prefix: str, directory: Path, *, name: str, versioned: bool) -> None:
        super().__init__(prefix, directory, name=name, append_version=False)
        self._versioned = versioned

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        filename = request.match_info["filename"]
        if self._versioned and DIST_NAME.fullmatch(filename):
            link = self._directory / filename
            if not os.path.lexists(link):
                raise web.HTTPNotFound()
            # the link itself, not the file it resolves to: its .br and .gz copies are beside it
            response = web.FileResponse(link)
            response.headers["Cache-Control"] = VERSIONED
        elif not self._versioned:
            response = await super()._handle(request)
            response.headers["Cache-Control"] = UPLOADS
        else:
            response = await super()._handle(request)
            response.headers["Cache-Control"] = VERSIONED if "v" in request.query else UNVERSIONED
        response.headers["Vary"] = "Accept-Encoding"
        return response


def add_static(app: web.Application, prefix: str, directory: Path, *, name: str, versioned: bool = True) -> None:
    app.router.register_resource(CachedStaticResource(prefix, directory, name=name, versioned=versioned))
