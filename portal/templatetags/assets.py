"""``{% load assets %}``: Django's ``static`` library (``{% static %}``,
``{% get_static_prefix %}``...), with each asset's URL found once per process.

Every page links the same four assets; ``{% static %}`` asks the storage each
time, and the manifest storage then cleans the name, looks it up in the
manifest and joins it to ``STATIC_URL`` (issue 16). A static URL depends only
on the asset's path and the settings of the storage (Django fixes a relative
``STATIC_URL``'s script prefix when the setting is first read), which clear
the memo when they change (tests). The storage's errors (an asset missing from
the manifest) are raised as before, and nothing is kept for them. Our rule.
"""

from django import template
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.templatetags import static as django_static

register = template.Library()
register.tags.update(django_static.register.tags)
register.filters.update(django_static.register.filters)

_URLS: dict[str, str] = {}

#: The settings a static URL is made from.
_SETTINGS = {"STATIC_URL", "STATIC_ROOT", "STATICFILES_DIRS", "STORAGES"}


@receiver(setting_changed)
def _forget(*, setting, **kwargs) -> None:
    if setting in _SETTINGS:
        _URLS.clear()


class StaticNode(django_static.StaticNode):
    @classmethod
    def handle_simple(cls, path: str) -> str:
        """The asset's URL, as Django's ``static`` gives it."""
        try:
            return _URLS[path]
        except KeyError:
            url = _URLS[path] = super().handle_simple(path)
            return url


@register.tag("static")
def do_static(parser, token):
    """``{% static "path" %}`` and ``{% static "path" as name %}``, as Django's."""
    return StaticNode.handle_token(parser, token)
