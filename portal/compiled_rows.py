"""``values_list`` queries filtered by one key, compiled once per process.

The order page runs the same six queries on every request, each filtered by
the order: its lines, captures, refunds, refund lines, repayments and payout
entries. Building and compiling one with the ORM cost about 0.45 ms of CPU,
three to four times what running it and reading its rows cost (issue 16).
``CompiledRows`` compiles the query once and returns, for each key, the rows
iterating the filtered queryset would: the same SQL, the same database
converters, tuples in the order of the ``values_list`` fields.

Nothing is cached but the SQL: every call runs the query.
"""

from django.db import connections
from django.db.models import QuerySet
from django.db.models.query import ValuesListIterable
from django.db.models.sql.compiler import SQLCompiler
from django.utils.functional import cached_property

#: Two keys the query is compiled with, to find which parameter is the key;
#: each call binds its own there.
_PLACEHOLDERS = (0, 1)


class CompiledRows:
    """``queryset.filter(**{lookup: key})`` compiled once (on first use).

    ``queryset`` is a ``values_list`` of field names (not ``flat``, ``named``,
    annotations or ``extra``) on one database; ``lookup`` is a lookup whose
    value is one query parameter, such as ``"order"`` or ``"refund__order"``.
    Raises ``ValueError`` for a queryset it cannot compile that way.
    """

    def __init__(self, queryset: QuerySet, lookup: str) -> None:
        if queryset._iterable_class is not ValuesListIterable:
            raise ValueError("CompiledRows reads values_list() rows, nothing else")
        if queryset.query.annotation_select or queryset.query.extra_select:
            raise ValueError("CompiledRows reads fields, not annotations or extra")
        self.queryset = queryset
        self.lookup = lookup

    @cached_property
    def _compiled(self) -> tuple:
        """SQL, parameters, key position, query and selected columns: compiled
        when first used, so importing a module that makes one needs no
        database."""
        compiled = []
        for key in _PLACEHOLDERS:
            candidate = self.queryset.filter(**{self.lookup: key})
            compiler = candidate.query.get_compiler(candidate.db)
            compiled.append((candidate, compiler, *compiler.as_sql()))
        (candidate, compiler, sql, params), (*_, other_sql, other) = compiled
        keys = []
        if other_sql == sql and len(params) == len(other):
            keys = [
                i for i, (a, b) in enumerate(zip(params, other, strict=True)) if a != b
            ]
        if len(keys) != 1:
            raise ValueError(
                f"{candidate.query}: cannot tell which parameter is the key"
            )
        columns = [column for column, _sql, _alias in compiler.select]
        return (
            sql,
            list(params),
            keys[0],
            candidate.query,
            columns[: compiler.col_count],
        )

    def rows(self, key) -> list[tuple]:
        """The rows for ``key`` (a Python value of the lookup's type, such as a
        primary key). One query."""
        sql, params, position, query, columns = self._compiled
        using = self.queryset.db
        connection = connections[using]
        params = params.copy()
        params[position] = key
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        width = len(columns)
        if rows and len(rows[0]) != width:
            rows = [row[:width] for row in rows]
        compiler = SQLCompiler(query, connection, using)
        converters = compiler.get_converters(columns)
        if converters:
            return list(map(tuple, compiler.apply_converters(rows, converters)))
        return [tuple(row) for row in rows]
