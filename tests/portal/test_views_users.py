"""Users and roles: owners and admins add people, change roles, deactivate."""

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from portal.models import MerchantUser
from tests.conftest import member

Role = MerchantUser.Role


def test_admin_sees_the_merchants_users_only(
    portal_client, merchant_user, other_merchant
):
    member(other_merchant, Role.OWNER, "stranger")
    body = portal_client.get(reverse("portal:user_list")).content.decode()
    assert "anna" in body
    assert "stranger" not in body


@pytest.mark.parametrize("role", ["viewer", "refunds"])
def test_viewers_and_refunders_cannot_manage_users(client_as, role):
    client = client_as(role)
    assert client.get(reverse("portal:user_list")).status_code == 403
    assert client.post(reverse("portal:user_add"), {}).status_code == 403


def test_adding_a_user_sends_an_invitation_to_set_a_password(portal_client, merchant):
    response = portal_client.post(
        reverse("portal:user_add"),
        {
            "first_name": "Ben",
            "last_name": "Lind",
            "email": "ben@example.com",
            "username": "ben",
            "role": Role.REFUNDS,
        },
    )
    assert response.status_code == 302
    added = MerchantUser.objects.get(user__username="ben")
    assert (added.merchant, added.role) == (merchant, Role.REFUNDS)
    (email,) = mail.outbox
    assert email.to == ["ben@example.com"]
    assert "/password/reset/" in email.body
    assert "Nordic Threads" in email.subject


def test_an_admin_cannot_make_someone_an_owner(portal_client):
    response = portal_client.post(
        reverse("portal:user_add"),
        {
            "first_name": "X",
            "email": "x@example.com",
            "username": "x",
            "role": Role.OWNER,
        },
    )
    assert "role" in response.context["form"].errors
    assert not get_user_model().objects.filter(username="x").exists()


def test_change_role_and_deactivate_a_user(portal_client, merchant):
    person = member(merchant, Role.VIEWER, "val")
    url = reverse("portal:user_edit", args=[person.pk])
    portal_client.post(url, {"role": Role.REFUNDS, "is_active": "on"})
    person.refresh_from_db()
    assert person.role == Role.REFUNDS
    portal_client.post(url, {"role": Role.REFUNDS})
    person.user.refresh_from_db()
    assert person.user.is_active is False
    assert (
        "Deactivated" in portal_client.get(reverse("portal:user_list")).content.decode()
    )


def test_nobody_can_deactivate_or_demote_themselves(portal_client, merchant_user):
    url = reverse("portal:user_edit", args=[merchant_user.pk])
    response = portal_client.post(url, {"role": Role.VIEWER, "is_active": "on"})
    assert "cannot change your own role" in response.content.decode()
    merchant_user.refresh_from_db()
    assert merchant_user.role == Role.ADMIN


def test_an_owner_can_demote_another_owner(client, owner, merchant):
    second = member(merchant, Role.OWNER, "otto")
    client.force_login(second.user)
    url = reverse("portal:user_edit", args=[owner.pk])
    assert client.post(url, {"role": Role.ADMIN, "is_active": "on"}).status_code == 302
    owner.refresh_from_db()
    assert owner.role == Role.ADMIN


def test_an_admin_cannot_touch_an_owner(portal_client, owner):
    url = reverse("portal:user_edit", args=[owner.pk])
    response = portal_client.post(url, {"role": Role.OWNER})
    assert "Only an owner can deactivate an owner." in response.content.decode()
    owner.user.refresh_from_db()
    assert owner.user.is_active
