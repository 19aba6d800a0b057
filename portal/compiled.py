"""Queries filtered by one key whose SQL is compiled once per process.

Every request loads the person it is for by primary key, always with the same
query: the merchant user with their merchant (``portal.backends``), the customer
with their unread notifications (``customers.auth``); the order page runs the
same six queries filtered by its order; a refund's preview and confirm read the
order's captures, lines, capture lines, plans and installments (read only or
locked) by order. Building and compiling such a query with the ORM cost
0.5-1 ms of CPU, several times what PostgreSQL needs to answer it (issue 16).
The classes here compile the ORM's own query once and, per call, bind the key
and run it:

- ``CompiledObjects`` builds from the rows the objects the queryset would: the
  same SQL (ordering and ``FOR UPDATE`` included), the same database
  converters, ``select_related`` objects through Django's own populators and
  annotations as attributes (as ``ModelIterable``); ``CompiledGet`` is its
  ``QuerySet.get`` by primary key;
- ``CompiledRows`` returns the tuples a ``values_list`` queryset would;
- ``together`` runs several of them in one round trip to PostgreSQL.

Nothing is cached but the SQL: every call runs the query. They use Django's
compiler internals (``klass_info``, ``get_related_populators``,
``apply_converters``); tests compare them with the ORM,
so a Django upgrade that changes those internals fails there first.
"""

import contextlib
import functools

from django.db import connections
from django.db.models import QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.db.models.query import ValuesListIterable, get_related_populators
from django.db.models.sql.compiler import SQLCompiler
from django.utils.functional import cached_property

from portal.pipeline import sent_together

#: The two values each key is compiled with, to find which parameter is the key;
#: each call binds its own there.
_PROBE_KEYS = (0, 1)


def _compile(filtered, probes=(_PROBE_KEYS,)) -> tuple:
    """``(queryset, compiler, sql, params, key_positions)`` for
    ``filtered(*keys)``, a queryset filtered by ``len(probes)`` keys: compiled
    with each key's two probe values in turn to find which parameter is that
    key. Raises ``ValueError`` when that cannot be told (a key is not exactly
    one parameter)."""

    def compile_with(keys) -> tuple:
        candidate = filtered(*keys)
        compiler = candidate.query.get_compiler(candidate.db)
        return candidate, compiler, *compiler.as_sql()

    base = [first for first, _second in probes]
    queryset, compiler, sql, params = compile_with(base)
    positions = []
    for index, (_first, second) in enumerate(probes):
        *_, other_sql, other = compile_with([*base[:index], second, *base[index + 1 :]])
        keys = []
        if other_sql == sql and len(params) == len(other):
            keys = [
                i for i, (a, b) in enumerate(zip(params, other, strict=True)) if a != b
            ]
        if len(keys) != 1:
            raise ValueError(
                f"{queryset.query}: cannot tell which parameter is key {index}"
            )
        positions.append(keys[0])
    return queryset, compiler, sql, list(params), positions


def _converters(compiled, query, connection, using: str, columns) -> list:
    """The database converters of ``compiled``'s ``columns`` on ``connection``,
    found once per connection (Django's compiler asks every column on every
    query: about 150 calls a refund preview). Kept on the connection, whose
    backend's converters they are."""
    cache = connection.__dict__.setdefault("_compiled_converters", {})
    converters = cache.get(compiled)
    if converters is None:
        compiler = SQLCompiler(query, connection, using)
        converters = cache[compiled] = (compiler, compiler.get_converters(columns))
    return converters


