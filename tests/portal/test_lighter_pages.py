"""Issue 16: the order page and the order list do less, and show the same.

Rows formatted once in Python (``portal.display``), widgets rendered in Python
(``portal.widgets``), the merchant user loaded with the user
(``portal.backends``), and no queries for relations an order does not have.
"""

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from django import forms
from django.template import Context, Template
from django.urls import reverse
from django.utils import timezone, translation

from customers.models import ReturnReport
from portal import widgets
from portal.backends import MerchantModelBackend
from portal.display import DateWriter, short_date, short_datetime, short_time
from portal.forms import OrderSearchForm
from portal.models import MerchantUser, OrderEvent
from tests.factories import line


def detail(order) -> str:
    return order.get_absolute_url()


def _tags(html: str) -> str:
    """Markup without the whitespace between tags (Django's templates add some)."""
    return re.sub(r">\s+<", "><", str(html)).strip()


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"q": '"<b>" & co', "status": "CANCELLED", "date_from": "2026-01-02"},
        {"product": "pay_later", "date_to": "not a date"},
    ],
)
def test_python_widgets_render_what_djangos_widget_templates_render(data):
    form = OrderSearchForm(data)
    form.is_valid()
    stock = {
        widgets.TextInput: forms.TextInput,
        widgets.DateInput: forms.DateInput,
        widgets.Select: forms.Select,
    }
    for bound in form:
        if bound.is_hidden:
            continue
        ours = str(bound)
        field = form.fields[bound.name]
        original = field.widget
        replacement = stock[type(original)](attrs=original.attrs)
        replacement.choices = getattr(original, "choices", [])
        for name in ("format", "input_type"):  # popped from attrs by __init__
            if hasattr(original, name):
                setattr(replacement, name, getattr(original, name))
        field.widget = replacement
        try:
            theirs = str(form[bound.name])
        finally:
            field.widget = original
        assert _tags(ours) == _tags(theirs), bound.name


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"q": '"<b>" & co', "status": "CANCELLED", "date_from": "2026-01-02"},
        {"date_from": "2026-02-01", "date_to": "2026-01-01"},
        {"product": "pay_later", "date_to": "not a date"},
    ],
)
def test_search_fields_render_what_the_field_include_renders(data):
    form = OrderSearchForm(data)
    form.is_valid()
    include = Template(
        '{% for field in form.visible_fields %}{% include "includes/field.html" %}'
        "{% endfor %}"
    )
    theirs = include.render(Context({"form": form}))
    assert _tags(form.field_groups()) == _tags(theirs)
    if "date_to" in data:
        assert 'id="id_date_to_error"><p>' in str(form.field_groups())


SEARCHES = [
    {},
    {"q": "", "status": "", "product": "", "date_from": "", "date_to": ""},
    {"q": '"<b>" & co', "status": "CANCELLED", "date_from": "2026-01-02"},
    {"date_from": "2026-02-01", "date_to": "2026-01-01"},
    {"product": "pay_later", "date_to": "not a date"},
]


def test_blank_filters_written_once_read_as_the_field_include_in_every_language():
    """``widgets.blank_field_group``: each search, in each language, after
    every other one has filled the memo, renders what the include renders."""
    include = Template(
        '{% for field in form.visible_fields %}{% include "includes/field.html" %}'
        "{% endfor %}"
    )
    for _round in range(2):
        for language in ("en", "de", "sv"):
            with translation.override(language):
                for data in SEARCHES:
                    form = OrderSearchForm(data)
                    form.is_valid()
                    theirs = include.render(Context({"form": form}))
                    assert _tags(form.field_groups()) == _tags(theirs), (language, data)
    with translation.override("de"):
        assert ">Suchen</label>" in str(OrderSearchForm({}).field_groups())


