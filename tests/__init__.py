"""FlashSale's tests: one package, so every test imports its helpers as `tests.support.<module>`."""
