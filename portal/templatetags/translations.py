"""``{% load translations %}``: Django's ``i18n`` template library, with a
literal ``{% translate %}`` written once per language. The project's templates
load it instead of ``i18n``.

``{% translate "Orders" %}`` gives the same text every time in one language,
yet Django's tag looks it up, localizes and escapes it on every render: three
times a ``{{ variable }}``, and the order page has seventy of them (issue 16).
Here a tag whose message (and context) is a literal, without filters or
``as``, keeps what it rendered per language. Everything else, and every tag
with ``DEBUG`` on (so a recompiled catalogue shows at once), is Django's own.
"""

from django import template
from django.conf import settings
from django.templatetags import i18n
from django.utils.translation import get_language

register = template.Library()
register.tags.update(i18n.register.tags)
register.filters.update(i18n.register.filters)


def _is_literal(expression) -> bool:
    """A literal without filters (a compiled literal is its string; the
    message's is a ``Variable`` of it)."""
    if expression is None:
        return True
    var = expression.var
    return not expression.filters and (
        isinstance(var, str)
        or (isinstance(var, template.Variable) and var.literal is not None)
    )


class TranslateOnceNode(i18n.TranslateNode):
    """A ``TranslateNode`` of literals: rendered once per language. Its output
    does not depend on the context (a translated literal is safe text, so
    autoescaping leaves it as it is)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.by_language: dict[str | None, str] = {}

    def render(self, context):
        if settings.DEBUG:
            return super().render(context)
        language = get_language()
        try:
            return self.by_language[language]
        except KeyError:
            output = self.by_language[language] = super().render(context)
            return output


@register.tag("translate")
@register.tag("trans")
def do_translate(parser, token):
    node = i18n.do_translate(parser, token)
    if (
        type(node) is i18n.TranslateNode
        and node.asvar is None
        and _is_literal(node.filter_expression)
        and _is_literal(node.message_context)
    ):
        return TranslateOnceNode(
            node.filter_expression, node.noop, node.asvar, node.message_context
        )
    return node