def test_only_a_blank_field_without_errors_is_taken_from_the_memo():
    blank = OrderSearchForm({"q": "", "date_to": "not a date"})
    blank.is_valid()
    assert widgets.blank_field_group(blank["q"]) is widgets.blank_field_group(
        OrderSearchForm({"q": ""})["q"]
    )
    searched = OrderSearchForm({"q": "muller"})
    assert 'value="muller"' in widgets.blank_field_group(searched["q"])
    assert "Enter a valid date." in widgets.blank_field_group(blank["date_to"])
    assert "Enter a valid date." not in widgets.blank_field_group(
        OrderSearchForm({"date_to": ""})["date_to"]
    )

    class Optional(forms.Form):
        name = forms.CharField(required=False, widget=widgets.TextInput)

    def refused(message):
        form = Optional({"name": ""})
        form.is_valid()
        form.add_error("name", message)
        return form

    accepted = Optional({"name": ""})
    accepted.is_valid()
    for _times in range(2):
        assert "Taken." in widgets.blank_field_group(refused("Taken.")["name"])
        assert "Taken." not in widgets.blank_field_group(accepted["name"])
        assert "Gone." in widgets.blank_field_group(refused("Gone.")["name"])
    prefixed = OrderSearchForm({}, prefix="x")
    assert 'id="id_x-q"' in widgets.blank_field_group(prefixed["q"])
    initial = OrderSearchForm(initial={"q": "first"})
    assert 'value="first"' in widgets.blank_field_group(initial["q"])


def test_a_field_with_help_text_renders_what_the_field_include_renders():
    class Form(forms.Form):
        name = forms.CharField(help_text="Say <who>", widget=widgets.TextInput)

    form = Form({})
    form.is_valid()
    theirs = Template('{% include "includes/field.html" %}').render(
        Context({"field": form["name"]})
    )
    assert _tags(widgets.field_group(form["name"])) == _tags(theirs)


def test_a_checkbox_is_left_to_the_field_include():
    class Form(forms.Form):
        agree = forms.BooleanField()

    with pytest.raises(ValueError):
        widgets.field_group(Form()["agree"])


@pytest.mark.parametrize("language", ["en", "de", "sv"])
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York"])
def test_dates_read_exactly_like_the_template_date_filters(language, zone):
    moments = [
        datetime(2026, 12, 31, 23, 30, tzinfo=UTC),
        datetime(2026, 3, 1, 0, 5, tzinfo=UTC),
        datetime(2026, 5, 9, 14, 59, tzinfo=UTC),
    ]
    template = Template(
        '{{ d|date:_("j M Y") }}|{{ d|time:"H:i" }}|{{ d|date:_("j M Y, H:i") }}'
    )
    with translation.override(language), timezone.override(zone):
        for moment in moments:
            expected = template.render(Context({"d": moment}))
            assert (
                f"{short_date(moment)}|{short_time(moment)}|{short_datetime(moment)}"
                == expected
            )
        dates = DateWriter()  # one per page: zone, pattern, months looked up once
        for moment in moments * 2:
            day, time = dates.date(moment), dates.time(moment)
            assert (day, time) == (short_date(moment), short_time(moment))


@pytest.mark.parametrize("language", ["en", "de", "sv"])
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York"])
def test_the_short_date_filters_write_what_the_date_filter_writes(language, zone):
    moments = [
        datetime(2026, 12, 31, 23, 30, tzinfo=UTC),
        datetime(2026, 3, 1, 0, 5, tzinfo=UTC),
        None,
    ]
    ours = Template("{% load dates %}{{ d|short_date }}|{{ d|short_datetime }}")
    django = Template('{{ d|date:_("j M Y") }}|{{ d|date:_("j M Y, H:i") }}')
    day = date(2026, 5, 9)
    with translation.override(language), timezone.override(zone):
        for moment in moments:
            context = Context({"d": moment})
            assert ours.render(context) == django.render(context)
        assert Template("{% load dates %}{{ d|short_date }}").render(
            Context({"d": day})
        ) == Template('{{ d|date:_("j M Y") }}').render(Context({"d": day}))


