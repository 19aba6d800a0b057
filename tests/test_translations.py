"""The German and Swedish catalogues are complete and current (issue 15).

Fails when a msgid in locale/de or locale/sv is untranslated or fuzzy, when a
translation drops or invents a placeholder, and when a .po file is stale: running
``makemessages`` (the command of ``make messages``) over a copy of the sources
would add or remove a msgid. Needs GNU gettext (xgettext, msgmerge), which
``.ci/run`` installs like ``make`` needs it for ``compilemessages``.
"""

import re
import shutil
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

LANGUAGES = ["de", "sv"]
#: What ``make messages`` runs makemessages over (the rest is ignored there).
SOURCES = ["portal", "refunds", "customers", "templates"]
IGNORED = ["tests", "bench", "staticfiles", "docs"]


def catalogue(root: Path, language: str):
    with (root / language / "LC_MESSAGES" / "django.po").open("rb") as f:
        return read_po(f)


def keys(messages) -> set:
    return {(m.context, m.id) for m in messages if m.id}


def as_tuple(value) -> tuple:
    return value if isinstance(value, tuple) else (value,)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_is_translated_and_none_is_fuzzy(language):
    messages = [m for m in catalogue(Path(settings.LOCALE_PATHS[0]), language) if m.id]

    untranslated = [m.id for m in messages if not all(as_tuple(m.string))]
    fuzzy = [m.id for m in messages if m.fuzzy]

    assert messages
    assert untranslated == []
    assert fuzzy == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_every_placeholder(language):
    placeholder = re.compile(r"%\(\w+\)[sd]|\{\{ ?\w+ ?\}\}")
    wrong = []
    for m in catalogue(Path(settings.LOCALE_PATHS[0]), language):
        if not m.id:
            continue
        expected = set(placeholder.findall(as_tuple(m.id)[-1]))
        forms = as_tuple(m.string)
        for index, text in enumerate(forms):
            found = set(placeholder.findall(text))
            if len(forms) > 1 and index == 0:
                # The singular form may say "one" in words instead of the
                # count, as the English singular does ("the remaining payment").
                found |= {"%(count)d"} & expected
            if found != expected:
                wrong.append((m.id, text))
    assert wrong == []


def test_the_catalogues_are_not_stale(tmp_path, monkeypatch):
    """makemessages over the current sources finds exactly the msgids the .po
    files hold: nothing new to translate, nothing left over."""
    if shutil.which("xgettext") is None:
        pytest.fail("GNU gettext is missing: apt-get install gettext")
    base = Path(settings.BASE_DIR)
    for name in SOURCES:
        shutil.copytree(
            base / name,
            tmp_path / name,
            ignore=shutil.ignore_patterns("__pycache__", "*.mo"),
        )
    locale = tmp_path / "locale"
    shutil.copytree(base / "locale", locale, ignore=shutil.ignore_patterns("*.mo"))
    monkeypatch.chdir(tmp_path)

    with override_settings(LOCALE_PATHS=[locale]):
        call_command(
            "makemessages",
            locale=LANGUAGES,
            no_location=True,
            no_obsolete=True,
            ignore_patterns=IGNORED,
            verbosity=0,
        )

    for language in LANGUAGES:
        current = keys(catalogue(base / "locale", language))
        fresh = keys(catalogue(locale, language))
        assert fresh - current == set(), f"new msgids in {language}: run make messages"
        assert current - fresh == set(), f"stale msgids in {language}: make messages"
