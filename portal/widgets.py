"""Form widgets rendered in Python: the same markup as Django's widget templates.

Django renders every widget through its form renderer: a template for the
``<select>``, an included template per ``<option>`` and one for the attributes.
On the order list, the five search fields took about 5 ms of a 13 ms page
(issue 16). These widgets build the same HTML (``django/forms/widgets/input.html``,
``select.html``, ``select_option.html``, ``attrs.html``) from the context Django
prepares (``get_context``: ids, ``aria-*`` attributes, selected options), with
every value escaped as the templates escape it. ``field_group`` does the same for
our ``includes/field.html`` around them.
"""

import html

from django import forms
from django.utils import translation
from django.utils.safestring import SafeString, mark_safe


def conditional_escape(value) -> str:
    """Django's ``conditional_escape`` for the values a widget writes, without
    its lazy-string wrapper and ``SafeString`` per call (a 500-line refund form
    escapes some 20,000 values): the value's own HTML if it has one, else
    ``html.escape``, which is what Django's ``escape`` does."""
    if hasattr(value, "__html__"):
        return value.__html__()
    return html.escape(str(value))


def _attrs(attrs: dict) -> str:
    """As ``attrs.html``: ``False`` leaves an attribute out, ``True`` writes it bare."""
    parts = []
    for name, value in attrs.items():
        if value is False:
            continue
        if value is True:
            parts.append(f" {conditional_escape(name)}")
        else:
            parts.append(f' {conditional_escape(name)}="{conditional_escape(value)}"')
    return "".join(parts)


def _input(widget: dict) -> SafeString:
    """As ``input.html``, from a widget's (or an option's) context."""
    shown = (
        f' value="{conditional_escape(widget["value"])}"'
        if widget["value"] is not None
        else ""
    )
    return mark_safe(  # every value escaped above
        f'<input type="{conditional_escape(widget["type"])}" '
        f'name="{conditional_escape(widget["name"])}"{shown}'
        f"{_attrs(widget['attrs'])}>"
    )


class PythonInputMixin:
    """``<input>`` rendered like ``django/forms/widgets/input.html``."""

    def render(self, name, value, attrs=None, renderer=None) -> SafeString:
        return _input(self.get_context(name, value, attrs)["widget"])


class TextInput(PythonInputMixin, forms.TextInput):
    pass


class DateInput(PythonInputMixin, forms.DateInput):
    pass


class CheckboxInput(PythonInputMixin, forms.CheckboxInput):
    """As ``checkbox.html`` (``input.html``; ``checked`` comes with the context)."""


class HiddenInput(PythonInputMixin, forms.HiddenInput):
    pass


class Textarea(forms.Textarea):
    """As ``textarea.html``: the value after a newline, as the template writes it."""

    def render(self, name, value, attrs=None, renderer=None) -> SafeString:
        widget = self.get_context(name, value, attrs)["widget"]
        text = conditional_escape(widget["value"]) if widget["value"] else ""
        return mark_safe(  # every value escaped
            f'<textarea name="{conditional_escape(widget["name"])}"'
            f"{_attrs(widget['attrs'])}>\n{text}</textarea>"
        )


class RadioSelect(forms.RadioSelect):
    """Each option's ``<input>`` as a template renders it with ``{{ choice.tag }}``
    (``radio_option.html`` without its label) is built here; anything else (the
    whole list, an option with its label) is Django's own rendering."""

    def _render(self, template_name, context, renderer=None):
        widget = context["widget"]
        if template_name == self.option_template_name and not widget.get("wrap_label"):
            return _input(widget)
        return super()._render(template_name, context, renderer)


class Select(forms.Select):
    """``<select>`` rendered like ``select.html`` and ``select_option.html``.

    A flat list of choices (no groups, one value) is written straight from
    ``choices``: Django's ``optgroups`` builds a dict of a dozen keys per option
    that only a template reads, about half of the order list's search form
    (issue 16). Grouped choices and multiple selection take Django's context."""

    def render(self, name, value, attrs=None, renderer=None) -> SafeString:
        if not self.allow_multiple_selected and not self.option_inherits_attrs:
            widget = forms.Widget.get_context(self, name, value, attrs)["widget"]
            options = self._flat_options(widget["value"])
            if options is not None:
                return mark_safe(  # every value escaped
                    f'<select name="{conditional_escape(widget["name"])}"'
                    f"{_attrs(widget['attrs'])}>{options}</select>"
                )
        widget = self.get_context(name, value, attrs)["widget"]
        out = [f'<select name="{conditional_escape(widget["name"])}"']
        out.append(_attrs(widget["attrs"]) + ">")
        for group_name, options, _index in widget["optgroups"]:
            if group_name:
                out.append(f'<optgroup label="{conditional_escape(group_name)}">')
            for option in options:
                out.append(
                    f'<option value="{conditional_escape(option["value"])}"'
                    f"{_attrs(option['attrs'])}>"
                    f"{conditional_escape(option['label'])}</option>"
                )
            if group_name:
                out.append("</optgroup>")
        out.append("</select>")
        return mark_safe("".join(out))  # every value escaped above

    def _flat_options(self, chosen: list[str]) -> str | None:
        """The ``<option>`` tags, the first one whose value is in ``chosen``
        selected (as ``optgroups``); None for grouped choices."""
        out = []
        found = False
        for value, label in self.choices:
            if isinstance(label, (list, tuple)):
                return None
            if value is None:
                value = ""
            selected = not found and str(value) in chosen
            found |= selected
            out.append(
                f'<option value="{conditional_escape(value)}"'
                f"{' selected' if selected else ''}>{conditional_escape(label)}</option>"
            )
        return "".join(out)