def test_order_page_escapes_names_it_builds_in_python(
    portal_client, make_order, merchant_user
):
    order = make_order(
        lines=[line("SKU-1", 1000, 2, name="<b>Bold</b> & co")], capture=True
    )
    order.refund_lines([("SKU-1", 1)], by=merchant_user.user)
    body = portal_client.get(detail(order)).content.decode()
    assert "&lt;b&gt;Bold&lt;/b&gt; &amp; co" in body
    assert "<b>Bold</b>" not in body
    # The capture names the line: 2 captured, 1 refunded.
    assert "2 × &lt;b&gt;Bold&lt;/b&gt; &amp; co" in body
    assert '<span class="muted">(1 refunded)</span>' in body


def test_a_capture_of_every_line_in_full_is_summarised_not_repeated(
    portal_client, many_lines_order
):
    order = many_lines_order(8)
    body = portal_client.get(detail(order)).content.decode()
    assert "All 8 order lines, in full" in body
    # The order-lines table still names every line, once.
    assert body.count("Sku-0007") == 1


def test_captures_of_part_of_the_order_name_their_lines(
    portal_client, make_order, merchant_user
):
    order = make_order(lines=[line(f"SKU-{i}", 1000, 2) for i in range(7)])
    order.capture(lines=[("SKU-0", 1), ("SKU-1", 2)], by=merchant_user.user)
    body = portal_client.get(detail(order)).content.decode()
    assert '<span class="item-line">1 × Sku-0</span>' in body
    assert '<span class="item-line">2 × Sku-1</span>' in body
    assert "order lines, in full" not in body


def test_an_order_without_captures_asks_nothing_about_them(
    portal_client, order, django_assert_max_num_queries
):
    # Session, user with merchant user, order (with its EXISTS flags), lines
    # (with their capture lines: none).
    with django_assert_max_num_queries(4):
        response = portal_client.get(detail(order))
    assert response.status_code == 200
    assert "Nothing captured yet" in response.content.decode()


def test_an_order_without_refunds_asks_nothing_about_them(
    portal_client, captured_order, django_assert_max_num_queries
):
    # ... plus captures and payout entries; no reported returns.
    with django_assert_max_num_queries(6):
        response = portal_client.get(detail(captured_order))
    assert "No refunds." in response.content.decode()


def test_refunds_without_money_back_ask_for_no_repayments(
    portal_client, make_order, merchant_user, django_assert_max_num_queries
):
    # Pay in 4: a small refund lowers what is owed; no money goes back.
    order = make_order(lines=[line("SKU-1", 10000, 4)], capture=True)
    order.refund_lines([("SKU-1", 1)], by=merchant_user.user)
    refund = order.refunds.get()
    assert not refund.repayments.exists()
    # ... plus refunds with their allocations, refund lines: no repayments.
    with django_assert_max_num_queries(8):
        body = portal_client.get(detail(order)).content.decode()
    assert "None: it lowered what the customer owes" in body


def test_the_user_comes_with_their_merchant_user_in_one_query(
    merchant_user, django_assert_num_queries
):
    with django_assert_num_queries(1):
        user = MerchantModelBackend().get_user(merchant_user.user.pk)
        assert user.merchant_user.merchant.name == "Nordic Threads"
        assert user.merchant_user.role == MerchantUser.Role.ADMIN


