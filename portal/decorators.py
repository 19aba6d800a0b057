"""Access to the merchant portal: who is logged in, for which merchant, in what role.

``merchant_required`` is the first line of every portal view: it sends anonymous
visitors to the login page, refuses accounts that belong to no merchant, and sets
``request.merchant_user`` and ``request.merchant`` so that every queryset in the
view can be scoped with ``for_merchant(request.merchant)``. It also switches the
request to the merchant user's language (``activate_merchant_language``).
"""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from portal.models import MerchantUser

#: Permission name (a ``MerchantUser`` property) -> what a refused person is told.
PERMISSIONS = {
    "can_refund": gettext_lazy("refund orders"),
    "can_manage_orders": gettext_lazy("capture, cancel or release orders"),
    "can_manage_users": gettext_lazy("manage the users of this merchant"),
    "can_manage_api_credentials": gettext_lazy("create or revoke API credentials"),
}


def activate_merchant_language(
    request: HttpRequest, merchant_user: MerchantUser
) -> None:
    """Read the rest of this request in the merchant user's language (their
    choice, else their store's: ``MerchantUser.portal_language``), whatever the
    browser's Accept-Language. ``LocaleMiddleware`` then sends it as
    Content-Language; base.html puts it in ``<html lang>`` (issue 15)."""
    language = merchant_user.portal_language
    translation.activate(language)
    request.LANGUAGE_CODE = language


def _forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return TemplateResponse(
        request, "portal/forbidden.html", {"message": message}, status=403
    )


def merchant_user_of(user) -> MerchantUser | None:
    """The user's merchant user, or None. Loaded with the user by
    ``portal.backends.MerchantModelBackend`` (no query); a user loaded another way
    (a session from another backend) costs one query here."""
    try:
        return user.merchant_user
    except MerchantUser.DoesNotExist:
        return None


def merchant_required(
    view: Callable | None = None, *, permission: str | None = None
) -> Callable:
    """Require a logged-in, active merchant user (and ``permission``, if given).

    Use as ``@merchant_required`` or ``@merchant_required(permission="can_refund")``.
    """
    if permission is not None and permission not in PERMISSIONS:
        raise ValueError(f"Unknown permission {permission!r}")

    def decorator(view_func: Callable) -> Callable:
        @wraps(view_func)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            merchant_user = merchant_user_of(request.user)
            if merchant_user is None:
                return _forbidden(
                    request,
                    _(
                        "Your account is not linked to a merchant, so the merchant "
                        "portal has nothing to show you."
                    ),
                )
            request.merchant_user = merchant_user
            request.merchant = merchant_user.merchant
            activate_merchant_language(request, merchant_user)
            if permission and not getattr(merchant_user, permission):
                return _forbidden(
                    request,
                    _(
                        "Your role (%(role)s) does not allow you to %(action)s. Ask "
                        "an admin or the owner of this merchant account."
                    )
                    % {
                        "role": merchant_user.get_role_display(),
                        "action": PERMISSIONS[permission],
                    },
                )
            return view_func(request, *args, **kwargs)

        return wrapper

    if view is not None:
        return decorator(view)
    return decorator
