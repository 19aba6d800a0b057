"""The portal's API pages: credentials (admins and owners) and the request log."""

import uuid

import pytest

from portal.api.models import ApiCredential, ApiRequestLog
from portal.models import MerchantUser
from tests.api.helpers import ApiClient, basic, om
from tests.factories import MerchantFactory, MerchantUserFactory

pytestmark = pytest.mark.django_db

CREDENTIALS = "/settings/api/credentials/"
LOG = "/settings/api/log/"


@pytest.fixture
def admin_client(client, merchant_user):
    client.force_login(merchant_user.user)
    return client


@pytest.fixture
def viewer_client(client, merchant):
    viewer = MerchantUserFactory(merchant=merchant, role=MerchantUser.Role.VIEWER)
    client.force_login(viewer.user)
    return client


def log_entry(merchant, status=200, error_code="", path="/ordermanagement/v1/orders/x"):
    return ApiRequestLog.objects.create(
        merchant=merchant,
        method="POST",
        path=path,
        status=status,
        error_code=error_code,
        correlation_id=uuid.uuid4(),
    )


def test_creating_a_credential_shows_the_secret_once(admin_client, merchant, order):
    response = admin_client.post(CREDENTIALS, {"name": "Shop backend"})

    assert response.status_code == 200
    credential = ApiCredential.objects.get(merchant=merchant)
    secret = response.context["issued"].secret
    html = response.content.decode()
    assert credential.username in html and secret in html
    assert "shown only this once" in html
    assert secret not in admin_client.get(CREDENTIALS).content.decode()
    # The secret works against the API.
    assert (
        ApiClient(basic(credential.username, secret)).get(om(order)).status_code == 200
    )


def test_creating_a_credential_with_htmx_renders_the_credentials_region(admin_client):
    response = admin_client.post(
        CREDENTIALS, {"name": "ERP"}, headers={"HX-Request": "true"}
    )

    html = response.content.decode()
    assert html.lstrip().startswith('<div id="credentials">')
    assert "<html" not in html
    assert response.context["issued"].secret in html


def test_a_credential_needs_a_name(admin_client, merchant):
    response = admin_client.post(CREDENTIALS, {"name": "   "})

    assert "field-errors" in response.content.decode()
    assert response.context["form"].errors
    assert not ApiCredential.objects.exists()


def test_the_list_shows_only_this_merchants_credentials(admin_client, merchant):
    ApiCredential.issue(merchant, "Mine")
    ApiCredential.issue(MerchantFactory(slug="elsewhere"), "Theirs")

    html = admin_client.get(CREDENTIALS).content.decode()

    assert "Mine" in html and "Theirs" not in html


def test_revoking_a_credential_stops_it_working(admin_client, merchant, order):
    credential, secret = ApiCredential.issue(merchant, "Old shop")

    response = admin_client.post(f"{CREDENTIALS}{credential.pk}/revoke/")

    assert response.status_code == 302
    credential.refresh_from_db()
    assert credential.revoked_at is not None
    assert (
        ApiClient(basic(credential.username, secret)).get(om(order)).status_code == 401
    )
    assert "was revoked" in admin_client.get(CREDENTIALS).content.decode()


def test_revoking_with_htmx_renders_the_credentials_region(admin_client, merchant):
    credential, _ = ApiCredential.issue(merchant, "Old shop")

    response = admin_client.post(
        f"{CREDENTIALS}{credential.pk}/revoke/", headers={"HX-Request": "true"}
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="credentials">')
    assert "Revoked" in html


def test_another_merchants_credential_cannot_be_revoked(admin_client):
    theirs, _ = ApiCredential.issue(MerchantFactory(slug="elsewhere"), "Theirs")

    response = admin_client.post(f"{CREDENTIALS}{theirs.pk}/revoke/")

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_viewers_cannot_manage_credentials(viewer_client, merchant):
    credential, _ = ApiCredential.issue(merchant, "Shop")

    assert viewer_client.get(CREDENTIALS).status_code == 403
    assert viewer_client.post(CREDENTIALS, {"name": "Sneaky"}).status_code == 403
    assert (
        viewer_client.post(f"{CREDENTIALS}{credential.pk}/revoke/").status_code == 403
    )
    assert ApiCredential.objects.count() == 1
    credential.refresh_from_db()
    assert credential.revoked_at is None


def test_anonymous_visitors_are_sent_to_login(client):
    assert client.get(CREDENTIALS)["Location"].startswith("/login")
    assert client.get(LOG)["Location"].startswith("/login")


def test_the_request_log_shows_this_merchants_requests_to_any_user(
    viewer_client, merchant
):
    mine = log_entry(merchant, 403, "REFUND_NOT_ALLOWED")
    theirs = log_entry(MerchantFactory(slug="elsewhere"))

    response = viewer_client.get(LOG)

    html = response.content.decode()
    assert response.status_code == 200
    assert str(mine.correlation_id) in html and "REFUND_NOT_ALLOWED" in html
    assert str(theirs.correlation_id) not in html


def test_the_request_log_finds_a_correlation_id(viewer_client, merchant):
    wanted, other = log_entry(merchant), log_entry(merchant)

    html = viewer_client.get(LOG, {"q": str(wanted.correlation_id)}).content.decode()

    assert str(wanted.correlation_id) in html
    assert str(other.correlation_id) not in html


def test_the_request_log_filters_errors(viewer_client, merchant):
    ok, failed = (
        log_entry(merchant, 201),
        log_entry(merchant, 422, "UNPROCESSABLE_ENTITY"),
    )

    html = viewer_client.get(LOG, {"outcome": "errors"}).content.decode()

    assert str(failed.correlation_id) in html
    assert str(ok.correlation_id) not in html


def test_the_request_log_with_htmx_renders_only_the_results(viewer_client, merchant):
    entry = log_entry(merchant)

    response = viewer_client.get(LOG, headers={"HX-Request": "true"})

    html = response.content.decode()
    assert html.lstrip().startswith('<section id="log-results"')
    assert str(entry.correlation_id) in html
    assert "<html" not in html


def test_the_request_log_pages_by_fifty(viewer_client, merchant):
    entries = [log_entry(merchant) for _ in range(55)]

    first = viewer_client.get(LOG)
    assert len(first.context["page"].entries) == 50
    cursor = first.context["page"].next_cursor
    second = viewer_client.get(LOG, {"before": cursor})

    assert [e.pk for e in second.context["page"].entries] == [
        e.pk for e in entries[4::-1]
    ]
    assert second.context["page"].next_cursor is None


def test_the_request_log_runs_a_bounded_number_of_queries(
    viewer_client, merchant, django_assert_max_num_queries
):
    credential, _ = ApiCredential.issue(merchant, "Shop")
    for _ in range(120):
        entry = log_entry(merchant)
        entry.credential = credential
        entry.save()

    with django_assert_max_num_queries(8):
        assert viewer_client.get(LOG).status_code == 200


def test_an_invalid_cursor_shows_a_message_not_an_error(viewer_client):
    response = viewer_client.get(LOG, {"before": "abc"})

    assert response.status_code == 200
    assert "Fix the search" in response.content.decode()
