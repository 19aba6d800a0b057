"""Money helpers: exact largest-remainder splitting, display in the order's locale,
and parsing what people type."""

from itertools import pairwise
from types import SimpleNamespace

import pytest
from django.template import Context, Template
from hypothesis import given
from hypothesis import strategies as st

from portal.money import (
    MAX_AMOUNT,
    allocate,
    format_money,
    parse_amount,
    parse_quantity,
    split_evenly,
    to_major_string,
    unit_range_amount,
)

amounts = st.integers(min_value=-MAX_AMOUNT, max_value=MAX_AMOUNT)
non_negative_amounts = st.integers(min_value=0, max_value=MAX_AMOUNT)
part_counts = st.integers(min_value=1, max_value=60)


def spaces(text: str) -> str:
    """babel separates with no-break spaces; compare them as plain spaces."""
    return text.replace("\xa0", " ").replace("\u202f", " ")


# split_evenly --------------------------------------------------------------------


@given(total=amounts, parts=part_counts)
def test_split_evenly_parts_always_sum_to_the_whole(total, parts):
    split = split_evenly(total, parts)
    assert len(split) == parts
    assert sum(split) == total


@given(total=amounts, parts=part_counts)
def test_split_evenly_parts_differ_by_at_most_one_minor_unit(total, parts):
    split = split_evenly(total, parts)
    assert max(split) - min(split) <= 1


@given(total=non_negative_amounts, parts=part_counts)
def test_split_evenly_gives_the_leftover_units_to_the_earliest_parts(total, parts):
    split = split_evenly(total, parts)
    assert split == sorted(split, reverse=True)
    assert split.count(total // parts + 1) == total % parts


@given(total=non_negative_amounts, parts=part_counts)
def test_split_evenly_of_a_negative_total_mirrors_the_positive_one(total, parts):
    assert split_evenly(-total, parts) == [-p for p in split_evenly(total, parts)]


def test_split_evenly_examples_from_the_domain_rules():
    assert split_evenly(1000, 3) == [334, 333, 333]
    assert split_evenly(40000, 4) == [10000, 10000, 10000, 10000]
    assert split_evenly(2, 4) == [1, 1, 0, 0]


def test_split_evenly_refuses_zero_parts():
    with pytest.raises(ValueError, match="parts must be positive"):
        split_evenly(100, 0)


# allocate ------------------------------------------------------------------------

weight_lists = st.lists(
    st.integers(min_value=0, max_value=10**6), min_size=1, max_size=20
)


@given(total=amounts, weights=weight_lists)
def test_allocate_parts_always_sum_to_the_whole(total, weights):
    parts = allocate(total, weights)
    assert len(parts) == len(weights)
    assert sum(parts) == total


@given(total=non_negative_amounts, weights=weight_lists)
def test_allocate_parts_are_within_one_minor_unit_of_their_exact_share(total, weights):
    weight_sum = sum(weights)
    parts = allocate(total, weights)
    for part, weight in zip(parts, weights, strict=True):
        exact_times_sum = total * weight if weight_sum else total
        denominator = weight_sum or len(weights)
        # |part − exact| < 1, in integers: |part·W − total·w| < W.
        assert abs(part * denominator - exact_times_sum) < denominator


@given(total=non_negative_amounts, parts=part_counts)
def test_allocate_with_equal_weights_is_an_even_split(total, parts):
    assert allocate(total, [7] * parts) == split_evenly(total, parts)


def test_allocate_gives_ties_to_the_earliest_parts():
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(1, [1, 1]) == [1, 0]
    assert allocate(10, [0, 0]) == [5, 5]
    assert allocate(10, [3, 0, 1]) == [8, 0, 2]


def test_allocate_refuses_empty_or_negative_weights():
    with pytest.raises(ValueError, match="must not be empty"):
        allocate(100, [])
    with pytest.raises(ValueError, match="must not be negative"):
        allocate(100, [1, -1])


# unit_range_amount ---------------------------------------------------------------


@st.composite
def line_cuts(draw):
    """A line (total, quantity) and its units cut into consecutive ranges, as
    captures and refunds take them."""
    quantity = draw(st.integers(min_value=1, max_value=50))
    total = draw(st.integers(min_value=-MAX_AMOUNT, max_value=MAX_AMOUNT))
    cuts = (
        sorted(draw(st.sets(st.integers(min_value=1, max_value=quantity - 1))))
        if quantity > 1
        else []
    )
    bounds = [0, *cuts, quantity]
    ranges = [(a, b - a) for a, b in pairwise(bounds)]
    return total, quantity, ranges


@given(cut=line_cuts())
def test_unit_ranges_of_a_line_always_sum_to_the_line_total(cut):
    total, quantity, ranges = cut
    assert sum(unit_range_amount(total, quantity, s, n) for s, n in ranges) == total


@given(total=amounts, quantity=st.integers(min_value=1, max_value=50))
def test_units_of_a_line_differ_by_at_most_one_minor_unit(total, quantity):
    units = [unit_range_amount(total, quantity, i, 1) for i in range(quantity)]
    assert max(units) - min(units) <= 1
    assert units == split_evenly(total, quantity)


def test_the_leftover_units_of_a_line_go_to_its_earliest_units():
    # 100.00 for three units: 33.34, 33.33, 33.33.
    assert unit_range_amount(10000, 3, 0, 1) == 3334
    assert unit_range_amount(10000, 3, 1, 2) == 6666
    assert unit_range_amount(10000, 3, 0, 0) == 0


# Display -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "locale", "expected"),
    [
        ("EUR", "de_DE", "1.234,50 €"),
        ("USD", "en_US", "$1,234.50"),
        ("SEK", "sv_SE", "1 234,50 kr"),
    ],
)
def test_money_is_shown_in_the_orders_currency_and_locale(currency, locale, expected):
    assert spaces(format_money(123450, currency, locale)) == expected


