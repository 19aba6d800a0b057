"""The merchant portal in German and Swedish (issue 15).

Every merchant page is walked in ``de`` and ``sv`` and its visible text searched
for English words left over; a merchant user's language is their own choice,
else their store's; the login pages switch language with a plain POST form; the
API answers in English whatever the browser asks for.
"""

import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import django
import pytest
from babel.messages.pofile import read_po
from django.conf import settings
from django.core import mail
from django.urls import reverse
from django.utils import translation

from portal.api.models import ApiCredential
from portal.models import MerchantUser, PaymentProduct, Payout
from refunds.exceptions import RefundNotAllowed
from tests.api.helpers import ApiClient, basic, om
from tests.conftest import member
from tests.factories import MerchantFactory, MerchantUserFactory, UserFactory, line

LANGUAGES = ["de", "sv"]

#: Pages not translated yet: other branches rework them (the order list and page
#: for speed, the capture and refund forms for features); a second pass after
#: merging translates them and empties this set.
SECOND_PASS_PAGES: set[str] = set()

#: Parts of translated pages whose words come from code another branch
#: translates: the refund reason's labels (``refunds.models.RefundReason``, with
#: the refund form). After merging, this set is emptied too.
SECOND_PASS_CLASSES: frozenset[str] = frozenset()

#: Parts written for someone else, in their language: the refund form's preview
#: of the customer's email is in the customer's language (marked with ``lang``).
OTHER_READERS_CLASSES = frozenset({"email-content"})

#: Words that read the same in every language on these pages: language names in
#: their own language (the switcher and the Language page list "English") and
#: the HTTP methods of the API request log.
ALLOWED_WORDS = {"english", "get", "post", "patch"}

#: Common English words, beyond those of the portal's own English text.
_COMMON_ENGLISH = """
the a an and or of to in on at by for from with without is are was were be been has
have had do does did not no yet you your we our it its this that these those there
here what which who when where how all any every each more less new next back see
shown show can cannot will would should may must only also than then if so as but
into out up down about after before again once please click view edit add save
cancel delete search page pages log login logged order orders refund refunds
refunded payout payouts amount amounts user users settings password email customer
store
"""
COMMON_ENGLISH = set(_COMMON_ENGLISH.split())


def _catalogue_words(language: str) -> tuple[set[str], set[str]]:
    """(words of our English msgids, words of the translations): ours and Django's
    own (its form errors are on the pages too)."""
    django_locale = Path(django.__file__).parent / "conf" / "locale"
    auth_locale = Path(django.__file__).parent / "contrib" / "auth" / "locale"
    english, translated = set(), set()
    for path in (
        Path(settings.BASE_DIR, "locale", language, "LC_MESSAGES", "django.po"),
        django_locale / language / "LC_MESSAGES" / "django.po",
        auth_locale / language / "LC_MESSAGES" / "django.po",
    ):
        ours = path.is_relative_to(settings.BASE_DIR)
        e, t = _po_words(path)
        english |= e if ours else set()
        translated |= t
    return english, translated


def _po_words(path: Path) -> tuple[set[str], set[str]]:
    with path.open("rb") as f:
        catalogue = read_po(f)
    english, translated = set(), set()
    for message in catalogue:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strs = (
            message.string if isinstance(message.string, tuple) else (message.string,)
        )
        for text in ids:
            english |= words(_strip_placeholders(text))
        for text in strs:
            translated |= words(_strip_placeholders(text))
    return english, translated


def _strip_placeholders(text: str) -> str:
    return re.sub(r"%\(\w+\)[sd]|<[^>]+>", " ", text)


def words(text: str) -> set[str]:
    """Lower-case words of two letters or more; addresses, links and codes that
    mix letters and digits (references, usernames) are data."""
    text = re.sub(r"\S+@\S+|\S+://\S+", " ", text)
    return {w.lower() for w in re.findall(r"\b[A-Za-z][A-Za-z’']*[A-Za-z]\b", text)}