def test_the_compiled_user_query_loads_what_the_orm_loads(
    merchant_user, django_assert_num_queries
):
    from django.contrib.auth import get_user_model

    expected = (
        get_user_model()
        .objects.select_related("merchant_user__merchant")
        .get(pk=merchant_user.user.pk)
    )
    with django_assert_num_queries(1):
        # The session holds the primary key as a string.
        user = MerchantModelBackend().get_user(str(merchant_user.user.pk))
        fields = [
            (obj, [getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields])
            for obj in (user, user.merchant_user, user.merchant_user.merchant)
        ]
        assert user.merchant_user.user is user
    assert fields == [
        (obj, [getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields])
        for obj in (
            expected,
            expected.merchant_user,
            expected.merchant_user.merchant,
        )
    ]
    assert [type(value) for _obj, values in fields for value in values] == [
        type(value)
        for obj in (expected, expected.merchant_user, expected.merchant_user.merchant)
        for value in [getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields]
    ]


def test_a_user_without_a_merchant_user_costs_no_second_query(
    db, django_assert_num_queries
):
    from portal.decorators import merchant_user_of
    from tests.factories import UserFactory

    plain = UserFactory(username="no-merchant")
    with django_assert_num_queries(1):
        user = MerchantModelBackend().get_user(plain.pk)
        assert user == plain
        assert merchant_user_of(user) is None


def test_an_unknown_or_malformed_user_id_is_no_user(db):
    assert MerchantModelBackend().get_user(987654) is None
    assert MerchantModelBackend().get_user("not a number") is None


def test_a_role_change_takes_effect_on_the_next_request(
    portal_client, captured_order, merchant_user
):
    url = reverse("portal:order_capture", args=[captured_order.order_id])
    assert portal_client.get(url).status_code in (200, 302)
    MerchantUser.objects.filter(pk=merchant_user.pk).update(
        role=MerchantUser.Role.VIEWER
    )
    assert portal_client.get(url).status_code == 403


def test_a_deactivated_user_is_logged_out_on_the_next_request(
    portal_client, merchant_user
):
    assert portal_client.get(reverse("portal:order_list")).status_code == 200
    merchant_user.user.is_active = False
    merchant_user.user.save(update_fields=["is_active"])
    response = portal_client.get(reverse("portal:order_list"))
    assert response.status_code == 302
    assert reverse("portal:login") in response["Location"]


def test_order_list_rows_link_each_order_and_escape_what_customers_typed(
    portal_client, make_order, customer
):
    customer.name = "<i>Maja</i>"
    customer.save()
    order = make_order(capture=True)
    body = portal_client.get(reverse("portal:order_list")).content.decode()
    assert f'href="{order.get_absolute_url()}"' in body
    assert "&lt;i&gt;Maja&lt;/i&gt;" in body and "<i>Maja</i>" not in body
    assert '<span class="muted">—</span>' in body  # nothing refunded


def test_events_and_reported_returns_are_asked_for_only_when_there_are_some(
    portal_client, captured_order, customer, django_assert_max_num_queries
):
    OrderEvent.objects.create(order=captured_order, kind=OrderEvent.Kind.ACKNOWLEDGED)
    today = timezone.localdate()
    ReturnReport.objects.create(
        order=captured_order,
        customer=customer,
        tracking_number="TRACK-123",
        shipped_on=today,
        pause_until=today + timedelta(days=21),
    )
    # The six of an order without refunds, plus events and reported returns.
    with django_assert_max_num_queries(8):
        body = portal_client.get(detail(captured_order)).content.decode()
    assert "Order acknowledged" in body
    assert "TRACK-123" in body


def test_static_urls_are_worked_out_once_and_a_missing_file_still_raises(
    tmp_path, monkeypatch
):
    from whitenoise.storage import CompressedManifestStaticFilesStorage

    from portal.storage import StaticFilesStorage

    (tmp_path / "staticfiles.json").write_text(
        '{"version": "1.1", "hash": "x", "paths": {"css/app.css": "css/app.4f2a.css"}}'
    )
    storage = StaticFilesStorage(location=tmp_path, base_url="/static/")
    assert storage.url("css/app.css") == "/static/css/app.4f2a.css"
    monkeypatch.setattr(
        CompressedManifestStaticFilesStorage,
        "url",
        lambda *a, **k: pytest.fail("asked the manifest again"),
    )
    assert storage.url("css/app.css") == "/static/css/app.4f2a.css"
    monkeypatch.undo()
    for _ in range(2):
        with pytest.raises(ValueError):
            storage.url("css/missing.css")


