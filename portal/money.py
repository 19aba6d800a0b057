"""Money: integers in minor units, exact splitting, display in the order's locale.

Every amount in this project is an ``int`` of minor units (cents, öre) with the
currency kept on the order. Nothing here, or anywhere, stores a float or Decimal;
Decimal appears only at the last moment, to hand babel a number to format.
"""

import functools
import re
import unicodedata
from collections.abc import Sequence
from decimal import Decimal

from babel.core import Locale, UnknownLocaleError
from babel.numbers import (
    format_currency,
    get_currency_precision,
    get_currency_symbol,
    get_decimal_symbol,
    get_group_symbol,
)
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

#: DOMAIN.md: one amount is at most 200,000,000 minor units.
MAX_AMOUNT = 200_000_000


def split_evenly(total: int, parts: int) -> list[int]:
    """Split ``total`` into ``parts`` amounts that differ by at most one unit.

    Largest remainder: the leftover minor units go to the earliest parts, so
    ``split_evenly(1000, 3) == [334, 333, 333]``. The parts always sum to ``total``;
    a negative total splits like its absolute value, negated.
    """
    if parts <= 0:
        raise ValueError("parts must be positive")
    if total < 0:
        return [-p for p in split_evenly(-total, parts)]
    base, leftover = divmod(total, parts)
    return [base + 1 if i < leftover else base for i in range(parts)]


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` in proportion to non-negative integer ``weights``.

    Largest-remainder method: each part gets the floor of its exact share, and the
    units still missing go to the parts with the largest remainders, earliest first
    on ties. The parts sum exactly to ``total``. All-zero weights split evenly.
    """
    if not weights:
        raise ValueError("weights must not be empty")
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    if total < 0:
        return [-p for p in allocate(-total, weights)]
    weight_sum = sum(weights)
    if weight_sum == 0:
        return split_evenly(total, len(weights))
    shares = [divmod(total * w, weight_sum) for w in weights]
    parts = [q for q, _ in shares]
    missing = total - sum(parts)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-shares[i][1], i))
    for i in by_remainder[:missing]:
        parts[i] += 1
    return parts


def unit_range_amount(total: int, quantity: int, start: int, count: int) -> int:
    """Amount of units ``start .. start+count-1`` of a line of ``quantity`` units.

    A line's ``total`` is split over its units with :func:`split_evenly`, so unit
    ``i`` costs ``base + 1`` for ``i < leftover`` and ``base`` after. Captures and
    refunds take units in order; summing ranges this way means the units of a line,
    however many captures and refunds cut it, always add up to the line total.
    """
    if quantity <= 0 or count <= 0:
        return 0
    if total < 0:
        return -unit_range_amount(-total, quantity, start, count)
    base, leftover = divmod(total, quantity)

    def prefix(n: int) -> int:
        return n * base + min(n, leftover)

    return prefix(start + count) - prefix(start)


def proportion(total: int, part: int, whole: int) -> int:
    """``total × part / whole`` rounded half away from zero, in minor units.

    Used cumulatively (the share of the first ``part`` of ``whole``), so that the
    shares of successive parts telescope: when ``part`` reaches ``whole`` the sum
    is exactly ``total``. Raises ZeroDivisionError when ``whole`` is 0.
    """
    numerator = total * part
    sign = -1 if (numerator < 0) != (whole < 0) else 1
    numerator, whole = abs(numerator), abs(whole)
    return sign * ((2 * numerator + whole) // (2 * whole))


def basis_points(amount: int, rate_bp: int) -> int:
    """``amount × rate_bp / 10000`` rounded half away from zero, in minor units."""
    sign = -1 if amount < 0 else 1
    return sign * ((abs(amount) * rate_bp + 5000) // 10000)


def currency_digits(currency: str) -> int:
    return get_currency_precision(currency)


def format_money(amount: int | None, currency: str, locale: str = "en_US") -> str:
    """``1.234,50 €`` for de_DE, ``$1,234.50`` for en_US, ``1 234,50 kr`` for sv_SE."""
    if amount is None:
        return ""
    return _format_money(amount, currency, locale)


@functools.lru_cache(maxsize=65536)
def _format_money(amount: int, currency: str, locale: str) -> str:
    # Memoized: a page shows the same amounts many times.
    writer = _money_writer(currency, locale)
    return writer(amount)


@functools.lru_cache(maxsize=1024)
def _money_writer(currency: str, locale: str):
    """A function writing minor units of ``currency`` in ``locale`` exactly as
    babel's ``format_currency`` does (an unknown locale as en_US).

    babel takes about 40 µs an amount: most of a refund preview's amounts were
    new to the memo above, 0.3 ms a preview (issue 16). The locale's pattern is
    read off babel's own output once: the text before and after the number,
    the group and the decimal separator, for positive and negative amounts. It
    is used only where it then writes a set of test amounts (a 4-digit group,
    a lakh, a minus, zero) exactly as babel does; elsewhere babel writes every
    amount."""
    try:
        Locale.parse(locale.replace("-", "_"))
        babel_locale = locale.replace("-", "_")
    except (UnknownLocaleError, ValueError):
        babel_locale = "en_US"
    digits = currency_digits(currency)

    def babel(amount: int) -> str:
        value = Decimal(amount).scaleb(-digits)
        return format_currency(value, currency, locale=babel_locale)

    fast = _pattern_writer(babel, digits)
    return fast if fast is not None else babel


#: Amounts (in minor units, before the currency's digits) a pattern writer must
#: write as babel does before it is used.
_WRITER_CHECKS = (
    0,
    1,
    9,
    10,
    99,
    100,
    1234,
    12345,
    99999,
    123456,
    1000000,
    1234567,
    12345678,
    123456789,
    200000000,
    10**15,
)


def _pattern_writer(babel, digits: int):
    """A writer following babel's output for a probe amount, or None when the
    output is not "prefix, groups of three, decimals, suffix" or the writer
    differs from babel on ``_WRITER_CHECKS`` (either sign)."""
    fraction = "".join(str((8 + i) % 10) for i in range(digits))  # "89"
    probe = int("1234567" + fraction)
    decimals = rf"(\D+){fraction}" if digits else "()"
    shape = re.compile(rf"^(\D*)1(?P<group>\D+)234(?P=group)567{decimals}(\D*)$")
    positive, negative = shape.match(babel(probe)), shape.match(babel(-probe))
    if positive is None or negative is None:
        return None
    prefix, group, decimal, suffix = positive.groups()
    minus_prefix, minus_group, minus_decimal, minus_suffix = negative.groups()
    if (minus_group, minus_decimal) != (group, decimal):
        return None
    scale = 10**digits

    def write(amount: int) -> str:
        major, minor = divmod(-amount if amount < 0 else amount, scale)
        number = f"{major:,}".replace(",", group)
        if digits:
            number = f"{number}{decimal}{minor:0{digits}d}"
        if amount < 0:
            return f"{minus_prefix}{number}{minus_suffix}"
        return f"{prefix}{number}{suffix}"

    for amount in _WRITER_CHECKS:
        for signed in (amount, -amount):
            if write(signed) != babel(signed):
                return None
    return write


_SPACES = "\u00a0\u202f\u2009\u2007 \t"


def _ascii_digits(text: str) -> str:
    """Any Unicode decimal digit (Arabic-Indic, Devanagari, fullwidth...) as ASCII."""
    return "".join(
        str(unicodedata.decimal(ch)) if ch.isdecimal() and not ch.isascii() else ch
        for ch in text
    )


def _babel_locale(locale: str) -> str:
    try:
        Locale.parse(locale.replace("-", "_"))
        return locale.replace("-", "_")
    except (UnknownLocaleError, ValueError):
        return "en_US"


def amount_format_example(currency: str, locale: str) -> str:
    """How an amount is written in ``locale``: ``1.234,50`` (de_DE), ``1,234.567``
    (KWD in en_US), ``1 234`` (JPY-like currencies in sv_SE)."""
    babel_locale = _babel_locale(locale)
    group = get_group_symbol(babel_locale).replace("\u00a0", " ").replace("\u202f", " ")
    digits = currency_digits(currency)
    example = f"1{group}234"
    if digits:
        example += get_decimal_symbol(babel_locale) + "5678"[:digits]
    return example


def amount_input_text(amount: int, currency: str, locale: str = "en_US") -> str:
    """``amount`` (minor units, >= 0) as a person types it in ``locale``, without
    group symbols or currency: ``239,00`` (de_DE), ``239.00`` (en_US). What
    ``parse_amount`` reads back to the same ``amount`` (our rule: a filled-in
    field, e.g. "Refund maximum", holds text the merchant could have typed)."""
    digits = currency_digits(currency)
    whole, fraction = divmod(amount, 10**digits)
    if not digits:
        return str(whole)
    decimal = get_decimal_symbol(_babel_locale(locale))
    return f"{whole}{decimal}{fraction:0{digits}d}"


def parse_amount(text: str, currency: str, locale: str = "en_US") -> int:
    """Read a major-unit amount typed by a person into minor units, by ``locale``.

    The locale's group and decimal symbols are read as that locale writes them
    (``1.234,50`` in de_DE, ``1,234.50`` in en_US, ``1 234,50`` in sv_SE); a
    leading or trailing currency symbol or code of ``currency`` is accepted, and
    so are digits of any script. Raises ValueError, with a message for people,
    for anything else: a sign, misplaced group symbols, more decimals than the
    currency has, more than ``MAX_AMOUNT``, and input that two readings make
    different amounts of (``1,000`` for a 3-decimal currency in en_US). Our rule.
    """
    babel_locale = _babel_locale(locale)
    decimal = get_decimal_symbol(babel_locale)
    group = get_group_symbol(babel_locale)
    digits = currency_digits(currency)
    example = amount_format_example(currency, locale)
    cleaned = _ascii_digits(text.strip())
    for symbol in sorted(
        {
            currency,
            get_currency_symbol(currency, babel_locale),
            get_currency_symbol(currency, "en_US"),
        },
        key=len,
        reverse=True,
    ):
        if cleaned.startswith(symbol):
            cleaned = cleaned[len(symbol) :]
            break
        if cleaned.endswith(symbol):
            cleaned = cleaned[: -len(symbol)]
            break
    if group in _SPACES:
        group = " "
    cleaned = cleaned.strip(_SPACES)
    if not cleaned:
        raise ValueError(_("Enter an amount."))
    if cleaned[0] in "-−":
        raise ValueError(_("Enter a positive amount."))
    if group != " " and any(ch in _SPACES for ch in cleaned):
        raise ValueError(_("Enter a number, like %(example)s.") % {"example": example})
    if group == " ":
        cleaned = "".join(" " if ch in _SPACES else ch for ch in cleaned)
    allowed = set("0123456789") | {decimal, group}
    if any(ch not in allowed for ch in cleaned) or cleaned.count(decimal) > 1:
        raise ValueError(_("Enter a number, like %(example)s.") % {"example": example})
    whole, _sep, fraction = cleaned.partition(decimal)
    if group in fraction:
        raise ValueError(_("Enter a number, like %(example)s.") % {"example": example})
    if group in whole:
        groups = whole.split(group)
        if not (1 <= len(groups[0]) <= 3) or any(len(g) != 3 for g in groups[1:]):
            raise ValueError(
                _("Enter a number, like %(example)s.") % {"example": example}
            )
        if (
            decimal not in cleaned
            and group in ",."
            and len(groups) == 2
            and len(groups[1]) <= digits
        ):
            raise ValueError(
                _(
                    "“%(text)s” could mean %(whole)s or %(decimal)s: write it "
                    "without “%(group)s” (amounts here are written like %(example)s)."
                )
                % {
                    "text": text.strip(),
                    "whole": "".join(groups),
                    "decimal": f"{groups[0]}{decimal}{groups[1]}",
                    "group": group,
                    "example": example,
                }
            )
        whole = "".join(groups)
    if not whole and not fraction:
        raise ValueError(_("Enter a number, like %(example)s.") % {"example": example})
    if len(fraction) > digits:
        raise ValueError(
            ngettext(
                "Use at most %(digits)d decimal.",
                "Use at most %(digits)d decimals.",
                digits,
            )
            % {"digits": digits}
            if digits
            else _("Enter whole amounts only.")
        )
    amount = int(whole or "0") * 10**digits + int((fraction or "0").ljust(digits, "0"))
    if amount > MAX_AMOUNT:
        limit = format_money(MAX_AMOUNT, currency, locale)
        raise ValueError(_("Enter at most %(limit)s.") % {"limit": limit})
    return amount


def parse_quantity(text: str) -> int:
    """A whole, non-negative quantity typed by a person, in digits of any script.

    Raises ValueError ("Enter a whole number, like 2.") for signs, decimals and
    anything else. Our rule: the same digits as ``parse_amount`` accepts.
    """
    cleaned = _ascii_digits(text.strip())
    if not cleaned.isascii() or not cleaned.isdigit():
        raise ValueError(_("Enter a whole number, like 2."))
    return int(cleaned)


def to_major_string(amount: int, currency: str, locale: str | None = None) -> str:
    """Minor units as a plain editable string, without group symbols: 1250 EUR ->
    "12.50", or "12,50" with ``locale="de_DE"`` (what ``parse_amount`` reads back)."""
    digits = currency_digits(currency)
    if digits == 0:
        return str(amount)
    point = get_decimal_symbol(_babel_locale(locale)) if locale else "."
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**digits)
    return f"{sign}{whole}{point}{fraction:0{digits}d}"
