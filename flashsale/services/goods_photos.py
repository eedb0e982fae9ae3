"""Goods pictures on disk: their public URL, where they are kept, how an upload is checked."""
from __future__ import annotations

import asyncio
import io
import logging
import secrets
from pathlib import Path

from flashsale.errors import BadImage, TooLarge
from flashsale.settings import Settings

log = logging.getLogger(__name__)

PLACEHOLDER_URL = "/static/img/placeholder.svg"
UPLOADS_URL = "/static/uploads/"
MAX_PHOTO_BYTES = 5 * 1024 * 1024
MAX_PHOTO_SIDE = 4096  # pixels, each way
MAX_PHOTO_PIXELS = 16_000_000  # width x height, checked from the header before any decoding
# what Pillow reports -> the extension the file is saved with
PHOTO_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


def photo_url(photo: str | None) -> str:
    """The public URL of a goods picture (stored relative to settings.upload_dir)."""
    return UPLOADS_URL + photo if photo else PLACEHOLDER_URL


def upload_root(settings: Settings) -> Path:
    """settings.upload_dir, made if missing (it is served under /static/uploads/)."""
    root = Path(settings.upload_dir)
    (root / "goods").mkdir(parents=True, exist_ok=True)
    return root


def detect_photo_format(data: bytes) -> str | None:
    """'JPEG', 'PNG' or 'WEBP' when the bytes are a well-formed picture of that kind, else None."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format
            image.verify()  # checks the structure (and PNG checksums) without decoding pixels
    except Exception:  # Pillow raises many kinds (UnidentifiedImageError, SyntaxError, OSError...)
        return None
    return kind if kind in PHOTO_FORMATS else None


def reencode_photo(data: bytes) -> tuple[str, bytes]:
    """(format, new bytes): the picture decoded and written again, so that nothing but its pixels
    survives (no EXIF or GPS, no comments, no data after the image). Refuses with `bad_image` a
    file that is not a JPEG, PNG or WebP, or larger than 4096 px a side or 16 megapixels: the
    size is read from the header before anything is decoded (a decompression bomb is refused
    while still small)."""
    import warnings

    from PIL import Image, ImageOps

    kind = detect_photo_format(data)
    if kind is None:
        raise BadImage()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width > MAX_PHOTO_SIDE or height > MAX_PHOTO_SIDE or width * height > MAX_PHOTO_PIXELS:
                    raise BadImage(f"The picture is larger than {MAX_PHOTO_SIDE}x{MAX_PHOTO_SIDE} pixels "
                                   f"or {MAX_PHOTO_PIXELS // 1_000_000} megapixels.")
                image.load()
                icc = image.info.get("icc_profile")
                upright = ImageOps.exif_transpose(image).copy()  # keep how it looked, then drop the EXIF
                upright.info = {}  # Pillow writes some metadata (a JPEG comment) from info
                out = io.BytesIO()
                if kind == "JPEG":
                    pixels = upright if upright.mode in ("RGB", "L") else upright.convert("RGB")
                    pixels.info = {}
                    pixels.save(out, "JPEG", quality=90, optimize=True, icc_profile=icc)
                elif kind == "PNG":
                    pixels = upright if upright.mode in ("RGB", "RGBA", "L", "LA", "P") else upright.convert("RGBA")
                    pixels.save(out, "PNG", optimize=False, icc_profile=icc)
                else:
                    pixels = upright if upright.mode in ("RGB", "RGBA") else upright.convert("RGBA")
                    pixels.save(out, "WEBP", quality=90, icc_profile=icc)
    except BadImage:
        raise
    except Exception:  # a truncated or malformed image body, a bomb, an unsupported mode
        raise BadImage() from None
    return kind, out.getvalue()


def stored_path(settings: Settings, photo: str) -> Path | None:
    """The file of a stored picture path, only when it lies inside the upload directory."""
    root = Path(settings.upload_dir).resolve()
    path = (root / photo).resolve()
    return path if path.is_relative_to(root) and path != root else None


async def remove_photo(settings: Settings, photo: str | None) -> None:
    path = stored_path(settings, photo) if photo else None
    if path is None:
        return
    try:
        await asyncio.to_thread(path.unlink, missing_ok=True)
    except OSError:
        log.warning("could not remove the old picture %s", path, exc_info=True)


async def store_photo(settings: Settings, data: bytes) -> tuple[str, Path]:
    """Save a JPEG, PNG or WebP picture (checked by content, re-encoded without its metadata) under a
    new name: (stored path, file)."""
    if len(data) > MAX_PHOTO_BYTES:
        raise TooLarge("The picture is larger than 5 MB.")
    kind, data = await asyncio.to_thread(reencode_photo, data)
    photo = f"goods/{secrets.token_hex(16)}.{PHOTO_FORMATS[kind]}"
    path = upload_root(settings) / photo
    await asyncio.to_thread(path.write_bytes, data)
    return photo, path
