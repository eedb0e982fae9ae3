"""What the security suites found, filled as they run and printed by tests/security/conftest.py."""
from __future__ import annotations

from typing import Any

# filled by the suites, printed by pytest_terminal_summary
STATS: dict[str, Any] = {
    "fuzz_routes": set(), "fuzz_cases": 0, "fuzz_5xx": [], "known_hole_cases": 0,
    "matrix_routes": set(), "matrix_cells": 0, "matrix_wrong": [],
    "schemathesis": "",
}