def english_words_for(language: str) -> set[str]:
    """Words that mark English text on a page in ``language``: the portal's own
    English vocabulary and common English words, minus every word the language's
    translations also use (Status, Admin, API, CSV...)."""
    english, translated = _catalogue_words(language)
    return (english | COMMON_ENGLISH) - translated - ALLOWED_WORDS


class VisibleText(HTMLParser):
    """Text a person reads: text nodes and the attributes shown or read aloud,
    without scripts, styles, code samples and subtrees with a skipped class."""

    ATTRIBUTES = ("title", "placeholder", "aria-label", "alt", "hx-confirm")
    VOID = {"input", "br", "img", "meta", "link", "hr", "source", "col", "wbr"}

    def __init__(self, skip_classes: set[str] = frozenset()):
        super().__init__()
        self.skip_classes = skip_classes
        self.stack: list[tuple[str, bool]] = []
        self.texts: list[str] = []

    @property
    def skipping(self) -> bool:
        return any(skip for _tag, skip in self.stack)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = set((attrs.get("class") or "").split())
        skip = tag in ("script", "style", "code", "pre") or bool(
            classes & self.skip_classes
        )
        if not self.skipping and not skip:
            self.texts += [attrs[a] for a in self.ATTRIBUTES if attrs.get(a)]
        if tag not in self.VOID:
            self.stack.append((tag, skip))

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        if not self.skipping and data.strip():
            self.texts.append(data.strip())


def english_left(html: str, language: str, skip_classes=frozenset()) -> list[str]:
    """The pieces of visible text that contain an English word."""
    parser = VisibleText(set(skip_classes))
    parser.feed(html)
    marker = english_words_for(language)
    return [text for text in parser.texts if words(text) & marker]


# The pages --------------------------------------------------------------------


@pytest.fixture
def merchant(merchant):
    """The shared test store, German here: its orders and its users' default
    language are German ("de_DE"; the shared fixture writes English, "en_DE")."""
    merchant.locale = "de_DE"
    merchant.save(update_fields=["locale"])
    return merchant


@pytest.fixture
def world(
    merchant, customer, make_order, merchant_user, django_capture_on_commit_callbacks
):
    """A German store with something on every page: orders in each state, a
    settled payout and a next one, refunds (one by items with a reason, an
    internal note, a return fee and money on its way back), an API credential
    and its log."""
    uncaptured = make_order(lines=[line("HOSE-1", 8000, 2, name="Wollhose")])
    captured = make_order(capture=True)
    pay_later = make_order(product=PaymentProduct.PAY_LATER, capture=True)
    captured.refund_amount(2500, by=merchant_user.user, reference="RMA-1")
    repaying = make_order(
        product=PaymentProduct.PAY_NOW,
        lines=[line("HOSE-1", 8000, 2, name="Wollhose"), line("MUETZE-1", 2000)],
        capture=True,
    )
    with django_capture_on_commit_callbacks(execute=True):
        repaying.refund_lines(
            [("HOSE-1", 1)],
            return_fee=500,
            reason="damaged",
            internal_note="Naht aufgerissen",
            description="Kaputte Hose",
            by=merchant_user.user,
        )
    payout = Payout.close_next(merchant)
    make_order(capture=True)
    credential, secret = ApiCredential.issue(
        merchant, "Kassensystem", by=merchant_user.user
    )
    ApiClient(basic(credential.username, secret)).get(om(captured))
    member(merchant, MerchantUser.Role.REFUNDS, "rolf")
    return {
        "uncaptured": uncaptured,
        "captured": captured,
        "pay_later": pay_later,
        "repaying": repaying,
        "payout": payout,
    }


def _capture_url(name, order):
    capture = order.captures.get()
    return reverse(name, args=[order.order_id, capture.capture_id])


