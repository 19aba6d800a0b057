"""``{% load translations %}`` is Django's i18n library with a literal ``{% translate %}``
rendered once per language (``portal.templatetags.translations``, issue 16)."""

import pytest
from django.template import engines
from django.templatetags.i18n import TranslateNode
from django.utils import translation

from portal.templatetags.translations import TranslateOnceNode

SOURCE = (
    "{% load translations %}"
    '{% translate "Orders" %}|{% translate "Main" context "navigation" %}|'
    '{% translate "Customer\'s invoices" %}|{% translate text %}|'
    '{% translate "Orders"|upper %}|{% translate "Log out" as out %}{{ out }}'
)


@pytest.fixture
def template(settings):
    settings.DEBUG = False
    return engines["django"].from_string(SOURCE)


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "Orders|Main|Customer's invoices|Payouts|ORDERS|Log out"),
        (
            "de",
            "Bestellungen|Hauptnavigation|Rechnungen des Kunden|Auszahlungen|"
            "BESTELLUNGEN|Abmelden",
        ),
        (
            "sv",
            "Beställningar|Huvudmeny|Kundens fakturor|Utbetalningar|"
            "BESTÄLLNINGAR|Logga ut",
        ),
    ],
)
def test_each_language_reads_its_own_translation_every_time(
    template, language, expected
):
    for first_language in ("sv", "en", "de"):  # whichever language came first
        with translation.override(first_language):
            template.render({"text": "Payouts"})
        with translation.override(language):
            assert template.render({"text": "Payouts"}) == expected


def test_only_literal_messages_are_kept(template):
    nodes = [
        node for node in template.template.nodelist if isinstance(node, TranslateNode)
    ]
    assert [type(node) for node in nodes] == [
        TranslateOnceNode,  # a literal
        TranslateOnceNode,  # a literal with a literal context
        TranslateOnceNode,
        TranslateNode,  # a variable
        TranslateNode,  # a filter
        TranslateNode,  # "as": sets a variable
    ]


def test_the_other_i18n_tags_are_djangos(settings):
    rendered = (
        engines["django"]
        .from_string(
            "{% load translations %}{% get_current_language as code %}{{ code }} "
            "{% blocktranslate with n=3 %}{{ n }} items{% endblocktranslate %} "
            '{% language "de" %}{% translate "Orders" %}{% endlanguage %}'
        )
        .render({})
    )
    assert rendered == "en 3 items Bestellungen"


def test_the_projects_templates_load_translations_not_i18n(settings):
    """A template that loads Django's i18n renders every {% translate %} again."""
    import re
    from pathlib import Path

    loads_i18n = re.compile(r"{% load [^%]*\bi18n\b")
    templates = Path(settings.BASE_DIR, "templates").rglob("*")
    assert [
        str(path)
        for path in templates
        if path.is_file() and loads_i18n.search(path.read_text())
    ] == []
