"""Authentication backend: the logged-in user with their merchant user, in one query.

Every portal page needs ``request.user`` and its ``MerchantUser`` (role and
merchant). Django's ``ModelBackend`` loads the user alone, and
``merchant_required`` then asked for the merchant user: two queries on every
request. ``MerchantModelBackend.get_user`` joins both (``select_related`` on the
one-to-one), so the merchant user is read fresh on every request in the same
query: a role change or a deactivated account takes effect on the next request,
with nothing cached in the session that could go stale (our rule). The query's
SQL is compiled once per process (``portal.compiled``).
"""

import functools

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError
from django.db import router

from portal.compiled import CompiledGet

#: What the merchant portal needs with the user (``merchant_required``).
RELATED = "merchant_user__merchant"


@functools.cache
def user_query(using: str) -> CompiledGet:
    """The user with their merchant user and merchant, on database ``using``."""
    model = get_user_model()
    return CompiledGet(model._default_manager.db_manager(using).select_related(RELATED))


class MerchantModelBackend(ModelBackend):
    """``ModelBackend`` whose ``get_user`` also loads ``user.merchant_user`` and
    its merchant (a user without one gets no merchant user; nothing is raised)."""

    def get_user(self, user_id):
        """The active user with primary key ``user_id``, or None (as ModelBackend)."""
        model = get_user_model()
        try:
            pk = model._meta.pk.to_python(user_id)
        except ValidationError:
            return None
        user = user_query(router.db_for_read(model)).get(pk)
        return user if user is not None and self.user_can_authenticate(user) else None