class CompiledObjects:
    """``queryset.filter(**{lookup: key})`` as model instances, compiled once
    (on first use); ``objects`` returns what iterating the queryset would.

    ``queryset`` may use ``select_related``, ``annotate``, ``order_by`` and
    ``select_for_update`` (the lock is in the SQL, taken on every call); not
    ``only``, ``values`` or prefetching. It must run on one database.
    ``lookups`` (``"pk"`` without any) are lookups whose values are one query
    parameter each (``"order"``, ``"plan__order"``, ``"merchant", "order_id"``),
    bound by ``objects(*keys)`` in that order. Raises ``ValueError`` for a
    queryset it cannot compile that way.
    """

    def __init__(self, queryset: QuerySet, *lookups: str) -> None:
        if queryset._prefetch_related_lookups or queryset._fields is not None:
            raise ValueError("CompiledObjects builds model instances, nothing else")
        self.queryset = queryset
        self.lookups = lookups or ("pk",)

    @cached_property
    def _compiled(self) -> tuple:
        """Compiled when first used, so importing a module that makes one needs
        no database."""
        # Each key as the database takes it (a UUID is text on SQLite), probed
        # with values of its type.
        key_fields = []
        for lookup in self.lookups:
            *_, targets, _rest = self.queryset.query.names_to_path(
                lookup.split(LOOKUP_SEP), self.queryset.model._meta
            )
            key_fields.append(targets[0])
        queryset, compiler, sql, params, positions = _compile(
            lambda *keys: self.queryset.filter(
                **dict(zip(self.lookups, keys, strict=True))
            ),
            [tuple(map(field.to_python, _PROBE_KEYS)) for field in key_fields],
        )
        columns = [column for column, _sql, _alias in compiler.select]
        info = compiler.klass_info
        start, end = info["select_fields"][0], info["select_fields"][-1] + 1
        init_list = [c.target.attname for c in columns[start:end]]
        if len(init_list) != len(queryset.model._meta.concrete_fields):
            raise ValueError(
                "CompiledObjects loads every column (no only() or defer())"
            )
        fetch_mode = queryset._fetch_mode
        return (
            list(zip(positions, key_fields, strict=True)),
            sql,
            params,
            queryset.query,
            columns,
            slice(start, end),
            init_list,
            list(compiler.annotation_col_map.items()),
            functools.partial(queryset.model.from_db, fetch_mode=fetch_mode),
            get_related_populators(info, compiler.select, queryset.db, fetch_mode),
        )

    def objects(self, *keys) -> list:
        """The objects for ``keys`` (Python values of the lookups' types, such as
        a primary key), in the queryset's order. One query."""
        return together((self, keys))[0]

    def _statement(self, connection, keys) -> tuple[str, list]:
        """The SQL and its parameters with ``keys`` bound, for ``connection``."""
        key_fields, sql, params, *_ = self._compiled
        params = params.copy()
        for (position, field), key in zip(key_fields, keys, strict=True):
            params[position] = field.get_db_prep_value(key, connection)
        return sql, params

    def _build(self, connection, rows) -> list:
        """The objects of ``rows`` as the queryset would build them."""
        if not rows:
            return []
        (
            _key_fields,
            _sql,
            _params,
            query,
            columns,
            model_slice,
            init_list,
            annotations,
            from_db,
            populators,
        ) = self._compiled
        using = self.queryset.db
        compiler, converters = _converters(self, query, connection, using, columns)
        if converters:
            rows = compiler.apply_converters(rows, converters)
        objects = []
        for row in rows:
            obj = from_db(using, init_list, row[model_slice])
            for populator in populators:
                populator.populate(row, obj)
            for name, column in annotations:
                setattr(obj, name, row[column])
            objects.append(obj)
        return objects

    def first(self, *keys):
        """The first object for ``keys`` (as ``objects``), or None. One query."""
        found = self.objects(*keys)
        return found[0] if found else None


class CompiledGet(CompiledObjects):
    """``queryset.get(pk=...)`` compiled once; ``get`` returns None for no row.
    ``queryset`` as ``CompiledObjects`` takes it; compiled when made."""

    def __init__(self, queryset: QuerySet) -> None:
        # As QuerySet.get: no ordering.
        super().__init__(queryset.order_by(), "pk")
        self._compiled  # noqa: B018 - a queryset it cannot compile fails here

    def get(self, pk):
        """The object with primary key ``pk`` (a Python value of the key's type),
        or None. One query."""
        return self.first(pk)


