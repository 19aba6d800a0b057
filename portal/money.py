"""Money: integers in minor units, exact splitting, display in the order's locale.

Every amount in this project is an ``int`` of minor units (cents, öre) with the
currency kept on the order. Nothing here, or anywhere, stores a float or Decimal;
Decimal appears only at the last moment, to hand babel a number to format.
"""

import functools
from collections.abc import Sequence
from decimal import Decimal

from babel.core import Locale, UnknownLocaleError
from babel.numbers import format_currency, get_currency_precision

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
    # Memoized: babel takes ~20 µs a call and a 500-line order page makes a thousand.
    try:
        Locale.parse(locale.replace("-", "_"))
        babel_locale = locale.replace("-", "_")
    except (UnknownLocaleError, ValueError):
        babel_locale = "en_US"
    value = Decimal(amount).scaleb(-currency_digits(currency))
    return format_currency(value, currency, locale=babel_locale)


def parse_amount(text: str, currency: str) -> int:
    """Parse a major-unit amount typed by a person ("12.50", "12,50") into minor units.

    Raises ValueError for anything that is not a plain non-negative number with at
    most the currency's number of decimals.
    """
    cleaned = text.strip().replace("\u00a0", "").replace(" ", "")
    if not cleaned:
        raise ValueError("Enter an amount.")
    if cleaned.startswith("-"):
        raise ValueError("Enter a positive amount.")
    if "," in cleaned and "." in cleaned:
        # Both separators: the last one is the decimal point ("1.000,50", "1,000.50").
        decimal = "," if cleaned.rfind(",") > cleaned.rfind(".") else "."
        cleaned = cleaned.replace("." if decimal == "," else ",", "").replace(",", ".")
    elif cleaned.count(",") == 1:
        cleaned = cleaned.replace(",", ".")
    digits = currency_digits(currency)
    whole, _, fraction = cleaned.partition(".")
    if not whole.isdigit() and whole != "":
        raise ValueError("Enter a number, like 12.50 or 12,50.")
    if fraction and not fraction.isdigit():
        raise ValueError("Enter a number, like 12.50 or 12,50.")
    if len(fraction) > digits:
        raise ValueError(f"Use at most {digits} decimals.")
    if not whole and not fraction:
        raise ValueError("Enter a number, like 12.50 or 12,50.")
    return int(whole or "0") * 10**digits + int((fraction or "0").ljust(digits, "0"))


def to_major_string(amount: int, currency: str) -> str:
    """Minor units as a plain editable string: 1250 EUR -> "12.50"."""
    digits = currency_digits(currency)
    if digits == 0:
        return str(amount)
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**digits)
    return f"{sign}{whole}.{fraction:0{digits}d}"