def test_fixed_urls_are_the_urls_of_their_views_under_each_script_prefix():
    from django.urls import NoReverseMatch, set_script_prefix

    template = Template(
        "{% fixed_url 'portal:order_list' %}|{% url 'portal:order_list' %}"
    )
    try:
        for prefix in ("/", "/merchants/", "/"):
            set_script_prefix(prefix)
            ours, theirs = template.render(Context()).split("|")
            assert ours == theirs == f"{prefix}orders/"
    finally:
        set_script_prefix("/")
    with pytest.raises(NoReverseMatch):
        Template("{% fixed_url 'portal:order_detail' %}").render(Context())


@pytest.mark.parametrize(
    "choices, value",
    [
        ([("", "Any"), ("a", "<A>"), ("b", 'B "quoted"')], "b"),
        ([("", "Any"), ("a", "A"), ("a", "A again")], "a"),  # the first one only
        ([("", "Any"), ("Group <1>", [("a", "A"), ("b", "B")])], "b"),  # grouped
        ([(None, "None"), (1, "One")], "1"),
    ],
)
def test_select_renders_what_djangos_select_renders(choices, value):
    ours = widgets.Select(choices=choices, attrs={"class": "x"})
    theirs = forms.Select(choices=choices, attrs={"class": "x"})
    attrs = {"id": "id_pick", "aria-invalid": "true"}
    assert _tags(ours.render("pick", value, attrs)) == _tags(
        theirs.render("pick", value, attrs)
    )


def test_search_forms_share_their_fields_but_not_their_values_or_errors():
    first = OrderSearchForm({"status": "CANCELLED", "date_to": "not a date"})
    second = OrderSearchForm({"q": "muller"})
    assert first.fields["status"] is second.fields["status"]  # not copied
    assert not first.is_valid() and second.is_valid()
    html = str(second.field_groups())
    assert "aria-invalid" not in html
    assert 'value="CANCELLED" selected' not in html
    assert 'value="muller"' in html and 'value="muller"' not in str(
        first.field_groups()
    )
    assert 'value="CANCELLED" selected' in str(first.field_groups())
    assert OrderSearchForm().fields["status"].widget.attrs == {}


def _field_state(fields) -> dict:
    """What a request could change on shared fields: every attribute of each
    field and its widget (choices and attrs included), as text."""
    return {
        name: (
            repr(sorted(vars(f).items(), key=lambda kv: kv[0]))
            + repr(sorted(vars(f.widget).items(), key=lambda kv: kv[0]))
        )
        for name, f in fields.items()
    }


def test_requests_leave_the_shared_form_fields_as_they_were(
    portal_client, make_order, django_capture_on_commit_callbacks
):
    """``SharedFields``: the search and refund forms' field objects are the
    class's own; no request, valid or not, may change them."""
    from refunds.forms import RefundForm

    before = (
        _field_state(OrderSearchForm.base_fields),
        _field_state(RefundForm.base_fields),
    )
    order = make_order(lines=[line("TSHIRT-1", 10000, 2)], capture=True)
    us_order = make_order(
        lines=[line("CAP-1", 2000)], capture=True, purchase_country="US"
    )
    for query in ("?q=muller&status=CANCELLED", "?date_to=xx&status=NOPE", "?"):
        portal_client.get(reverse("portal:order_list") + query)
        portal_client.get(reverse("portal:order_list") + query, HTTP_HX_REQUEST="true")
    tshirt = order.lines.get(reference="TSHIRT-1")
    for target in (order, us_order):
        url = reverse("refunds:create", args=[target.order_id])
        portal_client.get(url)
        portal_client.post(url, {"kind": "amount", "amount": "x", "action": "preview"})
    with django_capture_on_commit_callbacks(execute=True):
        portal_client.post(
            reverse("refunds:create", args=[order.order_id]),
            {
                "kind": "items_fee",
                f"line-{tshirt.pk}-selected": "on",
                f"line-{tshirt.pk}-quantity": "1",
                "return_fee": "5",
                "idempotency_key": "k-1",
                "action": "confirm",
            },
        )
    after = (
        _field_state(OrderSearchForm.base_fields),
        _field_state(RefundForm.base_fields),
    )
    assert after == before