#: name -> what a merchant user does to see it: (method, url of the world, data
#: or data of the world).
MERCHANT_PAGES = {
    "portal:payout_list": ("get", lambda w: reverse("portal:payout_list"), None),
    "portal:payout_next": ("get", lambda w: reverse("portal:payout_next"), None),
    "portal:payout_detail": ("get", lambda w: w["payout"].get_absolute_url(), None),
    "portal:refund_export": ("get", lambda w: reverse("portal:refund_export"), None),
    "portal:refund_export (dates refused)": (
        "get",
        lambda w: reverse("portal:refund_export"),
        {"date_from": "2026-02-01", "date_to": "2026-01-01", "format": "csv"},
    ),
    "portal:user_list": ("get", lambda w: reverse("portal:user_list"), None),
    "portal:user_add": ("get", lambda w: reverse("portal:user_add"), None),
    "portal:user_add (refused)": (
        "post",
        lambda w: reverse("portal:user_add"),
        {"username": "rolf", "email": "not an email", "role": "viewer"},
    ),
    "portal:user_edit": (
        "get",
        lambda w: reverse(
            "portal:user_edit",
            args=[MerchantUser.objects.get(user__username="rolf").pk],
        ),
        None,
    ),
    "portal:user_edit (saved)": (
        "post",
        lambda w: reverse(
            "portal:user_edit",
            args=[MerchantUser.objects.get(user__username="rolf").pk],
        ),
        {"role": "viewer", "language": "", "is_active": "on"},
    ),
    "portal:user_edit (refused)": (
        "post",
        lambda w: reverse(
            "portal:user_edit",
            args=[MerchantUser.objects.get(user__username="reader").pk],
        ),
        {"role": "viewer", "language": "", "is_active": "on"},
    ),
    "portal:language": ("get", lambda w: reverse("portal:language"), None),
    "portal:password_change": (
        "get",
        lambda w: reverse("portal:password_change"),
        None,
    ),
    "portal:password_change (refused)": (
        "post",
        lambda w: reverse("portal:password_change"),
        {"old_password": "wrong", "new_password1": "a", "new_password2": "b"},
    ),
    "portal:password_change_done": (
        "get",
        lambda w: reverse("portal:password_change_done"),
        None,
    ),
    "portal:order_cancel": (
        "get",
        lambda w: reverse("portal:order_cancel", args=[w["uncaptured"].order_id]),
        None,
    ),
    "portal:order_cancel (refused)": (
        "get",
        lambda w: reverse("portal:order_cancel", args=[w["captured"].order_id]),
        None,
    ),
    "portal:order_release (refused)": (
        "get",
        lambda w: reverse("portal:order_release", args=[w["uncaptured"].order_id]),
        None,
    ),
    "portal:order_remove_item": (
        "get",
        lambda w: reverse("portal:order_remove_item", args=[w["uncaptured"].order_id]),
        None,
    ),
    "portal:order_remove_item (refused)": (
        "post",
        lambda w: reverse("portal:order_remove_item", args=[w["uncaptured"].order_id]),
        {"line": "HOSE-1", "quantity": "5"},
    ),
    "portal:order_remove_item (captured)": (
        "get",
        lambda w: reverse("portal:order_remove_item", args=[w["captured"].order_id]),
        None,
    ),
    "portal:capture_extend_due_date": (
        "get",
        lambda w: _capture_url("portal:capture_extend_due_date", w["pay_later"]),
        None,
    ),
    "api:credential_list": ("get", lambda w: reverse("api:credential_list"), None),
    "api:credential_list (issued)": (
        "post",
        lambda w: reverse("api:credential_list"),
        {"name": "Warenwirtschaft"},
    ),
    "api:request_log": ("get", lambda w: reverse("api:request_log"), None),
    "portal:order_list": ("get", lambda w: reverse("portal:order_list"), None),
    "portal:order_detail": (
        "get",
        lambda w: w["captured"].get_absolute_url(),
        None,
    ),
    "portal:order_list (nothing found)": (
        "get",
        lambda w: reverse("portal:order_list"),
        {"q": "zzz", "status": "partially_refunded", "date_from": "2026-01-01"},
    ),
    "portal:order_list (refused)": (
        "get",
        lambda w: reverse("portal:order_list"),
        {"date_from": "2026-02-01", "date_to": "2026-01-01"},
    ),
    "portal:order_detail (refunds and money back)": (
        "get",
        lambda w: w["repaying"].get_absolute_url(),
        None,
    ),
    "portal:order_detail (pay later)": (
        "get",
        lambda w: w["pay_later"].get_absolute_url(),
        None,
    ),
    "portal:order_detail (nothing captured)": (
        "get",
        lambda w: w["uncaptured"].get_absolute_url(),
        None,
    ),
    "portal:order_capture": (
        "get",
        lambda w: reverse("portal:order_capture", args=[w["uncaptured"].order_id]),
        None,
    ),
    "portal:order_capture (no quantity)": (
        "post",
        lambda w: reverse("portal:order_capture", args=[w["uncaptured"].order_id]),
        {"kind": "lines", "action": "review"},
    ),
    "portal:order_capture (too many)": (
        "post",
        lambda w: reverse("portal:order_capture", args=[w["uncaptured"].order_id]),
        lambda w: {
            "kind": "lines",
            f"line-{w['uncaptured'].lines.get().pk}": "5",
            "action": "review",
        },
    ),
    "portal:order_capture (review)": (
        "post",
        lambda w: reverse("portal:order_capture", args=[w["uncaptured"].order_id]),
        {"kind": "all", "action": "review", "idempotency_key": "k1"},
    ),
    "portal:order_capture (captured)": (
        "post",
        lambda w: reverse("portal:order_capture", args=[w["uncaptured"].order_id]),
        {"kind": "all", "action": "confirm", "idempotency_key": "k2"},
    ),
    "portal:order_capture (refused)": (
        "get",
        lambda w: reverse("portal:order_capture", args=[w["captured"].order_id]),
        None,
    ),
    "refunds:create": (
        "get",
        lambda w: reverse("refunds:create", args=[w["captured"].order_id]),
        None,
    ),
    "refunds:create (preview of an amount, with the customer's email)": (
        "post",
        lambda w: reverse("refunds:preview", args=[w["captured"].order_id]),
        {"kind": "amount", "amount": "10,00", "idempotency_key": "r1"},
    ),
    "refunds:create (items with a return fee)": (
        "post",
        lambda w: reverse("refunds:create", args=[w["captured"].order_id]),
        {
            "kind": "items_fee",
            "action": "maximum",
            "return_fee": "1,00",
            "idempotency_key": "r2",
        },
    ),
    "refunds:create (refused)": (
        "post",
        lambda w: reverse("refunds:preview", args=[w["captured"].order_id]),
        {"kind": "amount", "amount": "99.999,00", "idempotency_key": "r3"},
    ),
    "refunds:create (malformed)": (
        "post",
        lambda w: reverse("refunds:preview", args=[w["captured"].order_id]),
        {"kind": "amount", "amount": "12.5", "idempotency_key": "r4"},
    ),
}


