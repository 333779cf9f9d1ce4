"""Fixtures of the report tests: a headless Chromium, or a skip (a failure in CI)."""

from __future__ import annotations

import os

import pytest

from dse.report.browser import find_browser


@pytest.fixture(scope="session")
def chromium():
    found = find_browser()
    if found is None:
        hint = "apt-get install chromium chromium-driver (or set DSE_CHROMIUM/DSE_CHROMEDRIVER)"
        if os.environ.get("DSE_REQUIRE_BROWSER") == "1":
            pytest.fail(
                f"DSE_REQUIRE_BROWSER=1 but no headless Chromium found: {hint}", pytrace=False
            )
        pytest.skip(f"no headless Chromium: {hint}")
    return found
