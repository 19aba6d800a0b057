"""Authentication backend: the logged-in user with their merchant user, in one query.

Every portal page needs ``request.user`` and its ``MerchantUser`` (role and
merchant). Django's ``ModelBackend`` loads the user alone, and
``merchant_required`` then asked for the merchant user: two queries on every
request. ``MerchantModelBackend.get_user`` joins both (``select_related`` on the
one-to-one), so the merchant user is read fresh on every request in the same
query: a role change or a deactivated account takes effect on the next request,
with nothing cached in the session that could go stale (our rule).

The query is the ORM's own, compiled once per process (``UserQuery``): building
and compiling a three-table ``select_related`` took about 1 ms of every request,
ten times what PostgreSQL needs to answer it (issue 16).
"""

import functools

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError
from django.db import connections, router
from django.db.models.query import get_related_populators
from django.db.models.sql.compiler import SQLCompiler

#: What the merchant portal needs with the user (``merchant_required``).
RELATED = "merchant_user__merchant"
#: The primary key the query is compiled with; each call binds its own.
_PLACEHOLDER_PK = 0


class UserQuery:
    """``User.objects.select_related(RELATED).get(pk=...)``, compiled once.

    The SQL, its selected columns and the ``select_related`` populators come from
    the ORM (``QuerySet.query.get_compiler().as_sql()``, as ``ModelIterable`` uses
    them); each call only runs the SQL with its primary key, applies the
    database's converters and builds the user, merchant user and merchant with
    ``Model.from_db``. A user without a merchant user gets None cached, as
    ``select_related`` does (no query when it is asked for).
    """

    def __init__(self, using: str) -> None:
        model = get_user_model()
        queryset = (
            model._default_manager.db_manager(using)
            .select_related(RELATED)
            .filter(pk=_PLACEHOLDER_PK)
        )
        self.using = using
        self.model = model
        self.query = queryset.query
        compiler = self.query.get_compiler(using)
        self.sql, params = compiler.as_sql()
        if list(params) != [_PLACEHOLDER_PK]:
            raise ValueError(f"Unexpected parameters in the user query: {params!r}")
        self.columns = [column for column, _sql, _alias in compiler.select]
        info = compiler.klass_info
        start, end = info["select_fields"][0], info["select_fields"][-1] + 1
        self.user_slice = slice(start, end)
        self.init_list = [column.target.attname for column in self.columns[start:end]]
        fetch_mode = queryset._fetch_mode
        self.from_db = functools.partial(model.from_db, fetch_mode=fetch_mode)
        self.populators = get_related_populators(
            info, compiler.select, using, fetch_mode
        )

    def get(self, pk):
        """The user with primary key ``pk`` (already a Python value), or None."""
        connection = connections[self.using]
        with connection.cursor() as cursor:
            cursor.execute(self.sql, [pk])
            rows = cursor.fetchall()
        if not rows:
            return None
        compiler = SQLCompiler(self.query, connection, self.using)
        converters = compiler.get_converters(self.columns)
        row = (
            next(iter(compiler.apply_converters(rows, converters)))
            if converters
            else rows[0]
        )
        user = self.from_db(self.using, self.init_list, row[self.user_slice])
        for populator in self.populators:
            populator.populate(row, user)
        return user


@functools.cache
def user_query(using: str) -> UserQuery:
    """The compiled user query for database ``using`` (one per process)."""
    return UserQuery(using)


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
