"""Lookups by primary key whose SQL is compiled once per process.

Every request loads the person it is for by primary key, always with the same
query: the merchant user with their merchant (``portal.backends``), the customer
with their unread notifications (``customers.auth``). Building and compiling
such a query with the ORM cost about 1 ms of each request, ten times what
PostgreSQL needs to answer it (issue 16). ``CompiledGet`` compiles it once and
builds from each row the objects ``QuerySet.get`` would: the same SQL, the same
database converters, ``select_related`` objects through Django's own
populators and annotations as attributes (as ``ModelIterable`` does).

Nothing is cached but the SQL: every call runs the query.
"""

import functools

from django.db import connections
from django.db.models import QuerySet
from django.db.models.query import get_related_populators
from django.db.models.sql.compiler import SQLCompiler

#: Two keys the query is compiled with, to find which parameter is the key;
#: each call binds its own there.
_PLACEHOLDERS = (0, 1)


class CompiledGet:
    """``queryset.get(pk=...)`` compiled once; ``get`` returns None for no row.

    ``queryset`` may use ``select_related`` and ``annotate`` (not ``only``,
    ``values`` or prefetching); it must run on one database.
    """

    def __init__(self, queryset: QuerySet) -> None:
        if queryset._prefetch_related_lookups or queryset._fields is not None:
            raise ValueError("CompiledGet builds model instances, nothing else")
        compiled = []
        for pk in _PLACEHOLDERS:
            # As QuerySet.get: no ordering.
            candidate = queryset.filter(pk=pk).order_by()
            compiler = candidate.query.get_compiler(candidate.db)
            compiled.append((candidate, compiler, *compiler.as_sql()))
        (queryset, compiler, self.sql, params), (*_, other_sql, other) = compiled
        keys = []
        if other_sql == self.sql and len(params) == len(other):
            keys = [
                i for i, (a, b) in enumerate(zip(params, other, strict=True)) if a != b
            ]
        if len(keys) != 1:
            raise ValueError(
                f"{queryset.query}: cannot tell which parameter is the key"
            )
        self.params, self.key_position = list(params), keys[0]
        self.model = queryset.model
        self.using = queryset.db
        self.query = queryset.query
        self.columns = [column for column, _sql, _alias in compiler.select]
        info = compiler.klass_info
        start, end = info["select_fields"][0], info["select_fields"][-1] + 1
        self.model_slice = slice(start, end)
        self.init_list = [c.target.attname for c in self.columns[start:end]]
        if len(self.init_list) != len(self.model._meta.concrete_fields):
            raise ValueError("CompiledGet loads every column (no only() or defer())")
        self.annotations = list(compiler.annotation_col_map.items())
        fetch_mode = queryset._fetch_mode
        self.from_db = functools.partial(self.model.from_db, fetch_mode=fetch_mode)
        self.populators = get_related_populators(
            info, compiler.select, self.using, fetch_mode
        )

    def get(self, pk):
        """The object with primary key ``pk`` (a Python value of the key's type),
        or None. One query."""
        connection = connections[self.using]
        params = self.params.copy()
        params[self.key_position] = pk
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
        if not rows:
            return None
        compiler = SQLCompiler(self.query, connection, self.using)
        converters = compiler.get_converters(self.columns)
        if converters:
            rows = list(compiler.apply_converters(rows, converters))
        row = rows[0]
        obj = self.from_db(self.using, self.init_list, row[self.model_slice])
        for populator in self.populators:
            populator.populate(row, obj)
        for name, position in self.annotations:
            setattr(obj, name, row[position])
        return obj
