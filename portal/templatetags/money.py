"""``{{ amount|money:order }}``: an amount in the currency and locale of its order.

The argument is anything with ``purchase_currency`` and ``locale`` (an order), or
anything with ``currency``/``locale`` attributes (a merchant, a customer's view).
Installed as a template builtin, so no ``{% load %}`` is needed.
"""

from django import template

from portal.money import format_money, to_major_string

register = template.Library()


def _currency_and_locale(context) -> tuple[str, str]:
    currency = getattr(context, "purchase_currency", None) or getattr(
        context, "currency", "USD"
    )
    return currency, getattr(context, "locale", None) or "en_US"


@register.filter
def money(amount, context) -> str:
    if amount is None or amount == "":
        return ""
    currency, locale = _currency_and_locale(context)
    return format_money(int(amount), currency, locale)


@register.filter
def major(amount, context) -> str:
    """An amount as an editable decimal string in its order's currency ("12.50", "12,50" in de_DE)."""
    if amount is None or amount == "":
        return ""
    currency, locale = _currency_and_locale(context)
    return to_major_string(int(amount), currency, locale)
