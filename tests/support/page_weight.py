"""What a first visit of a page costs: the bytes Chromium received for it and everything it loaded."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Weight:
    wire: int = 0  # bytes received, headers included, as sent (compressed when the server compressed)
    decoded: int = 0  # bodies once decompressed: what the same visit would cost without compression
    resources: dict[str, int] = field(default_factory=dict)  # URL -> bytes on the wire


async def first_visit(browser, url: str, *, headers: dict[str, str] | None = None,
                      viewport: dict[str, int] | None = None) -> Weight:
    """Open url in a fresh context (empty cache) and add up what came over the network until it was idle."""
    context = await browser.new_context(viewport=viewport or {"width": 1280, "height": 900},
                                        extra_http_headers=headers or {})
    try:
        page = await context.new_page()
        cdp = await context.new_cdp_session(page)
        weight, urls = Weight(), {}
        cdp.on("Network.requestWillBeSent", lambda e: urls.__setitem__(e["requestId"], e["request"]["url"]))

        def finished(event):
            weight.wire += int(event["encodedDataLength"])
            weight.resources[urls.get(event["requestId"], "?")] = int(event["encodedDataLength"])

        def received(event):
            weight.decoded += int(event["dataLength"])

        cdp.on("Network.loadingFinished", finished)
        cdp.on("Network.dataReceived", received)
        await cdp.send("Network.enable")
        await page.goto(url, wait_until="networkidle")
        await page.evaluate("document.fonts.ready.then(() => true)")
        await page.wait_for_load_state("networkidle")
        return weight
    finally:
        await context.close()
