"""``{% fixed_url "portal:order_list" %}``: ``{% url %}`` for a view without
arguments, reversed once per process.

The portal's and the customer pages' layouts link to the same dozen views on
every page; ``reverse`` cost about 25 µs a link (issue 16). A URL without
arguments depends only on the URLconf, the script prefix and (with
``i18n_patterns``) the language, which are the memo's key. Installed as a
template builtin (``portal.settings``), like the ``money`` filter.
"""

from django import template
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.translation import get_language

register = template.Library()

_URLS: dict[tuple, str] = {}


@register.simple_tag
def fixed_url(viewname: str) -> str:
    """The URL of ``viewname`` (no arguments); raises ``NoReverseMatch`` as
    ``{% url %}`` does."""
    key = url_memo_key(viewname)
    try:
        return _URLS[key]
    except KeyError:
        url = _URLS[key] = reverse(viewname)
        return url


def url_memo_key(viewname: str) -> tuple:
    """What a reversed URL of ``viewname`` depends on besides its arguments: the
    URLconf, the script prefix and the language (``i18n_patterns``)."""
    return (viewname, get_urlconf(), get_script_prefix(), get_language())
