"""Authentication backend: the logged-in user with their merchant user, in one query.

Every portal page needs ``request.user`` and its ``MerchantUser`` (role and
merchant). Django's ``ModelBackend`` loads the user alone, and
``merchant_required`` then asked for the merchant user: two queries on every
request. ``MerchantModelBackend.get_user`` joins both (``select_related`` on the
one-to-one), so the merchant user is read fresh on every request in the same
query: a role change or a deactivated account takes effect on the next request,
with nothing cached in the session that could go stale (our rule).
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend


class MerchantModelBackend(ModelBackend):
    """``ModelBackend`` whose ``get_user`` also loads ``user.merchant_user`` and
    its merchant (a user without one gets no merchant user; nothing is raised)."""

    def get_user(self, user_id):
        """The active user with primary key ``user_id``, or None (as ModelBackend)."""
        try:
            user = (
                get_user_model()
                ._default_manager.select_related("merchant_user__merchant")
                .get(pk=user_id)
            )
        except get_user_model().DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None
