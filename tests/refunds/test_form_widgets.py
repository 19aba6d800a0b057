"""The refund form's widgets are rendered in Python (``portal.widgets``): the
same markup as Django's widget templates, whatever the field's state."""

import re

import pytest
from django import forms

from portal import widgets
from refunds.forms import RefundForm
from tests.factories import line

STOCK = {
    widgets.TextInput: forms.TextInput,
    widgets.Select: forms.Select,
    widgets.CheckboxInput: forms.CheckboxInput,
    widgets.HiddenInput: forms.HiddenInput,
    widgets.Textarea: forms.Textarea,
    widgets.RadioSelect: forms.RadioSelect,
}


def _tags(html: str) -> str:
    return re.sub(r">\s+<", "><", str(html)).strip()


def rendered(form: RefundForm, name: str) -> list[str]:
    """The field as the page writes it: the widget, and each radio option's tag."""
    bound = form[name]
    return [str(bound), *(str(choice.tag()) for choice in bound.subwidgets)]


def stock(form: RefundForm, name: str) -> list[str]:
    field = form.fields[name]
    original = field.widget
    replacement = STOCK[type(original)](attrs=original.attrs)
    replacement.choices = getattr(original, "choices", [])
    if hasattr(original, "input_type"):
        replacement.input_type = original.input_type
    replacement.is_required = original.is_required
    field.widget = replacement
    form._bound_fields_cache.pop(name, None)
    try:
        return rendered(form, name)
    finally:
        field.widget = original
        form._bound_fields_cache.pop(name, None)


@pytest.mark.parametrize(
    "data",
    [
        None,
        {"kind": "items", "description": '"<b>" & co', "internal_note": "a\n<i>"},
        {"kind": "amount", "amount": "-1", "reason": "<script>"},
    ],
)
def test_refund_form_widgets_render_what_djangos_templates_render(
    make_order, merchant_user, data
):
    order = make_order(
        lines=[line("TSHIRT-1", 10000, 2), line("CAP-1", 2000, 1)], capture=True
    )
    order.refund_lines([("CAP-1", 1)])  # a line with nothing left: disabled
    tshirt = order.lines.get(reference="TSHIRT-1")
    if data is not None:
        data = {
            **data,
            f"line-{tshirt.pk}-selected": "on",
            f"line-{tshirt.pk}-quantity": "x<",
            "idempotency_key": "k",
        }
    form = RefundForm(order, data)
    if data is not None:
        form.is_valid()
    for name in form.fields:
        if type(form.fields[name].widget) in STOCK:
            assert [_tags(h) for h in rendered(form, name)] == [
                _tags(h) for h in stock(form, name)
            ], name


def test_refund_forms_share_fields_but_not_keys_or_narrowed_choices(
    make_order, merchant
):
    from refunds.models import RefundKind

    order = make_order(lines=[line("TSHIRT-1", 10000)], capture=True)
    first, second = RefundForm(order), RefundForm(order)
    assert first.fields["description"] is second.fields["description"]
    # Each form its own idempotency key; the shared field keeps none.
    assert first["idempotency_key"].value() != second["idempotency_key"].value()
    assert RefundForm.base_fields["idempotency_key"].initial is None
    # A market without return fees narrows its own copy of the kinds only.
    us_order = make_order(
        lines=[line("CAP-1", 2000)], capture=True, purchase_country="US"
    )
    narrowed = RefundForm(us_order)
    assert narrowed.return_fee_unavailable
    kinds = [value for value, _label in narrowed.fields["kind"].choices]
    assert RefundKind.ITEMS_WITH_FEE not in kinds
    assert RefundKind.ITEMS_WITH_FEE in [
        value for value, _label in RefundForm(order).fields["kind"].choices
    ]
    assert RefundKind.ITEMS_WITH_FEE in [
        value for value, _label in RefundForm.base_fields["kind"].choices
    ]
