"""Uploaded pictures are re-encoded: no EXIF/GPS, no trailing data, and no picture too large to decode."""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from aiohttp import FormData
from PIL import Image

from flashsale import db
from flashsale.services import goods_photos

GPS_IFD = 0x8825


def photo_form(data: bytes) -> FormData:
    form = FormData()
    form.add_field("photo", io.BytesIO(data), filename="p.jpg", content_type="image/jpeg")
    return form


def jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (40, 30), (10, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    exif[0x0112] = 1  # Orientation
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)})
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, comment=b"secret comment")
    return out.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG file whose header claims width x height (greyscale): the pixels compress to almost
    nothing, decoding them would take width x height bytes."""
    raw = zlib.compress(b"\x00" * (width + 1) * 16, 9)  # only a few rows: never decoded anyway
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", raw) + png_chunk(b"IEND", b"")


async def stored_photo(ctx, goods_id: int) -> str | None:
    return await db.fetch_value(ctx.db, "SELECT photo FROM goods WHERE id = %s", (goods_id,))


async def upload(client, headers, goods_id: int, data: bytes):
    return await client.post(f"/api/admin/goods/{goods_id}/photo", data=photo_form(data), headers=headers)


async def test_exif_gps_and_comments_are_stripped(admin_client, ctx, factory, settings):
    client, _, headers = admin_client
    goods_id = await factory.goods()
    data = jpeg_with_gps()
    with Image.open(io.BytesIO(data)) as original:  # the test picture really carries them
        assert original.getexif().get_ifd(GPS_IFD) and b"SpyCam" in data and b"secret comment" in data
    r = await upload(client, headers, goods_id, data)
    assert r.status == 200, await r.text()
    stored = (Path(settings.upload_dir) / await stored_photo(ctx, goods_id)).read_bytes()
    assert b"SpyCam" not in stored and b"secret comment" not in stored and b"Exif" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert image.format == "JPEG" and image.size == (40, 30)
        assert not image.getexif() and "comment" not in image.info


async def test_data_after_the_picture_is_not_kept(admin_client, ctx, factory, settings):
    client, _, headers = admin_client
    goods_id = await factory.goods()
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (0, 200, 0)).save(out, "PNG")
    data = out.getvalue() + b"<script>alert(1)</script>" + b"PK\x03\x04 a zip archive"
    r = await upload(client, headers, goods_id, data)
    assert r.status == 200, await r.text()
    stored = (Path(settings.upload_dir) / await stored_photo(ctx, goods_id)).read_bytes()
    assert b"<script>" not in stored and b"PK\x03\x04" not in stored
    assert stored.endswith(png_chunk(b"IEND", b""))


@pytest.mark.parametrize("width, height", [(30_000, 30_000), (4097, 10), (10, 4097), (4096, 4000)])
async def test_a_decompression_bomb_or_an_oversized_picture_is_a_bad_image(admin_client, ctx, factory,
                                                                            width, height):
    client, _, headers = admin_client
    goods_id = await factory.goods()
    data = png_bomb(width, height)
    assert len(data) < 2000
    r = await upload(client, headers, goods_id, data)
    assert r.status == 400, await r.text()
    assert (await r.json())["data"]["reason"] == "bad_image"
    assert await stored_photo(ctx, goods_id) is None


def test_the_largest_allowed_picture_is_reencoded():
    out = io.BytesIO()
    Image.new("L", (4096, 3900)).save(out, "PNG")  # 15.97 megapixels
    kind, data = goods_photos.reencode_photo(out.getvalue())
    with Image.open(io.BytesIO(data)) as image:
        assert kind == "PNG" and image.size == (4096, 3900)
