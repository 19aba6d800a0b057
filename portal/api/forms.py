"""Forms of the API settings pages: issue a credential, filter the request log."""

import uuid
from dataclasses import dataclass

from django import forms
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .models import ApiCredential, ApiRequestLog

LOG_PAGE_SIZE = 50


@dataclass(frozen=True)
class IssuedCredential:
    """A new credential and its secret, which exists only in this response."""

    credential: ApiCredential
    secret: str


class CredentialForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        label=gettext_lazy("Name"),
        help_text=gettext_lazy(
            "What will use it, e.g. “Shop backend” or “ERP integration”."
        ),
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "placeholder": gettext_lazy("Shop backend")}
        ),
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError(_("Give the credential a name."))
        return name

    def save(self, merchant, *, by) -> IssuedCredential:
        credential, secret = ApiCredential.issue(
            merchant, self.cleaned_data["name"], by=by
        )
        return IssuedCredential(credential, secret)


@dataclass(frozen=True)
class LogPage:
    entries: list[ApiRequestLog]
    next_cursor: int | None
    is_first: bool


class RequestLogFilterForm(forms.Form):
    OUTCOMES = [
        ("", gettext_lazy("All requests")),
        ("errors", gettext_lazy("Errors only")),
        ("ok", gettext_lazy("Successful only")),
    ]

    q = forms.CharField(
        required=False,
        max_length=255,
        label=gettext_lazy("Correlation ID or path"),
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "placeholder": gettext_lazy("e.g. 3f2a… or /refunds"),
            }
        ),
    )
    outcome = forms.ChoiceField(
        required=False, choices=OUTCOMES, label=gettext_lazy("Outcome")
    )
    before = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def filter(self, entries: QuerySet) -> QuerySet:
        q = self.cleaned_data["q"].strip()
        if q:
            try:
                entries = entries.filter(correlation_id=uuid.UUID(q))
            except ValueError:
                entries = entries.filter(Q(path__icontains=q) | Q(error_code__iexact=q))
        outcome = self.cleaned_data["outcome"]
        if outcome == "errors":
            entries = entries.filter(status__gte=400)
        elif outcome == "ok":
            entries = entries.filter(status__lt=400)
        return entries

    def page(self, entries: QuerySet) -> LogPage:
        """Newest first, keyset-paginated by id: one query however long the log."""
        entries = self.filter(entries).order_by("-pk")
        before = self.cleaned_data["before"]
        if before:
            entries = entries.filter(pk__lt=before)
        rows = list(entries[: LOG_PAGE_SIZE + 1])
        more = len(rows) > LOG_PAGE_SIZE
        rows = rows[:LOG_PAGE_SIZE]
        return LogPage(rows, rows[-1].pk if more else None, is_first=not before)
