"""Real-browser fixtures: Playwright driving Debian's headless Chromium against
pytest-django's live server. One browser for the whole run, shared by every
``browser/`` test folder; registered from tests/conftest.py.

Playwright's sync API keeps an event loop running in the main thread while the
browser is open, so Django would refuse ORM calls as "async unsafe". Browser tests
therefore run last, and the permission to call the ORM there is granted only while
the browser is open. Tests are skipped, with a reason, where Chromium is absent.
"""

import os
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def pytest_collection_modifyitems(config, items):
    browser_items = []
    for item in items:
        if f"{os.sep}browser{os.sep}" in str(item.path):
            item.add_marker(pytest.mark.browser)
            if not os.path.exists(CHROMIUM):
                item.add_marker(
                    pytest.mark.skip(
                        reason="Chromium is not installed (apt-get install chromium)"
                    )
                )
            browser_items.append(item)
    others = [item for item in items if item not in set(browser_items)]
    items[:] = others + browser_items


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=ARGS, headless=True
            )
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def screenshot_dir():
    path = os.environ.get("SCREENSHOT_DIR")
    if path:
        os.makedirs(path, exist_ok=True)
    return path
