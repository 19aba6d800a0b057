"""Which language a customer reads (issue 15; docs: /work/notes/i18n.md).

A customer reads the language of their order's locale: an order placed with
locale "de_DE" is told about in German, "sv_SE" in Swedish, anything else in
English (the languages in ``settings.LANGUAGES``). Our rule for pages and
messages that belong to no single order (the order list, the balance, the
notifications, the login code email): the locale of the customer's most recent
order, or the customer's own ``locale`` when they have no order yet.

Dates in messages follow the language (``day``); money stays formatted in the
order's locale by ``portal.money`` (DOMAIN.md, "Money").
"""

import functools
from datetime import date

from django.conf import settings
from django.utils import formats, translation

#: English day format kept from before translations ("1 Dec 2026").
ENGLISH_DAY = "j M Y"


def language_for_locale(locale: str | None) -> str:
    """The language code ("en", "de", "sv") for a locale like "de_DE" or
    "sv-SE"; "en" for a locale whose language is not offered."""
    code = (locale or "").replace("-", "_").split("_")[0].lower()
    offered = {lang for lang, _name in settings.LANGUAGES}
    return code if code in offered else settings.LANGUAGE_CODE


def order_language(order) -> str:
    """The language everything about ``order`` is written in for its customer."""
    return language_for_locale(order.locale)


def customer_language(customer) -> str:
    """The language of pages and messages about no single order (one query):
    the customer's most recent order's locale, else the customer's locale."""
    from portal.models import Order

    locale = (
        Order.objects.filter(customer=customer)
        .order_by("-created_at", "-pk")
        .values_list("locale", flat=True)
        .first()
    )
    return language_for_locale(locale or customer.locale)


def activate_for(request, language: str) -> None:
    """Show the rest of this request in ``language`` (the customer's, not
    Accept-Language's); ``LocaleMiddleware`` sets Content-Language from it."""
    translation.activate(language)
    request.LANGUAGE_CODE = language


def day(value: date) -> str:
    """A date for a sentence in the active language: "1 Dec 2026",
    "1. Dezember 2026", "1 december 2026"."""
    return _day(translation.get_language(), value)


@functools.lru_cache(maxsize=4096)
def _day(language: str | None, value: date) -> str:
    # Written once per language and date: a plan's due dates repeat across its
    # messages, previews and pages, and Django's date formatting costs about
    # 50 µs a date (issue 16). ``language`` is the active one (the key).
    if language in (None, "en"):
        return formats.date_format(value, ENGLISH_DAY)
    return formats.date_format(value, "DATE_FORMAT")
