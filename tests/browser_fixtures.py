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


#: Reports each Content-Security-Policy violation to the test (runs in every
#: page and frame before the page's own scripts).
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  if (window.__reportCsp) {
    window.__reportCsp([event.violatedDirective, event.blockedURI,
      event.sourceFile + ":" + event.lineNumber, event.sample].join(" "));
  }
});
"""


class ConsoleProblems:
    """Console errors, uncaught page errors and CSP violations seen during a
    test; ``page`` fails the test on teardown when there are any. A test that
    provokes one on purpose calls ``expect(text)`` for each, and then such a
    problem is required to appear rather than forbidden."""

    def __init__(self):
        self.seen: list[str] = []
        self.expected: list[str] = []

    def add(self, kind: str, text: str) -> None:
        self.seen.append(f"{kind}: {text}")

    def expect(self, text: str) -> None:
        self.expected.append(text)

    def unexpected(self) -> list[str]:
        return [p for p in self.seen if not any(e in p for e in self.expected)]

    def missing(self) -> list[str]:
        return [e for e in self.expected if not any(e in p for p in self.seen)]


@pytest.fixture
def console_problems() -> ConsoleProblems:
    return ConsoleProblems()


def watch_console(context, problems: ConsoleProblems) -> None:
    """Record console errors, page errors and CSP violations of every page of
    ``context`` in ``problems``."""
    context.expose_function("__reportCsp", lambda text: problems.add("CSP", text))
    context.add_init_script(CSP_LISTENER)

    def on_page(page):
        page.on(
            "console",
            lambda message: (
                message.type == "error"
                and problems.add("console", f"{message.text} ({message.location})")
            ),
        )
        page.on("pageerror", lambda error: problems.add("page error", str(error)))

    context.on("page", on_page)


def new_context(browser, live_server, problems: ConsoleProblems, **options):
    """A browser context on the live server whose pages report their console
    errors and CSP violations to ``problems``."""
    options.setdefault("viewport", {"width": 1280, "height": 900})
    context = browser.new_context(base_url=live_server.url, **options)
    context.set_default_timeout(10_000)
    watch_console(context, problems)
    return context


def fail_on_console_problems(problems: ConsoleProblems) -> None:
    unexpected, missing = problems.unexpected(), problems.missing()
    if unexpected:
        pytest.fail(
            "The browser reported console errors or CSP violations:\n"
            + "\n".join(unexpected)
        )
    if missing:
        pytest.fail("Expected in the console but not seen: " + ", ".join(missing))


@pytest.fixture
def page(browser, live_server, console_problems):
    """A page at desktop width (1280 × 900). The test fails on teardown if the
    page logged a console error or violated the Content-Security-Policy."""
    context = new_context(browser, live_server, console_problems)
    page = context.new_page()
    yield page
    page.wait_for_timeout(100)  # let late events (a last htmx swap) arrive
    context.close()
    fail_on_console_problems(console_problems)


PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser, live_server, console_problems):
    """A page 390 px wide (a phone), failing like ``page`` on console errors and
    CSP violations."""
    context = new_context(browser, live_server, console_problems, viewport=PHONE)
    page = context.new_page()
    yield page
    page.wait_for_timeout(100)
    context.close()
    fail_on_console_problems(console_problems)


@pytest.fixture
def axe():
    """``axe(page, name)`` runs axe-core (axe-playwright-python) on the page as
    it is; the test fails on teardown if any page had a serious or critical
    violation, listing all of them (every page is checked, not just the first)."""
    from axe_playwright_python.sync_playwright import Axe

    runner = Axe()
    found: list[str] = []

    def check(page, name: str = "") -> None:
        results = runner.run(page)
        for v in results.response["violations"]:
            if v.get("impact") in ("serious", "critical"):
                targets = "; ".join(str(n["target"]) for n in v["nodes"][:5])
                found.append(
                    f"{name or page.url}: {v['impact']} {v['id']}: {v['help']} -> "
                    + targets
                )

    yield check
    if found:
        pytest.fail("axe-core found:\n" + "\n".join(found))


@pytest.fixture
def screenshot_dir():
    path = os.environ.get("SCREENSHOT_DIR")
    if path:
        os.makedirs(path, exist_ok=True)
    return path