#: The top bar as ``portal/layout.html`` wrote it with template tags before it
#: was built in Python (``portal.display.portal_header``): the reference.
HEADER_TEMPLATE = """{% load translations %}
{% with section=request.resolver_match.url_name namespace=request.resolver_match.namespace mu=request.merchant_user %}
<header class="topbar">
  <div class="topbar-inner">
    <a class="brand" href="{% fixed_url 'portal:order_list' %}">
      <span class="brand-mark" aria-hidden="true">R</span>
      <span class="brand-text">{% translate "Merchant portal" %}</span>
    </a>
    {% if mu %}<span class="merchant-name" title="{% translate "Merchant" %}">{{ mu.merchant.name }}</span>{% endif %}
    <nav class="mainnav" aria-label="{% translate "Main" context "navigation" %}">
      <a href="{% fixed_url 'portal:order_list' %}"{% if section|slice:":5" == "order" or namespace == "refunds" %} aria-current="page"{% endif %}>{% translate "Orders" %}</a>
      <a href="{% fixed_url 'portal:payout_list' %}"{% if section|slice:":6" == "payout" %} aria-current="page"{% endif %}>{% translate "Payouts" %}</a>
      {% fixed_url 'api:credential_list' as api_credentials_url %}
      {% fixed_url 'api:request_log' as api_log_url %}
      <details class="menu{% if section|slice:':4' == 'user' or section == 'language' or namespace == 'api' %} is-current{% endif %}">
        <summary>{% translate "Settings" %}</summary>
        <div class="menu-panel" role="group" aria-label="{% translate "Settings" %}">
          {% if mu.can_manage_users %}
          <a href="{% fixed_url 'portal:user_list' %}">{% translate "Users and roles" %}</a>
          {% if api_credentials_url %}<a href="{{ api_credentials_url }}">{% translate "API credentials" %}</a>{% endif %}
          {% endif %}
          {% if api_log_url %}<a href="{{ api_log_url }}">{% translate "API request log" %}</a>{% endif %}
          <a href="{% fixed_url 'portal:language' %}"{% if section == 'language' %} aria-current="page"{% endif %}>{% translate "Language" %}</a>
          <a href="{% fixed_url 'portal:password_change' %}">{% translate "Change password" %}</a>
        </div>
      </details>
    </nav>
    <div class="account">
      {% if mu %}<span class="account-name">{{ request.user.get_full_name|default:request.user.username }} <span class="role">{{ mu.get_role_display }}</span></span>{% endif %}
      <form method="post" action="{% fixed_url 'portal:logout' %}">
        {% csrf_token %}
        <button type="submit" class="btn btn-quiet btn-small">{% translate "Log out" %}</button>
      </form>
    </div>
  </div>
</header>
{% endwith %}
"""