class CompiledRows:
    """``queryset.filter(**{lookup: key})`` (its first ``limit`` rows, when
    given) compiled once (on first use).

    ``queryset`` is a ``values_list`` of field and annotation names (not
    ``flat``, ``named`` or ``extra``) on one database; ``lookup`` is a lookup
    whose value is one query parameter, such as ``"order"`` or
    ``"refund__order"``. Raises ``ValueError`` for a queryset it cannot compile
    that way.
    """

    def __init__(self, queryset: QuerySet, lookup: str, *, limit: int | None = None):
        if queryset._iterable_class is not ValuesListIterable:
            raise ValueError("CompiledRows reads values_list() rows, nothing else")
        if queryset.query.extra_select:
            raise ValueError("CompiledRows reads fields and annotations, not extra")
        self.queryset = queryset
        self.lookup = lookup
        self.limit = limit

    def _filtered(self, key) -> QuerySet:
        filtered = self.queryset.filter(**{self.lookup: key})
        return filtered if self.limit is None else filtered[: self.limit]

    @cached_property
    def _compiled(self) -> tuple:
        """SQL, parameters, key position, query and selected columns (in the
        order of the values_list, annotations included): compiled when first
        used, so importing a module that makes one needs no database."""
        candidate, compiler, sql, params, (position,) = _compile(self._filtered)
        columns = [column for column, _sql, _alias in compiler.select]
        return sql, params, position, candidate.query, columns[: compiler.col_count]

    def rows(self, key) -> list[tuple]:
        """The rows for ``key`` (a Python value of the lookup's type, such as a
        primary key). One query."""
        return together((self, (key,)))[0]

    def _statement(self, connection, keys) -> tuple[str, list]:
        """The SQL and its parameters with the key of ``keys`` bound."""
        sql, params, position, _query, _columns = self._compiled
        params = params.copy()
        (params[position],) = keys
        return sql, params

    def _build(self, connection, rows) -> list[tuple]:
        """The ``values_list`` tuples of ``rows``."""
        _sql, _params, _position, query, columns = self._compiled
        width = len(columns)
        if rows and len(rows[0]) != width:
            rows = [row[:width] for row in rows]
        compiler, converters = _converters(
            self, query, connection, self.queryset.db, columns
        )
        if converters:
            rows = compiler.apply_converters(rows, converters)
        return [tuple(row) for row in rows]


def together(*calls: tuple[CompiledObjects | CompiledRows, tuple]) -> list[list]:
    """For each ``(compiled, keys)`` of ``calls`` (on one database), what
    ``compiled.objects(*keys)`` (``CompiledObjects``) or ``compiled.rows(*keys)``
    (``CompiledRows``) returns, from one round trip to PostgreSQL:
    every query is sent, then every result is read
    (``portal.pipeline.sent_together``). Elsewhere (SQLite) they run one after
    another. Either way they run in the
    given order, so rows are locked (``FOR UPDATE``) in that order, and an
    error in one (a lock timeout) is raised as Django's error (PostgreSQL
    then runs none of the later ones). A refund reads three to five tables by
    one order, the order page five: 60 µs a round trip here, plus the wait in
    Python (issue 16)."""
    if not calls:
        return []
    connection = connections[calls[0][0].queryset.db]
    statements = [compiled._statement(connection, keys) for compiled, keys in calls]
    with contextlib.ExitStack() as stack:
        if len(calls) > 1:
            stack.enter_context(sent_together(connection.alias))
        cursors = [stack.enter_context(connection.cursor()) for _ in statements]
        for cursor, (sql, params) in zip(cursors, statements, strict=True):
            cursor.execute(sql, params)
        results = [cursor.fetchall() for cursor in cursors]
    return [
        compiled._build(connection, rows)
        for (compiled, _keys), rows in zip(calls, results, strict=True)
    ]


def give_prefetched(parents, name: str, children, parent_attname: str) -> None:
    """Hand each of ``parents`` its ``children`` (grouped by the attribute
    ``parent_attname``, e.g. ``"plan_id"``, in their order) as ``prefetch_related``
    would: ``parent.<name>.all()`` then returns them without a query, and anything
    chained on it queries the database as usual. For children read by a
    ``CompiledObjects`` of the parents' common key (one query for all)."""
    by_parent: dict = {}
    for child in children:
        by_parent.setdefault(getattr(child, parent_attname), []).append(child)
    for parent in parents:
        queryset = getattr(parent, name).get_queryset()
        queryset._result_cache = by_parent.get(parent.pk, [])
        queryset._prefetch_done = True
        if not hasattr(parent, "_prefetched_objects_cache"):
            parent._prefetched_objects_cache = {}
        parent._prefetched_objects_cache[name] = queryset