def _pages(pages):
    return [
        pytest.param(
            name,
            marks=pytest.mark.skip(reason="second pass: translated after merging"),
        )
        if name in SECOND_PASS_PAGES
        else name
        for name in pages
    ]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("page", _pages(MERCHANT_PAGES))
def test_every_merchant_page_reads_in_the_users_language(
    client, merchant, world, language, page
):
    reader = MerchantUserFactory(
        merchant=merchant,
        user=UserFactory(username="reader", first_name="Jonas", last_name="Berger"),
        role=MerchantUser.Role.OWNER,
        language=language,
    )
    client.force_login(reader.user)
    method, url, data = MERCHANT_PAGES[page]

    data = data(world) if callable(data) else data
    response = getattr(client, method)(
        url(world), data, follow=True, headers={"accept-language": "en"}
    )

    assert response.status_code == 200
    assert response["Content-Language"] == language
    html = response.content.decode()
    assert f'<html lang="{language}">' in html
    assert (
        english_left(html, language, SECOND_PASS_CLASSES | OTHER_READERS_CLASSES) == []
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_not_allowed_page_reads_in_the_users_language(client, merchant, language):
    viewer = MerchantUserFactory(
        merchant=merchant, role=MerchantUser.Role.VIEWER, language=language
    )
    client.force_login(viewer.user)

    response = client.get(reverse("portal:user_list"))

    assert response.status_code == 403
    assert english_left(response.content.decode(), language) == []


def _locked_out(client):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = client.post(
            reverse("portal:login"), {"username": "nobody", "password": "wrong"}
        )
    return response


#: Pages before anyone is known: the language comes from the switcher.
LOGIN_PAGES = {
    "portal:login": lambda c: c.get(reverse("portal:login")),
    "portal:login (refused)": lambda c: c.post(
        reverse("portal:login"), {"username": "x", "password": "y"}
    ),
    "portal:password_reset": lambda c: c.get(reverse("portal:password_reset")),
    "portal:password_reset_done": lambda c: c.get(
        reverse("portal:password_reset_done")
    ),
    "portal:password_reset_confirm (expired)": lambda c: c.get(
        reverse("portal:password_reset_confirm", args=["MQ", "set-password"]),
        follow=True,
    ),
    "portal:password_reset_complete": lambda c: c.get(
        reverse("portal:password_reset_complete")
    ),
    "locked out": _locked_out,
}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_the_login_pages_read_in_the_chosen_language(db, client, language, page):
    client.post(reverse("set_language"), {"language": language})

    response = LOGIN_PAGES[page](client)

    assert response["Content-Language"] == language
    assert english_left(response.content.decode(), language) == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_api_reference_page_reads_in_the_chosen_language(db, client, language):
    """Its frame and introduction; each operation's text is the OpenAPI
    document's, in English like the API itself."""
    client.post(reverse("set_language"), {"language": language})

    html = client.get(reverse("api:docs")).content.decode()

    skipped = {"operation", "docs-nav", "docs-section", "muted"}
    assert english_left(html, language, skipped) == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_merchant_user_reads_the_api_reference_in_their_language(
    client, merchant, language
):
    """Linked from the credentials page: the user's portal language, not the
    browser's."""
    reader = MerchantUserFactory(merchant=merchant, language=language)
    client.force_login(reader.user)

    response = client.get(reverse("api:docs"), headers={"accept-language": "en"})

    assert response["Content-Language"] == language
    skipped = {"operation", "docs-nav", "docs-section", "muted"}
    assert english_left(response.content.decode(), language, skipped) == []


def test_the_walk_finds_english_that_is_left():
    """The detector itself: an untranslated sentence on a German page is found,
    German text and data are not."""
    html = (
        "<main><h1>Auszahlungen</h1><p>Nordic Threads · 25,00 €</p>"
        "<p>No payouts yet.</p><button title='Log out'>Abmelden</button></main>"
    )
    assert english_left(html, "de") == ["No payouts yet.", "Log out"]


# Who reads which language -------------------------------------------------------


def test_a_merchant_user_reads_their_stores_language_until_they_choose(
    client, merchant
):
    german = MerchantUserFactory(merchant=merchant, language="")
    client.force_login(german.user)

    page = client.get(reverse("portal:payout_list"), headers={"accept-language": "sv"})

    assert "Auszahlungen" in page.content.decode()
    assert page["Content-Language"] == "de"


def test_the_language_setting_is_saved_per_user(client, merchant):
    first = MerchantUserFactory(merchant=merchant, language="")
    second = MerchantUserFactory(merchant=merchant, language="")
    client.force_login(first.user)

    response = client.post(reverse("portal:language"), {"language": "sv"}, follow=True)

    first.refresh_from_db()
    assert first.language == "sv"
    assert "Ditt språk är sparat." in response.content.decode()
    assert response["Content-Language"] == "sv"
    client.force_login(second.user)
    page = client.get(reverse("portal:payout_list")).content.decode()
    assert '<html lang="de">' in page and "Auszahlungen" in page


def test_the_language_menu_offers_the_stores_language_and_each_language(
    client, merchant
):
    user = MerchantUserFactory(merchant=merchant, language="en")
    client.force_login(user.user)

    page = client.get(reverse("portal:payout_list")).content.decode()
    form = client.get(reverse("portal:language")).content.decode()

    assert reverse("portal:language") in page
    assert "Store language (Deutsch)" in form
    assert all(f'value="{code}"' in form for code in ("en", "de", "sv"))


def test_an_unknown_language_is_refused(client, merchant):
    user = MerchantUserFactory(merchant=merchant, language="en")
    client.force_login(user.user)

    response = client.post(reverse("portal:language"), {"language": "fr"})

    user.refresh_from_db()
    assert response.status_code == 200 and user.language == "en"
    assert response.context["form"].errors["language"]


def test_a_store_in_an_untranslated_language_reads_english(client, db):
    dutch = MerchantFactory(name="Winkel", slug="winkel", country="NL")
    user = MerchantUserFactory(merchant=dutch, language="")
    client.force_login(user.user)

    page = client.get(reverse("portal:payout_list"))

    assert page["Content-Language"] == "en"
    assert "Payouts" in page.content.decode()


def test_an_owner_sets_another_users_language(client, merchant, owner):
    rolf = member(merchant, MerchantUser.Role.REFUNDS, "rolf")
    client.force_login(owner.user)

    client.post(
        reverse("portal:user_edit", args=[rolf.pk]),
        {"role": "refunds", "language": "sv", "is_active": "on"},
    )

    rolf.refresh_from_db()
    assert rolf.language == "sv"
    client.force_login(rolf.user)
    assert client.get(reverse("portal:payout_list"))["Content-Language"] == "sv"


def test_an_invitation_is_written_in_the_new_users_language(client, merchant, owner):
    client.force_login(owner.user)  # reads English

    client.post(
        reverse("portal:user_add"),
        {
            "first_name": "Jonas",
            "email": "jonas@example.com",
            "username": "jonas",
            "role": "viewer",
            "language": "",
        },
    )

    (invitation,) = mail.outbox
    assert invitation.subject == (
        "Sie wurden zum Händlerportal von Nordic Threads eingeladen"
    )
    assert "Hallo Jonas," in invitation.body
    assert english_left(f"<p>{invitation.body}</p>", "de") == []


@pytest.mark.parametrize(
    ("language", "subject"),
    [
        ("sv", "Återställ ditt lösenord till handlarportalen"),
        ("", "Passwort für das Händlerportal zurücksetzen"),
    ],
)
def test_a_password_reset_email_is_in_the_recipients_language(
    client, merchant, language, subject
):
    MerchantUserFactory(
        merchant=merchant,
        user=UserFactory(username="eva", email="eva@example.com"),
        language=language,
    )

    client.post(reverse("portal:password_reset"), {"email": "eva@example.com"})

    (email,) = mail.outbox
    assert email.subject == subject


# The switcher on the login pages -------------------------------------------------


def test_the_login_page_follows_accept_language_before_a_choice(client, db):
    german = client.get(reverse("portal:login"), headers={"accept-language": "de"})
    english = client.get(reverse("portal:login"))

    assert "Anmelden" in german.content.decode()
    assert german["Content-Language"] == "de"
    assert "Log in" in english.content.decode()


def test_the_language_switcher_is_a_post_form_that_works_without_javascript(client, db):
    login = reverse("portal:login")
    page = client.get(login).content.decode()
    switcher = page[page.index('<form class="language-switcher"') :]
    switcher = switcher[: switcher.index("</form>")]

    chosen = client.post(
        reverse("set_language"),
        {"language": "sv", "next": login},
        headers={"accept-language": "de"},
    )
    again = client.get(login, headers={"accept-language": "de"})

    assert 'method="post"' in switcher
    assert f'action="{reverse("set_language")}"' in switcher
    assert 'name="csrfmiddlewaretoken"' in switcher
    for code, name in (("en", "English"), ("de", "Deutsch"), ("sv", "Svenska")):
        assert f'name="language" value="{code}"' in switcher and name in switcher
    assert chosen.status_code == 302 and chosen["Location"] == login
    assert "Logga in" in again.content.decode()
    assert again["Content-Language"] == "sv"


def test_the_customer_login_pages_carry_the_switcher(client, db):
    for name in ("customers:login",):
        page = client.get(reverse(name)).content.decode()
        assert 'class="language-switcher"' in page
        assert f'action="{reverse("set_language")}"' in page


def test_a_logged_in_merchant_user_reads_their_language_not_the_switchers(
    client, merchant
):
    user = MerchantUserFactory(merchant=merchant, language="de")
    client.post(reverse("set_language"), {"language": "sv"})
    client.force_login(user.user)

    page = client.get(reverse("portal:payout_list"))

    assert page["Content-Language"] == "de"


# Refusals: in the reader's language on pages, in English in the API ------------


def test_a_refusal_from_the_refund_engine_is_in_the_active_language(
    captured_order, staff_user
):
    with translation.override("de"), pytest.raises(RefundNotAllowed) as german:
        captured_order.refund_amount(10**6, by=staff_user)
    with translation.override("sv"), pytest.raises(RefundNotAllowed) as swedish:
        captured_order.refund_amount(10**6, by=staff_user)

    assert german.value.message == (
        "Eine Übererstattung ist nicht erlaubt: Höchstens 400,00\xa0€ können "
        "erstattet werden."
    )
    assert swedish.value.message.startswith("Överåterbetalning är inte tillåten")


def test_the_api_answers_in_english_whatever_the_browser_asks(
    merchant, merchant_user, captured_order
):
    credential, secret = ApiCredential.issue(merchant, "ERP", by=merchant_user.user)
    api = ApiClient(basic(credential.username, secret))

    refused = api.post_json(
        om(captured_order, "refunds"),
        {"refunded_amount": 10**6},
        headers={"Accept-Language": "de"},
    )
    missing = api.get(
        "/ordermanagement/v1/orders/nope", headers={"Accept-Language": "sv"}
    )

    assert refused.status_code == 403
    assert refused.json()["error_code"] == "REFUND_NOT_ALLOWED"
    assert refused.json()["error_messages"][0].startswith(
        "Over refund is not allowed: at most"
    )
    assert refused["Content-Language"] == "en"
    assert missing.json()["error_code"] == "NO_SUCH_ORDER"
    assert missing["Content-Language"] == "en"


@pytest.mark.parametrize(
    ("language", "month", "settled"),
    [("de", 3, "5. Mär 2026"), ("sv", 10, "5 okt 2026")],
)
def test_dates_on_a_page_follow_the_language(
    client, merchant, world, language, month, settled
):
    Payout.objects.filter(pk=world["payout"].pk).update(
        created_at=datetime(2026, month, 5, 9, 30, tzinfo=UTC)
    )
    user = MerchantUserFactory(merchant=merchant, language=language)
    client.force_login(user.user)

    page = client.get(reverse("portal:payout_list")).content.decode()

    assert settled in page


def test_a_capture_and_its_timeline_read_in_the_users_language(
    client, merchant, make_order
):
    """The capture form's error and confirmation and the order page's timeline
    and payments count are written in the reader's language, money in the
    order's."""
    order = make_order(lines=[line("HOSE-1", 8000, 2, name="Wollhose")])
    user = MerchantUserFactory(merchant=merchant, language="de")
    client.force_login(user.user)
    url = reverse("portal:order_capture", args=[order.order_id])

    refused = client.post(url, {"kind": "lines", "action": "review"})
    captured = client.post(
        url, {"kind": "all", "action": "confirm", "idempotency_key": "k"}, follow=True
    )

    assert "Geben Sie für mindestens eine Position eine Menge ein." in (
        refused.content.decode()
    )
    page = captured.content.decode()
    assert "160,00\xa0€ erfasst (Rechnung 1)." in page  # the message
    assert "160,00\xa0€ erfasst (Rechnung 1)</div>" in page  # the timeline
    assert "Bestellung aufgegeben" in page
    assert "In 4 Raten bezahlen · 4 Raten" in page