@pytest.mark.parametrize(
    "path, role, language",
    [
        ("portal:order_list", MerchantUser.Role.OWNER, "en"),
        ("portal:payout_list", MerchantUser.Role.VIEWER, "de"),
        ("portal:user_list", MerchantUser.Role.ADMIN, "sv"),
        ("portal:language", MerchantUser.Role.VIEWER, "en"),
        ("api:credential_list", MerchantUser.Role.OWNER, "de"),
        ("portal:password_change", None, "en"),
    ],
)
def test_the_top_bar_is_what_the_layouts_tags_wrote(
    rf, merchant_user, path, role, language
):
    from django.middleware.csrf import get_token
    from django.urls import resolve

    from portal.display import portal_header

    merchant_user.user.first_name = 'Ann "<b>"'
    merchant_user.merchant.name = "Shop & <Co>"
    request = rf.get(reverse(path))
    request.resolver_match = resolve(request.path)
    request.user = merchant_user.user
    if role is not None:
        merchant_user.role = role
        request.merchant_user = merchant_user
    token = get_token(request)
    with translation.override(language):
        theirs = Template(HEADER_TEMPLATE).render(
            Context({"request": request, "csrf_token": token})
        )
        ours = portal_header(request, token)
    assert _tags(ours) == _tags(theirs)
    assert ("merchant-name" in ours) is (role is not None)


# URL patterns in the order a request tries them (portal/urls.py) ----------------

_SAMPLES = {
    "uuid": "12345678-1234-5678-1234-567812345678",
    "int": "7",
    "str": "abc",
    "path": "a/b",
}


def _routes(patterns, prefix=""):
    """Every route of the URLconf without regular expressions, with its
    converters' sample values filled in."""
    from django.urls import URLResolver
    from django.urls.resolvers import RoutePattern

    for pattern in patterns:
        if not isinstance(pattern.pattern, RoutePattern):
            continue
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, route)
        else:
            yield route


def test_every_route_is_reached_by_its_own_paths():
    """The groups of patterns are ordered for speed (``portal/urls.py``); none
    shadows another's path, so each route's paths still reach that route."""
    from django.urls import get_resolver, resolve

    routes = list(_routes(get_resolver().url_patterns))
    assert len(routes) > 60
    for route in routes:
        path = "/" + re.sub(r"<(\w+):\w+>", lambda m: _SAMPLES[m.group(1)], route)
        assert resolve(path).route == route, path


# {% static %} found once per process (portal.templatetags.assets) ----------------


def _static(path: str) -> str:
    return Template("{% load assets %}{% static path %}").render(
        Context({"path": path})
    )


def test_the_static_tag_gives_djangos_url_and_follows_its_settings(settings):
    from django.templatetags.static import static

    from portal.templatetags import assets

    node = Template("{% load assets %}{% static 'css/app.css' %}").nodelist[-1]
    assert isinstance(node, assets.StaticNode)
    for _ in range(2):  # the second from the memo
        assert _static("css/app.css") == static("css/app.css") == "/static/css/app.css"
    assert _static("a b&c.css") == static("a b&c.css")
    assert (
        Template("{% load assets %}{% static 'x.css' as url %}[{{ url }}]").render(
            Context()
        )
        == "[/static/x.css]"
    )

    settings.STATIC_URL = "https://cdn.example/assets/"
    assert _static("css/app.css") == "https://cdn.example/assets/css/app.css"
    settings.STATIC_URL = "static/"
    assert _static("css/app.css") == static("css/app.css")


def test_every_template_takes_static_from_the_assets_library():
    """``{% load static %}`` would be Django's tag, without the memo."""
    from pathlib import Path

    from django.conf import settings

    templates = Path(settings.BASE_DIR, "templates").rglob("*.html")
    loading = [
        str(path)
        for path in templates
        if re.search(r"\{% load [^%]*\bstatic\b", path.read_text())
    ]
    assert loading == []


def test_a_missing_key_names_itself_without_every_field(captured_order):
    """``TemplateLookups``: the template engine's ``form[name]`` before
    ``form.name`` raises at once; a field is still found by its name."""
    from refunds.forms import RefundForm

    form = RefundForm(captured_order)
    with pytest.raises(KeyError, match="'refundable' not found in 'RefundForm'"):
        form["refundable"]
    assert form["kind"].name == "kind"
    assert Template("{{ form.refundable.0 }}").render(Context({"form": form})) == str(
        form.refundable[0]
    )
