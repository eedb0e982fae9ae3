"""Static answers: compressed, cached for a year under versioned URLs; the built CSS and icons up to date."""
from __future__ import annotations

import gzip
import importlib.util
import re

import brotli

from flashsale.settings import ROOT
from flashsale.static_files import static_url

spec = importlib.util.spec_from_file_location("build_static", ROOT / "scripts" / "build_static.py")
build_static = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build_static)

ASSET = re.compile(r'(?:href|src)="(/static/[^"]+)"')


async def test_pages_link_built_assets_that_come_compressed_and_cached_for_a_year(client):
    page = await client.get("/login")
    assert page.status == 200
    assets = ASSET.findall(await page.text())
    assert any("/build/bootstrap." in a for a in assets) and any("bootstrap.bundle" in a for a in assets)
    for url in assets:
        assert url.startswith("/static/dist/"), url  # built: its hash is its name
        for encoding, unpack in (("br", brotli.decompress), ("gzip", gzip.decompress)):
            resp = await client.get(url, headers={"Accept-Encoding": encoding}, auto_decompress=False)
            assert resp.status == 200, url
            assert resp.headers["Content-Encoding"] == encoding, url
            assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
            assert resp.headers["Vary"] == "Accept-Encoding"
            plain = await client.get(url, headers={"Accept-Encoding": "identity"})
            assert "Content-Encoding" not in plain.headers
            assert unpack(await resp.read()) == await plain.read(), url


async def test_unversioned_and_missing_static_files(client):
    resp = await client.get("/static/css/app.css")
    assert resp.status == 200 and resp.headers["Cache-Control"] == "public, max-age=300"
    resp = await client.get(static_url("build/bootstrap-icons.woff2"))
    assert resp.status == 200 and resp.headers["Cache-Control"].endswith("immutable")
    assert (await client.get("/static/dist/js/app.0123456789ab.js")).status == 404
    assert (await client.get("/static/dist/../../run.py")).status in (403, 404)


def test_a_file_edited_since_the_build_is_linked_under_its_own_name(tmp_path, monkeypatch):
    from flashsale import static_files

    (tmp_path / "js").mkdir()
    (tmp_path / "js" / "new.js").write_text("1")
    monkeypatch.setattr(static_files, "STATIC_ROOT", tmp_path)
    static_files.file_version.cache_clear()
    static_files.static_url.cache_clear()
    try:
        assert static_files.static_url("js/new.js") == "/static/js/new.js?v=" + build_static.short_hash(b"1")
    finally:
        static_files.file_version.cache_clear()
        static_files.static_url.cache_clear()


def test_built_files_are_up_to_date():
    stale = build_static.stale_outputs()
    assert not stale, f"run `make static`: {[str(p.relative_to(ROOT)) for p in stale]}"


def test_every_icon_the_templates_use_is_in_the_subset_font():
    used = build_static.used_icons(build_static.source_texts())
    assert {"bi-lightning-charge-fill", "bi-alarm", "bi-x-circle"} <= used  # templates and static/js
    codes = build_static.icon_codepoints(build_static.ICONS_CSS.read_text())
    font = build_static.font_glyphs((build_static.OUT / "bootstrap-icons.woff2").read_bytes())
    assert {codes[name] for name in used} <= font
    css = (build_static.OUT / "bootstrap-icons.css").read_text()
    assert all(f".{name}::before" in css for name in used)


def test_the_purge_keeps_used_rules_and_drops_unused_ones():
    css = ".a{x:1}.b .c{x:2}.a:not(.z){x:3}@media (min-width:1px){.c{x:4}.a{x:5}}[data-bs-theme=dark] .a{x:6}"
    assert build_static.purge_css(css, {"a"}, dark_theme=False) == \
        ".a{x:1}.a:not(.z){x:3}@media (min-width:1px){.a{x:5}}"
