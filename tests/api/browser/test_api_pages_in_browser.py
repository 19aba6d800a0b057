"""A merchant admin in a real browser: create an API credential, call the API with
it over HTTP, find the call in the request log, revoke the credential, read the docs."""

import base64
import json
import os
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from portal.models import MerchantUser
from tests.factories import (
    CustomerFactory,
    MerchantFactory,
    MerchantUserFactory,
    OrderFactory,
    UserFactory,
)

PASSWORD = "correct horse battery staple"


@pytest.fixture
def shop_order(db):
    merchant = MerchantFactory(
        name="Nordic Threads", slug="nordic-threads", country="DE"
    )
    MerchantUserFactory(
        merchant=merchant,
        role=MerchantUser.Role.ADMIN,
        user=UserFactory(username="anna"),
    )
    order = OrderFactory(merchant=merchant, customer=CustomerFactory())
    order.capture()
    return order


def shot(page, screenshot_dir, name, *, full_page=True):
    if screenshot_dir:
        page.screenshot(path=os.path.join(screenshot_dir, name), full_page=full_page)


def call_api(url, username, secret, body):
    token = base64.b64encode(f"{username}:{secret}".encode()).decode()
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


@pytest.mark.django_db(transaction=True)
def test_admin_creates_a_credential_uses_it_finds_the_call_and_revokes_it(
    page, live_server, shop_order, screenshot_dir
):
    page.goto("/login/")
    page.get_by_label("Username").fill("anna")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("Settings").click()
    page.get_by_role("link", name="API credentials").click()
    expect(page.get_by_role("heading", name="API credentials")).to_be_visible()

    page.get_by_label("Name").fill("Shop backend")
    page.get_by_role("button", name="Create credential").click()
    expect(page.get_by_text("shown only this once")).to_be_visible()
    username = page.locator("#issued-username").inner_text()
    secret = page.locator("#issued-secret").inner_text()
    shot(page, screenshot_dir, "api-credential-created.png")

    url = f"{live_server.url}/ordermanagement/v1/orders/{shop_order.order_id}/refunds"
    status, headers = call_api(url, username, secret, {"refunded_amount": 50000})
    assert status == 403
    correlation_id = headers["Klarna-Correlation-Id"]
    status, _ = call_api(url, username, secret, {"refunded_amount": 2500})
    assert status == 201

    page.get_by_role("link", name="API request log").first.click()
    expect(page.get_by_role("heading", name="API request log")).to_be_visible()
    expect(page.locator("#log-results tbody tr")).to_have_count(2)
    shot(page, screenshot_dir, "api-request-log.png")
    page.get_by_role("searchbox", name="Correlation ID or path").fill(correlation_id)
    expect(page.locator("#log-results tbody tr")).to_have_count(1)
    expect(page.locator("#log-results")).to_contain_text("REFUND_NOT_ALLOWED")

    page.goto("/settings/api/credentials/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke Shop backend").click()
    expect(page.get_by_text("was revoked")).to_be_visible()
    expect(page.locator("#credentials tbody")).to_contain_text("Revoked")
    shot(page, screenshot_dir, "api-credential-revoked.png")
    status, _ = call_api(url, username, secret, {"refunded_amount": 100})
    assert status == 401


@pytest.mark.django_db(transaction=True)
def test_the_reference_page_reads_well_in_a_browser(page, screenshot_dir):
    page.goto("/ordermanagement/v1/docs/")

    expect(
        page.get_by_role("heading", name="Order Management API", level=1)
    ).to_be_visible()
    shot(page, screenshot_dir, "api-docs-top.png", full_page=False)
    page.get_by_role("link", name="POST Refund", exact=True).click()
    expect(page.locator("#createRefund")).to_be_in_viewport()
    shot(page, screenshot_dir, "api-docs-refund.png", full_page=False)