@pytest.mark.parametrize(
    ("currency", "locale", "expected"),
    [
        ("EUR", "de_DE", "1.234,50 €"),
        ("USD", "en_US", "$1,234.50"),
        ("SEK", "sv_SE", "1 234,50 kr"),
    ],
)
def test_the_money_template_filter_formats_like_format_money(
    currency, locale, expected
):
    order = SimpleNamespace(purchase_currency=currency, locale=locale)
    rendered = Template("{{ amount|money:order }}").render(
        Context({"amount": 123450, "order": order})
    )
    assert spaces(rendered) == expected


def test_the_major_template_filter_gives_an_editable_amount():
    order = SimpleNamespace(purchase_currency="SEK", locale="sv_SE")
    rendered = Template("{{ amount|major:order }}").render(
        Context({"amount": 123450, "order": order})
    )
    assert rendered == "1234,50"  # as sv_SE writes it, and parse_amount reads it


def test_money_filter_renders_nothing_for_a_missing_amount():
    order = SimpleNamespace(purchase_currency="EUR", locale="de_DE")
    assert Template("{{ None|money:order }}").render(Context({"order": order})) == ""


def test_money_without_minor_units_has_no_decimals():
    assert format_money(1234, "JPY", "en_US") == "¥1,234"


def test_negative_amounts_and_unknown_locales_are_still_shown():
    assert spaces(format_money(-500, "EUR", "de_DE")) == "-5,00 €"
    assert format_money(5, "EUR", "xx_YY") == "€0.05"
    assert format_money(None, "EUR", "de_DE") == ""


# Parsing what people type --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "currency", "locale", "minor_units"),
    [
        ("12.50", "EUR", "en_US", 1250),
        ("12,50", "EUR", "de_DE", 1250),
        ("12", "USD", "en_US", 1200),
        (" 12.5 ", "USD", "en_US", 1250),
        (".05", "USD", "en_US", 5),
        ("1 234,50", "SEK", "sv_SE", 123450),
        ("1\xa0234,50", "SEK", "sv_SE", 123450),
        ("1234,50 kr", "SEK", "sv_SE", 123450),
        ("0", "EUR", "de_DE", 0),
        ("1234", "JPY", "ja_JP", 1234),
        ("1.000,50", "EUR", "de_DE", 100050),
        ("1.000", "EUR", "de_DE", 100000),
        ("1,000.50", "USD", "en_US", 100050),
        # Issue 10, case 7: a leading currency symbol, any script's digits.
        ("$12.50", "USD", "en_US", 1250),
        ("12,50 €", "EUR", "de_DE", 1250),
        ("\u0663", "EUR", "de_DE", 300),
        ("2.000.000,00 €", "EUR", "de_DE", 200_000_000),
        ("1,000.000", "KWD", "en_US", 1_000_000),
    ],
)
def test_parse_amount_reads_what_people_type_in_the_order_locale(
    text, currency, locale, minor_units
):
    assert parse_amount(text, currency, locale) == minor_units


