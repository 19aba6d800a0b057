"""``{% load layout %}{% portal_header %}``: the merchant portal's top bar,
built in Python (``portal.display.portal_header``; issue 16)."""

from django import template

from portal.display import portal_header as build_header

register = template.Library()


@register.simple_tag(takes_context=True)
def portal_header(context) -> str:
    """The top bar for the context's request, with the context's CSRF token."""
    return build_header(context["request"], context.get("csrf_token"))
