"""Every portal and refund URL is scoped to the logged-in user's merchant.

The test walks the URL patterns themselves, so a new view with an id in its URL
is checked automatically: another merchant's id must give 404 (or 403 when the
role may not use the page at all). A URL parameter this test does not know fails
the test until it is added to ``other_merchants_ids`` below.
"""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from portal.models import MerchantUser, Payout
from tests.conftest import member

URLCONFS = {"portal": "portal.portal_urls", "refunds": "refunds.urls"}
#: Pages anyone may open (logging in, resetting a password).
PUBLIC = {
    "portal:login",
    "portal:logout",
    "portal:password_reset",
    "portal:password_reset_done",
    "portal:password_reset_confirm",
    "portal:password_reset_complete",
}


def walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns, prefix)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield pattern


def all_patterns():
    for namespace, urlconf in URLCONFS.items():
        for pattern in walk(get_resolver(urlconf).url_patterns):
            yield f"{namespace}:{pattern.name}", set(pattern.pattern.converters)


PATTERNS = sorted(all_patterns())
SCOPED = [(name, params) for name, params in PATTERNS if params and name not in PUBLIC]
UNSCOPED = [name for name, params in PATTERNS if not params and name not in PUBLIC]


@pytest.fixture
def other_merchants_ids(other_merchant, other_order):
    """Ids that exist, but belong to another merchant."""
    Payout.close_next(other_merchant)  # payout #1 exists only for the other merchant
    stranger = member(other_merchant, MerchantUser.Role.OWNER, "stranger")
    return {
        "order_id": other_order.order_id,
        "capture_id": other_order.captures.get().capture_id,
        "number": 1,
        "pk": stranger.pk,
    }


def test_the_walk_finds_the_portal_and_refund_pages():
    names = {name for name, _ in PATTERNS}
    assert {"portal:order_detail", "refunds:create", "portal:payout_csv"} <= names
    assert len(SCOPED) >= 8


@pytest.mark.parametrize(("name", "params"), SCOPED, ids=[n for n, _ in SCOPED])
@pytest.mark.parametrize("role", ["owner", "viewer"])
def test_another_merchants_ids_give_404_on_every_page(
    client_as, other_merchants_ids, name, params, role
):
    unknown = params - set(other_merchants_ids)
    assert not unknown, f"{name}: teach this test the URL parameter(s) {unknown}"
    url = reverse(name, kwargs={p: other_merchants_ids[p] for p in params})
    client = client_as(role)
    allowed = {404} if role == "owner" else {403, 404}
    for method in ("get", "post"):
        response = getattr(client, method)(
            url, {"action": "confirm", "kind": "complete"}
        )
        assert response.status_code in allowed | {405}, f"{method.upper()} {url}"
        if response.status_code == 405:
            continue
        assert "Sven Other" not in response.content.decode()


@pytest.mark.parametrize("name", UNSCOPED)
def test_every_portal_page_needs_a_login(client, db, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert (
        response["Location"].startswith(reverse("portal:login"))
        or name == "portal:home"
    )


@pytest.mark.parametrize(("name", "params"), SCOPED, ids=[n for n, _ in SCOPED])
def test_pages_with_ids_need_a_login(client, other_merchants_ids, name, params):
    url = reverse(name, kwargs={p: other_merchants_ids[p] for p in params})
    response = client.get(url)
    assert response.status_code in (302, 405)


@pytest.mark.parametrize("action", ["preview", "maximum", ""])
@pytest.mark.parametrize("name", ["refunds:create", "refunds:preview"])
def test_another_merchants_order_is_not_previewed(
    portal_client, other_order, name, action
):
    """The preview reads the order with its rows by the merchant and the
    order id (``OrderState.merchants_order``): another merchant's order does
    not exist there, with or without HTMX."""
    url = reverse(name, args=[other_order.order_id])
    data = {"action": action, "kind": "complete", "idempotency_key": "k"}
    assert portal_client.post(url, data).status_code == 404
    assert (
        portal_client.post(url, data, headers={"HX-Request": "true"}).status_code == 404
    )
