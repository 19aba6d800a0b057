"""A field with an error names it for assistive technology: Django gives its
widget ``aria-describedby="<id>_error"`` and ``aria-invalid``, and the element
holding the field's errors carries that id (``includes/field.html``,
``portal.widgets.field_group``, the refund form's rows and error slots)."""

import re
from html.parser import HTMLParser

import pytest
from django.urls import reverse


class References(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.described_by: list[str] = []

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        if found.get("id"):
            self.ids.add(found["id"])
        self.described_by += (found.get("aria-describedby") or "").split()


def described_by_what_is_there(html: str) -> list[str]:
    """The ids named by ``aria-describedby`` on the page (at least one)."""
    parser = References()
    parser.feed(html)
    assert parser.described_by, "no field names its errors"
    missing = [i for i in parser.described_by if i not in parser.ids]
    assert not missing, f"aria-describedby names no element: {missing}"
    return parser.described_by


def test_an_invalid_search_filter_is_described_by_its_error(portal_client, db):
    page = portal_client.get(reverse("portal:order_list"), {"date_from": "nope"})
    html = page.content.decode()
    assert "id_date_from_error" in described_by_what_is_there(html)
    assert re.search(r'id="id_date_from_error"><p>[^<]+</p>', html)


def test_an_invalid_capture_amount_is_described_by_its_error(portal_client, order):
    page = portal_client.post(
        reverse("portal:order_capture", args=[order.order_id]),
        {"kind": "amount", "amount": "not money", "action": "confirm"},
    )
    assert "id_amount_error" in described_by_what_is_there(page.content.decode())


@pytest.mark.parametrize("htmx", [False, True])
def test_an_over_refund_is_described_by_its_error(portal_client, captured_order, htmx):
    page = portal_client.post(
        reverse("refunds:create", args=[captured_order.order_id]),
        {"kind": "amount", "amount": "99999", "idempotency_key": "k-1"},
        **({"HTTP_HX_REQUEST": "true"} if htmx else {}),
    )
    html = page.content.decode()
    assert "id_amount_error" in described_by_what_is_there(html)
    assert 'id="id_amount_error"' in html


def test_a_blank_new_user_is_described_by_its_errors(portal_client, db):
    page = portal_client.post(
        reverse("portal:user_add"), {"username": "", "email": "not an email"}
    )
    assert "id_email_error" in described_by_what_is_there(page.content.decode())


def test_the_password_rules_are_inside_the_help_the_new_password_points_to(
    portal_client, db
):
    """Django's password help is a list: inside a <p> the browser would close
    the paragraph before it, leaving ``aria-describedby`` an empty element."""
    html = portal_client.get(reverse("portal:password_change")).content.decode()
    assert "id_new_password1_helptext" in described_by_what_is_there(html)
    assert re.search(r'<div class="help" id="id_new_password1_helptext"><ul>', html)


def test_a_customers_invalid_email_is_described_by_one_error_element(client, db):
    page = client.post(reverse("customers:login"), {"email": "not an email"})
    html = page.content.decode()
    assert "id_email_error" in described_by_what_is_there(html)
    assert html.count('id="id_email_error"') == 1


def test_a_choice_left_out_is_described_for_the_whole_group(portal_client, order):
    """Radio buttons are one group (a fieldset): the group names the error."""
    page = portal_client.post(
        reverse("portal:order_capture", args=[order.order_id]),
        {"kind": "neither", "action": "confirm"},
    )
    html = page.content.decode()
    assert re.search(r'<fieldset aria-describedby="id_kind_error">', html)
    assert "id_kind_error" in described_by_what_is_there(html)