@pytest.mark.parametrize(
    ("text", "currency", "locale", "message"),
    [
        ("", "EUR", "de_DE", "Enter an amount."),
        ("   ", "EUR", "de_DE", "Enter an amount."),
        ("abc", "EUR", "de_DE", "Enter a number, like 1.234,56."),
        ("-5", "EUR", "de_DE", "Enter a positive amount."),
        ("1.2.3", "EUR", "de_DE", "Enter a number, like 1.234,56."),
        ("12,345", "EUR", "de_DE", "Use at most 2 decimals."),
        ("12.5", "JPY", "en_US", "Enter whole amounts only."),
        (".", "EUR", "en_US", "Enter a number, like 1,234.56."),
        # Issue 10, case 7: read by the locale, not guessed.
        ("12,50", "USD", "en_US", "Enter a number, like 1,234.56."),
        ("12.50", "EUR", "de_DE", "Enter a number, like 1.234,56."),
        (
            "1,000",
            "KWD",
            "en_US",
            "“1,000” could mean 1000 or 1.000: write it without “,” "
            "(amounts here are written like 1,234.567).",
        ),
        ("99999999999", "EUR", "de_DE", "Enter at most 2.000.000,00\xa0€."),
    ],
)
def test_parse_amount_refuses_anything_else_with_a_readable_message(
    text, currency, locale, message
):
    with pytest.raises(ValueError) as refused:
        parse_amount(text, currency, locale)
    assert str(refused.value) == message


@pytest.mark.parametrize("text", ["\u0663", "3", " 3 "])
def test_parse_quantity_reads_the_same_digits_as_amounts(text):
    assert parse_quantity(text) == 3


@pytest.mark.parametrize("text", ["1.5", "+1", "-1", "", "1e3", "x"])
def test_parse_quantity_refuses_anything_but_a_whole_number(text):
    with pytest.raises(ValueError, match="Enter a whole number"):
        parse_quantity(text)


@given(
    amount=non_negative_amounts,
    currency=st.sampled_from(["EUR", "USD", "SEK", "JPY", "KWD"]),
    locale=st.sampled_from(["en_US", "de_DE", "sv_SE"]),
)
def test_parse_amount_reads_back_every_amount_shown_for_editing(
    amount, currency, locale
):
    shown = to_major_string(amount, currency, locale)
    assert parse_amount(shown, currency, locale) == amount


#: Locales and currencies money is written in, with ones whose patterns differ
#: (symbol first or last, a minus after the symbol, lakh groups, no decimals,
#: three decimals, right-to-left marks, an unknown locale).
WRITTEN = [
    ("EUR", "de_DE"),
    ("EUR", "en_DE"),
    ("USD", "en_US"),
    ("SEK", "sv_SE"),
    ("CHF", "de_CH"),
    ("EUR", "de_AT"),
    ("EUR", "nl_NL"),
    ("EUR", "fr_FR"),
    ("INR", "en_IN"),
    ("JPY", "ja_JP"),
    ("KWD", "ar_KW"),
    ("ISK", "is_IS"),
    ("USD", "xx_YY"),
]


@pytest.mark.parametrize(("currency", "locale"), WRITTEN)
@given(amount=st.integers(min_value=-(10**15), max_value=10**15))
def test_money_is_written_exactly_as_babel_writes_it(currency, locale, amount):
    from decimal import Decimal

    from babel.numbers import format_currency, get_currency_precision

    babel_locale = "en_US" if locale == "xx_YY" else locale
    value = Decimal(amount).scaleb(-get_currency_precision(currency))
    assert format_money(amount, currency, locale) == format_currency(
        value, currency, locale=babel_locale
    )


def test_regression_amounts_are_written_as_the_pages_show_them():
    assert format_money(-59, "EUR", "de_DE") == "-0,59\xa0€"
    assert format_money(123456789, "SEK", "sv_SE") == "1\xa0234\xa0567,89\xa0kr"
    assert format_money(100, "USD", "en_US") == "$1.00"
    assert format_money(1234567, "INR", "en_IN") == "₹12,345.67"
    assert format_money(123456789, "INR", "en_IN") == "₹12,34,567.89"
