"""FlashSale: a flash-sale web shop on aiohttp, MySQL and Redis."""