#: Widgets that are not one element (``BoundField.widget_type`` "checkbox" and
#: "radioselect", without its regular expression per call).
_NOT_ONE_ELEMENT = (forms.CheckboxInput, forms.RadioSelect)


def field_group(field) -> SafeString:
    """A bound field as ``includes/field.html`` renders it for a widget that is
    one ``<input>`` or ``<select>`` (not a checkbox or radio buttons): label,
    widget, help text and errors (the include cost about 0.25 ms a field)."""
    if isinstance(field.field.widget, _NOT_ONE_ELEMENT):
        raise ValueError(f"{field.name}: use includes/field.html for this widget")
    auto_id = conditional_escape(field.auto_id)
    help_text = (
        # A block that may hold a list (Django's password rules are a <ul>,
        # which would close a <p> and leave it empty).
        f'<div class="help" id="{auto_id}_helptext">'
        f"{conditional_escape(field.help_text)}</div>"
        if field.help_text
        else ""
    )
    # form.errors, not field.errors: that makes an empty ErrorList per call.
    errors = "".join(
        f"<p>{conditional_escape(e)}</p>" for e in field.form.errors.get(field.name, ())
    )
    return mark_safe(  # every value escaped above
        f'<div class="field">'
        f'<label for="{conditional_escape(field.id_for_label)}">'
        f"{conditional_escape(field.label)}</label>"
        f"{field}{help_text}"
        f'<div class="field-errors" id="{auto_id}_error">{errors}</div></div>'
    )


#: ``blank_field_group``'s memo: what decides a blank field's markup -> the markup.
_BLANK_GROUPS: dict[tuple, SafeString] = {}


def blank_field_group(field) -> SafeString:
    """``field_group(field)``, written once per process for each blank field.

    For forms whose fields are the ones declared on their class (not changed
    per instance: no choices of a merchant's, no initial values), such as the
    order search. A field is blank when the request sent no value or an empty
    one for it and it has no error: its markup then depends only on the form's
    class, the field, the form's prefix and ids, and the active language, which
    is the memo's key. Any other field is rendered as ``field_group`` renders it.
    The order list's five filters took about 0.5 ms of each page to render
    though most are blank on most pages (issue 16; our rule).
    """
    form = field.form
    data = field.data
    if (
        data not in (None, "")
        or field.field.disabled
        or field.field.initial is not None
        or field.name in form.initial
        or form.errors.get(field.name)
    ):
        return field_group(field)
    key = (
        type(form),
        field.name,
        data,
        form.is_bound,
        form.prefix,
        form.auto_id,
        form.use_required_attribute,
        translation.get_language(),
    )
    found = _BLANK_GROUPS.get(key)
    if found is None:
        found = _BLANK_GROUPS[key] = field_group(field)
    return found


def error_slots(form, names: list[str]) -> SafeString:
    """The error container of each field in ``names`` (``field_group``'s,
    id ``<field id>_error``, the id Django's ``aria-describedby`` names) with
    the field's errors, to swap out of band into a form an HTMX response does
    not replace (an empty one clears what an earlier response showed). The
    field itself is marked invalid by ``static/js/portal.js``. Used by the
    refund form's live preview and the order list's live search; as the
    template wrote them, about 0.15 ms a preview there (issue 16)."""
    errors = form.errors
    slots = []
    for name in names:
        messages = "".join(
            f"<p>{conditional_escape(error)}</p>" for error in errors.get(name, ())
        )
        field_id = conditional_escape(form.auto_id % form.add_prefix(name))
        slots.append(
            f'<div class="field-errors" id="{field_id}_error" hx-swap-oob="true">'
            f"{messages}</div>\n"
        )
    return mark_safe("".join(slots))  # every value escaped above
