#!/usr/bin/env python3
"""Build the static files pages load: Bootstrap's CSS cut to the classes the project uses, the icon font
cut to the icons it shows, and under static/dist/ each text file's content-hashed name (a link to it)
with a .gz and .br copy beside it for aiohttp to send as is.

static_url() links the dist/ name only while its hash matches the file: a file edited since the last
build is linked (and sent uncompressed) under its own name, never as a stale compressed copy.

The outputs are committed (a fresh clone serves them without building); run this after changing the
templates, static/js or the vendored files: `make static`. tests/test_static_assets.py fails when they
are out of date. Needs fonttools and brotli (build tools, never imported by the app).

    python scripts/build_static.py          # write the outputs
    python scripts/build_static.py --check  # exit 1 when an output is out of date
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "static"
OUT = STATIC / "build"
DIST = STATIC / "dist"
BOOTSTRAP_CSS = STATIC / "vendor" / "bootstrap" / "bootstrap.min.css"
ICONS_CSS = STATIC / "vendor" / "bootstrap-icons" / "bootstrap-icons.min.css"
ICONS_FONT = STATIC / "vendor" / "bootstrap-icons" / "fonts" / "bootstrap-icons.woff2"
# where class names and icon names are written: markup, the project's scripts, views passing class names
SOURCES = [(ROOT / "templates", "*.html"), (STATIC / "js", "*.js"), (ROOT / "flashsale", "*.py")]

# classes only Bootstrap's own JavaScript adds (collapse, dropdown, dismissible alerts)
BOOTSTRAP_JS_CLASSES = {"show", "showing", "hiding", "fade", "collapse", "collapsing", "collapse-horizontal",
                        "dropdown-menu-end", "active", "disabled"}
# classes built from a variable: alert-{{ category }}, text-bg-{{ color }}, "alert alert-" + kind ...
THEME_COLORS = ("primary", "secondary", "success", "danger", "warning", "info", "light", "dark")
COLOR_PREFIXES = ("alert", "bg", "text", "text-bg", "btn", "btn-outline", "border", "link")
SAFELIST = BOOTSTRAP_JS_CLASSES | {f"{p}-{c}" for p in COLOR_PREFIXES for c in THEME_COLORS}

# served compressed: text formats only (woff2 and images are compressed already)
COMPRESSIBLE = (".css", ".js", ".svg", ".json", ".txt", ".map")
NOT_SERVED = {BOOTSTRAP_CSS, ICONS_CSS}  # build inputs: pages load their cut-down copies
SKIP_DIRS = {"uploads", "dist"}

CLASS_IN_SELECTOR = re.compile(r"\.(-?[_a-zA-Z](?:[\w-]|\\.)*)")
FUNCTIONAL_PSEUDO = re.compile(r":(?:not|is|where|has)\(")
WORD = re.compile(r"[A-Za-z0-9_-]+")
ICON_NAME = re.compile(r"\bbi-[a-z0-9]+(?:-[a-z0-9]+)*")
ICON_RULE = re.compile(r'\.(bi-[a-z0-9-]+)::before\{content:"\\([0-9a-f]+)"\}')


def source_texts() -> list[str]:
    return [path.read_text(encoding="utf-8") for folder, pattern in SOURCES for path in sorted(folder.rglob(pattern))]


def used_words(texts: list[str]) -> set[str]:
    """Every word-like token of the sources: a superset of the class names they use."""
    return {word for text in texts for word in WORD.findall(text)} | SAFELIST


def used_icons(texts: list[str]) -> set[str]:
    return {name for text in texts for name in ICON_NAME.findall(text)}


# --- CSS: keep a rule only when every class its selector requires is used -----------------------------

def _blocks(css: str):
    """Top-level (prelude, body) pairs of a stylesheet; body is None for statements like @charset."""
    i, n = 0, len(css)
    while i < n:
        if css.startswith("/*", i):
            end = css.index("*/", i) + 2
            yield css[i:end], None
            i = end
            continue
        j, quote = i, None
        while j < n:
            ch = css[j]
            if quote:
                quote = None if ch == quote else quote
            elif ch in "\"'":
                quote = ch
            elif ch in "{;":
                break
            j += 1
        if j >= n:
            break
        prelude = css[i:j].strip()
        if css[j] == ";":
            yield prelude + ";", None
            i = j + 1
            continue
        depth, k, quote = 1, j + 1, None
        while depth:
            ch = css[k]
            if quote:
                quote = None if ch == quote else quote
            elif ch in "\"'":
                quote = ch
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            k += 1
        yield prelude, css[j + 1:k - 1]
        i = k


def _split_selectors(prelude: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for pos, ch in enumerate(prelude):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(prelude[start:pos])
            start = pos + 1
    parts.append(prelude[start:])
    return parts


def _required_classes(selector: str) -> set[str]:
    """Classes the selector needs on the page; those inside :not()/:is()/:where()/:has() are not required."""
    out, depth, pos = [], 0, 0
    while pos < len(selector):
        match = FUNCTIONAL_PSEUDO.match(selector, pos)
        if match:
            depth += 1
            pos = match.end()
            continue
        ch = selector[pos]
        if depth and ch == "(":
            depth += 1
        elif depth and ch == ")":
            depth -= 1
        elif not depth:
            out.append(ch)
        pos += 1
    return {name.replace("\\", "") for name in CLASS_IN_SELECTOR.findall("".join(out))}


def purge_css(css: str, words: set[str], *, dark_theme: bool) -> str:
    parts = []
    for prelude, body in _blocks(css):
        if body is None:
            if prelude.startswith("/*!") or not prelude.startswith("/*"):
                parts.append(prelude)  # licence comments and @charset stay; other comments go
            continue
        if prelude.startswith("@media") or prelude.startswith("@supports") or prelude.startswith("@layer"):
            inner = purge_css(body, words, dark_theme=dark_theme)
            if inner:
                parts.append(f"{prelude}{{{inner}}}")
        elif prelude.startswith("@"):
            parts.append(f"{prelude}{{{body}}}")  # @keyframes, @font-face ...
        else:
            kept = [s for s in _split_selectors(prelude)
                    if _required_classes(s) <= words and (dark_theme or "[data-bs-theme=dark]" not in s)]
            if kept:
                parts.append(f"{','.join(kept)}{{{body}}}")
    return "".join(parts)


# --- icons: the font cut to the icons shown, and a stylesheet of their classes only --------------------

def icon_codepoints(icons_css: str) -> dict[str, int]:
    return {name: int(code, 16) for name, code in ICON_RULE.findall(icons_css)}


def subset_font(font: bytes, codepoints: list[int]) -> bytes:
    from fontTools import subset  # build tool only
    from fontTools.ttLib import TTFont

    options = subset.Options()
    options.flavor = "woff2"
    options.layout_features = []
    options.name_IDs = ["*"]  # keeps the copyright and licence records
    options.notdef_outline = True
    ttf = TTFont(io.BytesIO(font))
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=codepoints)
    subsetter.subset(ttf)
    buf = io.BytesIO()
    ttf.flavor = "woff2"
    ttf.save(buf)
    return buf.getvalue()


def icons_css(icons_css_text: str, names: list[str], font_url: str) -> str:
    licence = icons_css_text[:icons_css_text.index("*/") + 2]
    base = re.search(r'\.bi::before,[^{]*\{[^}]*\}', icons_css_text).group(0)
    codes = icon_codepoints(icons_css_text)
    rules = "".join(f'.{name}::before{{content:"\\{codes[name]:x}"}}' for name in names)
    face = (f'@font-face{{font-display:block;font-family:bootstrap-icons;'
            f'src:url("{font_url}") format("woff2")}}')
    return f"{licence}{face}{base}{rules}\n"


# --- the build ----------------------------------------------------------------------------------------

def short_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def built_files() -> dict[Path, bytes]:
    """The CSS and font outputs, by path (the font only when the icon set changed: fonttools may vary)."""
    texts = source_texts()
    words = used_words(texts)
    dark = any('data-bs-theme="dark"' in text for text in texts)
    icons_text = ICONS_CSS.read_text(encoding="utf-8")
    codes = icon_codepoints(icons_text)
    names = sorted(used_icons(texts))
    unknown = [name for name in names if name not in codes]
    if unknown:
        raise SystemExit(f"unknown Bootstrap icons used: {', '.join(unknown)}")
    font_path = OUT / "bootstrap-icons.woff2"
    if font_path.exists() and font_glyphs(font_path.read_bytes()) == {codes[n] for n in names}:
        font = font_path.read_bytes()
    else:
        font = subset_font(ICONS_FONT.read_bytes(), sorted({codes[n] for n in names}))
    bootstrap = purge_css(BOOTSTRAP_CSS.read_text(encoding="utf-8"), words, dark_theme=dark) + "\n"
    return {
        OUT / "bootstrap.css": bootstrap.encode(),
        OUT / "bootstrap-icons.css": icons_css(
            icons_text, names, f"/static/build/bootstrap-icons.woff2?v={short_hash(font)}").encode(),
        font_path: font,
    }


def font_glyphs(font: bytes) -> set[int]:
    from fontTools.ttLib import TTFont

    return set(TTFont(io.BytesIO(font)).getBestCmap())


def served_text_files() -> list[Path]:
    return sorted(p for p in STATIC.rglob("*") if p.is_file() and p.suffix in COMPRESSIBLE
                  and p not in NOT_SERVED and not SKIP_DIRS & set(p.relative_to(STATIC).parts))


def compressed(data: bytes) -> dict[str, bytes]:
    import brotli  # build tool only

    return {".gz": gzip.compress(data, compresslevel=9, mtime=0),
            ".br": brotli.compress(data, quality=11)}


def dist_path(path: Path, data: bytes) -> Path:
    """static/js/app.js -> static/dist/js/app.<hash>.js"""
    rel = path.relative_to(STATIC)
    return DIST / rel.parent / f"{rel.stem}.{short_hash(data)}{rel.suffix}"


def stale_outputs() -> list[Path]:
    """Outputs that differ from what a build would write now (the compressed copies: by their content)."""
    built = built_files()
    stale = [path for path, data in built.items() if not path.exists() or path.read_bytes() != data]
    for path in served_text_files():
        data = built.get(path) or path.read_bytes()
        target = dist_path(path, data)
        if not target.is_symlink() or target.resolve() != path.resolve():
            stale.append(target)
        gz, br = Path(f"{target}.gz"), Path(f"{target}.br")
        if not gz.exists() or gzip.decompress(gz.read_bytes()) != data:
            stale.append(gz)
        if not br.exists() or _unbrotli(br.read_bytes()) != data:
            stale.append(br)
    return stale


def _unbrotli(data: bytes) -> bytes:
    import brotli

    try:
        return brotli.decompress(data)
    except brotli.error:
        return b""


def build() -> None:
    OUT.mkdir(exist_ok=True)
    for path, data in built_files().items():
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
    wanted = set()
    for path in served_text_files():
        data = path.read_bytes()
        target = dist_path(path, data)
        target.parent.mkdir(parents=True, exist_ok=True)
        wanted.add(target)
        if not target.is_symlink():
            target.symlink_to(Path(*[".."] * (len(target.relative_to(STATIC).parts) - 1), path.relative_to(STATIC)))
        for suffix, packed in compressed(data).items():
            copy = Path(f"{target}{suffix}")
            wanted.add(copy)
            if not copy.exists() or _unpacked(copy) != data:
                copy.write_bytes(packed)
    for stray in DIST.rglob("*"):  # copies of older versions
        if not stray.is_dir() and stray not in wanted:
            stray.unlink()


def _unpacked(copy: Path) -> bytes:
    return gzip.decompress(copy.read_bytes()) if copy.suffix == ".gz" else _unbrotli(copy.read_bytes())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report outputs that are out of date")
    args = parser.parse_args()
    if args.check:
        stale = stale_outputs()
        for path in stale:
            print(f"out of date: {path.relative_to(ROOT)}")
        return 1 if stale else 0
    build()
    return 0


if __name__ == "__main__":
    sys.exit(main())
