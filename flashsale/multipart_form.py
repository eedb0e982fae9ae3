"""multipart/form-data read into memory, every part or none.

request.post() spools a file part into a temporary file and leaves it open when the body is cut
off inside that part (aiohttp closes it only on its own size check). The body is bounded by
client_max_size (FLASHSALE_MAX_BODY_BYTES), so the parts are kept in memory instead: nothing is
left open whatever the client sends."""
from __future__ import annotations

import io

from aiohttp import hdrs, web
from aiohttp.multipart import BodyPartReader
from aiohttp.web_request import FileField
from multidict import MultiDict, MultiDictProxy

FORM = web.RequestKey("form", MultiDictProxy)
MAX_FIELDS = 1000
CHUNK_BYTES = 64 * 1024


async def read_multipart(request: web.Request) -> MultiDictProxy:
    """The form's fields (str, or FileField over bytes for a part with a filename); read once per
    request. ValueError (a 400 for the caller) for a body that is not a flat form;
    HTTPRequestEntityTooLarge past client_max_size."""
    if FORM in request:
        return request[FORM]
    out: MultiDict = MultiDict()
    reader = await request.multipart()
    limit = request.client_max_size
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise ValueError("Nested multipart is not a form.")
        if part.name is None:
            raise ValueError("Multipart field missing name.")
        if len(out) >= MAX_FIELDS:
            raise ValueError("Too many form fields.")
        raw = bytearray()
        while chunk := await part.read_chunk(CHUNK_BYTES):
            if 0 < limit < request.content.total_bytes:
                raise web.HTTPRequestEntityTooLarge(limit, request.content.total_bytes)
            raw.extend(chunk)
        value = bytearray()
        async for decoded in part.decode_iter(bytes(raw)):
            value.extend(decoded)
        content_type = part.headers.get(hdrs.CONTENT_TYPE)
        if part.filename:
            out.add(part.name, FileField(part.name, part.filename, io.BytesIO(bytes(value)),
                                         content_type or "application/octet-stream", part.headers))
        elif content_type is None or content_type.startswith("text/"):
            out.add(part.name, value.decode(part.get_charset(default="utf-8")))
        else:
            out.add(part.name, bytes(value))
    request[FORM] = MultiDictProxy(out)
    return request[FORM]
