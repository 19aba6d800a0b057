"""Customer forms. Rule violations from the models (``DomainError``) become form
errors on the field they name; nothing is changed when a form is invalid."""

from django import forms
from django.core.validators import RegexValidator
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.exceptions import DomainError

from .models import LoginCodeRejected, PaymentMethod, Repayment, ReturnReport


class DomainErrorForm(forms.Form):
    def add_domain_error(self, error: DomainError) -> None:
        field = error.field if error.field in self.fields else None
        self.add_error(field, error.message)


class EmailForm(forms.Form):
    email = forms.EmailField(
        label=_("Email address"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )


class CodeForm(DomainErrorForm):
    code = forms.CharField(
        label=_("6-digit code"),
        validators=[
            RegexValidator(r"^\d{6}$", _("Enter the 6 digits from the email."))
        ],
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "pattern": r"\d{6}",
                "maxlength": 6,
                "autofocus": True,
            }
        ),
    )

    def __init__(self, email: str, login_code_id: int | None, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.email = email
        self.login_code_id = login_code_id

    def clean_code(self) -> str:
        return self.cleaned_data["code"].strip()

    def login(self):
        """The customer the code logs in, or ``None`` with the reason as an error."""
        from .models import LoginCode

        try:
            return LoginCode.verify(
                self.login_code_id, self.email, self.cleaned_data["code"]
            )
        except LoginCodeRejected as error:
            self.add_domain_error(error)
            return None


class ReturnReportForm(DomainErrorForm):
    tracking_number = forms.CharField(
        label=_("Tracking number"),
        max_length=100,
        help_text=_("From the shipping receipt of the parcel you sent back."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    shipped_on = forms.DateField(
        label=_("Date you sent it"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def __init__(self, order, *args, **kwargs):
        kwargs.setdefault("initial", {"shipped_on": timezone.localdate()})
        super().__init__(*args, **kwargs)
        self.order = order

    def clean_tracking_number(self) -> str:
        value = self.cleaned_data["tracking_number"].strip()
        if not value:
            raise forms.ValidationError(_("Enter the tracking number."))
        return value

    def save(self) -> ReturnReport | None:
        try:
            return ReturnReport.report(
                self.order,
                tracking_number=self.cleaned_data["tracking_number"],
                shipped_on=self.cleaned_data["shipped_on"],
            )
        except DomainError as error:
            self.add_domain_error(error)
            return None


class RepaymentDetailsForm(DomainErrorForm):
    kind = forms.ChoiceField(
        label=_("Where should the money go?"),
        choices=PaymentMethod.Kind.choices,
        widget=forms.RadioSelect,
        initial=PaymentMethod.Kind.CARD,
    )
    provider = forms.CharField(
        label=_("Card or bank"),
        max_length=40,
        help_text=_("For example Visa, Mastercard or the name of your bank."),
    )
    last4 = forms.CharField(
        label=_("Last 4 digits"),
        validators=[RegexValidator(r"^\d{4}$", _("Enter the last 4 digits."))],
        help_text=_("Never the full number."),
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "off", "maxlength": 4}
        ),
    )

    def __init__(self, repayment: Repayment, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.repayment = repayment

    def clean_provider(self) -> str:
        value = " ".join(self.cleaned_data["provider"].split())
        if not value:
            raise forms.ValidationError(_("Enter the card brand or bank name."))
        return value

    def save(self) -> PaymentMethod | None:
        """New details become the customer's default method and the repayment is
        sent again to them; nothing is saved if it cannot be sent again."""
        label = f"{self.cleaned_data['provider']} •••• {self.cleaned_data['last4']}"
        try:
            with transaction.atomic():
                method = self.repayment.customer.add_payment_method(
                    self.cleaned_data["kind"], label
                )
                self.repayment.reissue(method)
        except DomainError as error:
            self.add_domain_error(error)
            return None
        return method
