"""The benchmark's classification of refund confirms."""

import pytest
from django.urls import reverse

from bench.run import classify_confirm
from tests.factories import line


class Page:
    """What ``classify_confirm`` reads of an httpx response."""

    def __init__(self, response):
        self.status_code = response.status_code
        self.text = response.content.decode()


@pytest.mark.parametrize("language", ["en", "de", "sv"])
def test_a_confirm_refused_because_the_order_changed_is_recognised_in_every_language(
    portal_client, merchant_user, make_order, language
):
    merchant_user.language = language
    merchant_user.save(update_fields=["language"])
    order = make_order(lines=[line("TSHIRT-1", 10000, 4)], capture=True)
    url = reverse("refunds:create", args=[order.order_id])
    tshirt = order.lines.get()
    data = {
        "kind": "items",
        f"line-{tshirt.pk}-selected": "on",
        f"line-{tshirt.pk}-quantity": "1",
        "idempotency_key": "k-1",
        "reason": "returned",
    }
    preview = portal_client.post(
        reverse("refunds:preview", args=[order.order_id]),
        data,
        HTTP_HX_REQUEST="true",
    )
    data["expected_fingerprint"] = preview.context["plan"].fingerprint
    order.refund_lines([("TSHIRT-1", 1)])  # someone else, in between

    refused = portal_client.post(url, {**data, "action": "confirm"})
    assert classify_confirm(Page(refused)) == "refused: changed since preview"

    over = {**data, f"line-{tshirt.pk}-quantity": "9", "idempotency_key": "k-2"}
    over["expected_fingerprint"] = "0" * 32
    refused = portal_client.post(url, {**over, "action": "confirm"})
    assert classify_confirm(Page(refused)) == "refused: over refund"

    data["expected_fingerprint"] = (
        portal_client.post(
            reverse("refunds:preview", args=[order.order_id]),
            {**data, "idempotency_key": "k-3"},
            HTTP_HX_REQUEST="true",
        )
        .context["plan"]
        .fingerprint
    )
    done = portal_client.post(
        url, {**data, "idempotency_key": "k-3", "action": "confirm"}
    )
    assert classify_confirm(Page(done)) == "refunded"
