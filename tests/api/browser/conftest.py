"""Real-browser tests of the API pages, with the shared Playwright fixtures."""

import os

import pytest

from tests.browser.conftest import CHROMIUM, browser, page, screenshot_dir  # noqa: F401


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/api/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
            if not os.path.exists(CHROMIUM):
                item.add_marker(
                    pytest.mark.skip(
                        reason="Chromium is not installed (apt-get install chromium)"
                    )
                )
