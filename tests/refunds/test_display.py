"""The refund form's item rows, built in Python, read exactly as the template
loop they replace wrote them (issue 16), in every portal language."""

import re

import pytest
from django.template import Context, Template
from django.utils import translation

from refunds.display import line_rows
from refunds.forms import RefundForm
from tests.factories import line

#: The template loop the Python rows replace (templates/refunds/refund_form.html
#: before issue 16).
TEMPLATE_ROWS = """{% load i18n %}{% for row in form.line_rows %}
<tr{% if not row.line.refundable_quantity or row.kept %} class="is-done"{% endif %}{% if row.line.is_shipping %} id="shipping-row"{% endif %}>
  <td class="check-cell">{{ row.selected }}</td>
  <td><label for="{{ row.selected.id_for_label }}" class="line-name">{{ row.line.name }}</label><span class="cell-sub">{{ row.line.reference }} · {% blocktranslate with price=row.line.unit_price|money:order %}{{ price }} each{% endblocktranslate %}{% if row.line.type != "physical" %} · {{ row.line.get_type_display }}{% endif %}</span>{% if row.line.is_shipping %}<span class="cell-sub shipping-policy">{% if row.kept %}{% blocktranslate with store=order.merchant.name %}{{ store }} does not refund shipping fees{% endblocktranslate %}{% else %}{% blocktranslate with store=order.merchant.name %}{{ store }} refunds shipping fees{% endblocktranslate %}{% endif %}</span>{% endif %}</td>
  <td class="num">{% if row.kept %}<span class="muted">{% translate "Not refundable" %}</span>{% elif row.line.refundable_quantity %}{{ row.line.refundable_quantity }}{% else %}<span class="muted">{% translate "All refunded" %}</span>{% endif %}<span class="cell-sub">{% blocktranslate with captured=row.line.captured_quantity quantity=row.line.quantity %}{{ captured }} of {{ quantity }} captured{% endblocktranslate %}</span></td>
  <td>
    <label class="cell-label" for="{{ row.quantity.id_for_label }}">{% translate "Quantity to refund" %}</label>
    {{ row.quantity }}
    <div class="field-errors" id="{{ row.quantity.auto_id }}_error">{% for error in row.quantity.errors %}<p>{{ error }}</p>{% endfor %}</div>
  </td>
</tr>
{% endfor %}"""


def _words(html: str) -> str:
    return re.sub(r"\s+", " ", str(html)).strip()


@pytest.mark.parametrize("language", ["en", "de", "sv"])
@pytest.mark.parametrize("refunds_shipping", [True, False])
def test_item_rows_read_as_the_template_wrote_them(
    make_order, merchant, language, refunds_shipping
):
    merchant.name = 'Nordic "Threads" & <Co>'
    merchant.shipping_fees_refundable = refunds_shipping
    merchant.save()
    order = make_order(
        lines=[
            line("TSHIRT-1", 10000, 2, name="T-shirt <b>bold</b> & co"),
            line("EBOOK-1", 1999, 1, type="digital"),
            line("CAP-1", 123456, 1),
            line("SHIP-1", 495, 1, type="shipping_fee", name="Express"),
        ],
        capture=True,
    )
    order.refund_lines([("CAP-1", 1)])
    tshirt = order.lines.get(reference="TSHIRT-1")
    data = {
        "kind": "items",
        f"line-{tshirt.pk}-selected": "on",
        f"line-{tshirt.pk}-quantity": "<1.5>",
        "idempotency_key": "k",
    }
    with translation.override(language):
        for form in (RefundForm(order), RefundForm(order, data)):
            form.is_valid()
            ours = "\n".join(line_rows(form))
            theirs = Template(TEMPLATE_ROWS).render(
                Context({"form": form, "order": order})
            )
            assert _words(ours) == _words(theirs)
            assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in ours
