"""``{% fixed_url "portal:order_list" %}``: ``{% url %}`` for a view without
arguments, reversed once per process.

The portal's and the customer pages' layouts link to the same dozen views on
every page; ``reverse`` cost about 25 µs a link (issue 16). A URL without
arguments depends only on the URLconf, the script prefix and (with
``i18n_patterns``) the language, which are the memo's key. Installed as a
template builtin (``portal.settings``), like the ``money`` filter.
``reversed_once`` is the same memo for a URL with fixed arguments (the order
list's row links, ``portal.display.url_maker``).
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
    return reversed_once(viewname)


def reversed_once(viewname: str, args: tuple = ()) -> str:
    """``reverse(viewname, args=args)``, once per process for each view, its
    fixed ``args``, the URLconf, the script prefix and the language
    (``i18n_patterns``). Raises ``NoReverseMatch`` as ``reverse`` does."""
    key = (viewname, args, get_urlconf(), get_script_prefix(), get_language())
    try:
        return _URLS[key]
    except KeyError:
        url = _URLS[key] = reverse(viewname, args=args)
        return url
