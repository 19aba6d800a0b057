"""Logging in and out, password change and reset, and lockout after failures."""

from django.core import mail
from django.test import override_settings
from django.urls import reverse

from tests.factories import UserFactory

PASSWORD = "correct horse battery staple"


def test_login_page_has_labelled_fields(client, db):
    body = client.get(reverse("portal:login")).content.decode()
    assert '<label for="id_username">' in body and '<label for="id_password">' in body


def test_a_merchant_user_logs_in_with_the_form_and_lands_on_orders(
    client, merchant_user
):
    response = client.post(
        reverse("portal:login"), {"username": "anna", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:order_list")
    assert client.get(reverse("portal:order_list")).status_code == 200


def test_a_wrong_password_is_refused_with_a_message(client, merchant_user):
    response = client.post(
        reverse("portal:login"), {"username": "anna", "password": "x"}
    )
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


@override_settings(AXES_FAILURE_LIMIT=3)
def test_repeated_failed_logins_lock_the_account_out(client, merchant_user):
    for _ in range(3):
        client.post(reverse("portal:login"), {"username": "anna", "password": "wrong"})
    response = client.post(
        reverse("portal:login"), {"username": "anna", "password": PASSWORD}
    )
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_logout_is_a_post_and_ends_the_session(portal_client):
    response = portal_client.post(reverse("portal:logout"))
    assert response.status_code == 302
    assert portal_client.get(reverse("portal:order_list")).status_code == 302


def test_a_user_without_a_merchant_is_told_so(client, db):
    client.force_login(UserFactory(username="loner"))
    response = client.get(reverse("portal:order_list"))
    assert response.status_code == 403
    assert "not linked to a merchant" in response.content.decode()


def test_password_change(portal_client, merchant_user):
    response = portal_client.post(
        reverse("portal:password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "a much better passphrase 42",
            "new_password2": "a much better passphrase 42",
        },
    )
    assert response["Location"] == reverse("portal:password_change_done")
    merchant_user.user.refresh_from_db()
    assert merchant_user.user.check_password("a much better passphrase 42")


def test_password_reset_sends_a_link_that_sets_a_new_password(client, merchant_user):
    client.post(reverse("portal:password_reset"), {"email": "anna@example.com"})
    (email,) = mail.outbox
    link = next(part for part in email.body.split() if "/password/reset/" in part)
    path = link.split("testserver", 1)[1]
    form_page = client.get(path, follow=True)
    assert "Choose a new password" in form_page.content.decode()
    response = client.post(
        form_page.redirect_chain[-1][0],
        {
            "new_password1": "brand new secret 1234",
            "new_password2": "brand new secret 1234",
        },
    )
    assert response["Location"] == reverse("portal:password_reset_complete")
    merchant_user.user.refresh_from_db()
    assert merchant_user.user.check_password("brand new secret 1234")


def test_settings_menu_links_users_and_api_pages_for_admins_only(
    portal_client, client_as
):
    body = portal_client.get(reverse("portal:order_list")).content.decode()
    for name in ("portal:user_list", "api:credential_list", "api:request_log"):
        assert f'href="{reverse(name)}"' in body
    viewer_page = client_as("viewer").get(reverse("portal:order_list")).content.decode()
    assert f'href="{reverse("api:credential_list")}"' not in viewer_page
    assert f'href="{reverse("portal:user_list")}"' not in viewer_page
    assert f'href="{reverse("api:request_log")}"' in viewer_page


def test_the_lockout_page_explains_what_to_do(client, merchant_user):
    for _ in range(5):
        client.post(reverse("portal:login"), {"username": "anna", "password": "wrong"})
    response = client.post(
        reverse("portal:login"), {"username": "anna", "password": "wrong"}
    )
    body = response.content.decode()
    assert response.status_code == 429
    assert "Too many failed logins" in body
    assert reverse("portal:password_reset") in body
