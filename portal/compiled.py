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
- ``CompiledShapes`` does the same for querysets whose filters vary (the
  order list's search and filters), compiled once per shape of query;
- ``together`` runs several of them in one round trip to PostgreSQL.

Nothing is cached but the SQL: every call runs the query. They use Django's
compiler internals (``klass_info``, ``get_related_populators``,
``apply_converters``); tests compare them with the ORM,
so a Django upgrade that changes those internals fails there first.
"""

import contextlib
import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.base import ModelState
from django.db.models.constants import LOOKUP_SEP
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.query import (
    NamedValuesListIterable,
    ValuesListIterable,
    get_related_populators,
)
from django.db.models.query_utils import DeferredAttribute
from django.db.models.signals import post_init, pre_init
from django.db.models.sql.compiler import SQLCompiler
from django.db.models.utils import create_namedtuple_class
from django.utils.functional import cached_property

from portal.pipeline import sent_together

#: The two values each key is compiled with, to find which parameter is the key;
#: each call binds its own there.
_PROBE_KEYS = (0, 1)


def _compile(filtered, probes) -> tuple:
    """``(queryset, compiler, sql, params, key_positions)`` for
    ``filtered(*keys)``, a queryset filtered by ``len(probes)`` keys (two values
    of each key's type, ``_probes``): compiled with each key's two probe
    values in turn to find which parameter is that key. Raises ``ValueError``
    when that cannot be told (a key is not exactly one parameter)."""

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


def _key_fields(queryset: QuerySet, lookups) -> list:
    """The field each of ``lookups`` compares (a foreign key's target): the
    key as the database takes it (a UUID is text on SQLite)."""
    fields = []
    for lookup in lookups:
        *_, targets, _rest = queryset.query.names_to_path(
            lookup.split(LOOKUP_SEP), queryset.model._meta
        )
        fields.append(targets[0])
    return fields


def _probes(key_fields) -> list[tuple]:
    """For ``_compile``: two values of each key's type."""
    return [tuple(map(field.to_python, _PROBE_KEYS)) for field in key_fields]


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
        key_fields = _key_fields(self.queryset, self.lookups)
        queryset, compiler, sql, params, positions = _compile(
            lambda *keys: self.queryset.filter(
                **dict(zip(self.lookups, keys, strict=True))
            ),
            _probes(key_fields),
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
            _from_db(queryset.model, init_list, fetch_mode),
            _direct_populators(
                get_related_populators(info, compiler.select, queryset.db, fetch_mode)
            ),
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


#: How ``Model.__init__`` stores a plain field's value: ``setattr`` through
#: these class attributes, which on a new instance writes the instance's
#: ``__dict__`` (a foreign key's clears a cached object a new one has not).
_PLAIN_ATTRIBUTES = (DeferredAttribute, ForeignKeyDeferredAttribute)


def _from_db(model, attnames: list[str], fetch_mode):
    """``model.from_db`` for full rows of ``attnames`` (its concrete fields'
    attnames in order), as a function of ``(using, init_list, values)``.

    ``Model.from_db`` costs 9-18 µs an instance (``Model.__init__``: two
    signals, a ``setattr`` per field); a refund preview builds about 20 and a
    confirm more (issue 16). For a model with Django's own ``from_db`` and
    ``__init__``, no ``__setattr__`` of its own and plain field attributes,
    while nothing listens to ``pre_init`` or ``post_init``, this builds the
    same instance directly: its ``_state`` (not adding, ``db``, the fetch
    mode) and each value in its ``__dict__``, in ``Model.__init__``'s order.
    Any other model, or with a listener, takes ``Model.from_db``. Our rule;
    ``tests/portal/test_compiled_rows.py`` compares the two."""
    slow = functools.partial(model.from_db, fetch_mode=fetch_mode)
    plain = (
        model.from_db.__func__ is Model.from_db.__func__
        and model.__init__ is Model.__init__
        and model.__setattr__ is object.__setattr__
        and not model._meta.abstract
        and all(
            type(getattr(model, name, None)) in _PLAIN_ATTRIBUTES for name in attnames
        )
    )
    if not plain:
        return slow
    new = object.__new__

    def from_db(using, init_list, values):
        if pre_init.receivers or post_init.receivers:
            return slow(using, init_list, values)
        obj = new(model)
        state = ModelState()
        state.adding = False
        state.db = using
        if fetch_mode is not None:
            state.fetch_mode = fetch_mode
        fields = obj.__dict__
        fields["_state"] = state
        fields.update(zip(attnames, values, strict=True))
        return obj

    return from_db


def _direct_populators(populators: list) -> list:
    """Django's ``select_related`` populators (``RelatedPopulator``), each
    building its full rows with ``_from_db``: they call their ``from_db``
    attribute, ``Model.from_db`` with the fetch mode bound."""
    for populator in populators:
        model = populator.model_cls
        attnames = [f.attname for f in model._meta.concrete_fields]
        if populator.init_list == attnames:
            populator.from_db = _from_db(model, attnames, populator.fetch_mode)
        _direct_populators(populator.related_populators)
    return populators


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
    """``queryset.filter(**{lookup: key, ...})`` (its first ``limit`` rows,
    when given) compiled once (on first use).

    ``queryset`` is a ``values_list`` of field and annotation names (not
    ``flat``, ``named`` or ``extra``) on one database; ``lookups`` are lookups
    whose values are one query parameter each, such as ``"order"``,
    ``"refund__order"`` or ``"capture__order__merchant",
    "capture__order__order_id"``, bound by ``rows(*keys)`` in that order.
    Raises ``ValueError`` for a queryset it cannot compile that way.
    """

    def __init__(
        self, queryset: QuerySet, *lookups: str, limit: int | None = None
    ) -> None:
        if queryset._iterable_class is not ValuesListIterable:
            raise ValueError("CompiledRows reads values_list() rows, nothing else")
        if queryset.query.extra_select:
            raise ValueError("CompiledRows reads fields and annotations, not extra")
        if not lookups:
            raise ValueError("CompiledRows filters by at least one lookup")
        self.queryset = queryset
        self.lookups = lookups
        self.limit = limit

    def _filtered(self, *keys) -> QuerySet:
        filtered = self.queryset.filter(**dict(zip(self.lookups, keys, strict=True)))
        return filtered if self.limit is None else filtered[: self.limit]

    @cached_property
    def _compiled(self) -> tuple:
        """SQL, parameters, each key's position and field, query and selected
        columns (in the order of the values_list, annotations included):
        compiled when first used, so importing a module that makes one needs
        no database."""
        key_fields = _key_fields(self.queryset, self.lookups)
        candidate, compiler, sql, params, positions = _compile(
            self._filtered, _probes(key_fields)
        )
        columns = [column for column, _sql, _alias in compiler.select]
        return (
            sql,
            params,
            list(zip(positions, key_fields, strict=True)),
            candidate.query,
            columns[: compiler.col_count],
        )

    def rows(self, *keys) -> list[tuple]:
        """The rows for ``keys`` (Python values of the lookups' types, such as
        a primary key). One query."""
        return together((self, keys))[0]

    def _statement(self, connection, keys) -> tuple[str, list]:
        """The SQL and its parameters with ``keys`` bound."""
        sql, params, key_fields, _query, _columns = self._compiled
        params = params.copy()
        for (position, field), key in zip(key_fields, keys, strict=True):
            params[position] = field.get_db_prep_value(key, connection)
        return sql, params

    def _build(self, connection, rows) -> list[tuple]:
        """The ``values_list`` tuples of ``rows``."""
        _sql, _params, _position, query, columns = self._compiled
        rows = _values(self, query, columns, self.queryset.db, connection, rows)
        return [tuple(row) for row in rows]


def _values(owner, query, columns, using: str, connection, rows):
    """``rows`` as a ``values_list`` queryset of ``query`` gives them: cut to
    its ``columns`` (the compiler may select more, for ordering) and through
    their database converters (found once per ``owner`` and connection)."""
    width = len(columns)
    if rows and len(rows[0]) != width:
        rows = [row[:width] for row in rows]
    compiler, converters = _converters(owner, query, connection, using, columns)
    if converters:
        rows = compiler.apply_converters(rows, converters)
    return rows


#: Distinct probe values of each kind of field, two per key (``CompiledShapes``):
#: texts without a LIKE wildcard or escape, so a pattern keeps them as they are,
#: but with both cases, an accent and spaces at both ends, so a build that
#: changes them (lower(), upper(), strip(), folding) is found out.
_PROBES = {
    "text": lambda index, turn: f" Zq Ä{index}x{turn} ",
    "integer": lambda index, turn: 700_001 + 1000 * turn + index,
    "datetime": lambda index, turn: datetime(
        2001 + turn, 1, 1, 0, 0, index, tzinfo=UTC
    ),
    "uuid": lambda index, turn: uuid.UUID(int=1 + 1000 * turn + index),
}


def _probe_kind(field) -> str:
    kind = field.get_internal_type()
    if kind in ("CharField", "TextField", "EmailField", "SlugField"):
        return "text"
    if kind in ("DateTimeField",):
        return "datetime"
    if kind in ("UUIDField",):
        return "uuid"
    if kind.endswith(("IntegerField", "AutoField")) or kind == "ForeignKey":
        return "integer"
    raise ValueError(f"{field}: no probe values for a {kind}")


class CompiledShapes:
    """``values_list`` querysets made by ``build(shape, **values)``, compiled
    once per ``shape`` (and database connection); each call binds its values
    into that SQL and runs it (``rows``).

    ``shape`` is whatever changes the SQL (which filters apply, which kind of
    search): ``build`` must make the same SQL for every ``values`` of one
    shape, and pass each value to the ORM unchanged. ``fields`` names, for
    each key of ``values``, the model field it is compared with. A value
    reaches the SQL as that field's database value (an exact or range
    comparison) or, for a text in a ``LIKE`` lookup (``contains``,
    ``startswith`` and their case-insensitive forms), as Django writes its
    pattern: escaped by ``prep_for_like_query`` between the lookup's ``%``.

    Each shape is compiled twice, with two probe values per key, and each SQL
    parameter is traced to the key whose probes it follows; the second
    compilation is then rebuilt from the first's bindings and must match
    exactly. A shape that cannot be bound that way (a value that reaches the
    SQL in another form, such as a text the build lower-cases, strips or
    folds: the text probes are mixed-case, accented and padded) raises
    ``ValueError`` when first used. Building and
    compiling the order list's query for a text search took the ORM 0.55-0.7
    ms of CPU, more than PostgreSQL's 0.4 ms to run it (issue 16).
    """

    def __init__(self, build, fields: dict) -> None:
        self.build = build
        self.fields = fields
        self._shapes: dict = {}

    def rows(self, shape, **values) -> list[tuple]:
        """The ``values_list`` rows (named tuples for ``named=True``) of
        ``build(shape, **values)``. One query.

        Raises ``ValueError`` for values other than the keys the shape was
        first used with, for None (the ORM would write ``IS NULL``, another
        SQL: give it a shape of its own) and for an integer outside its
        column's range (the ORM would leave the comparison out): check such
        values before."""
        compiled = self._shapes.get(shape)
        if compiled is None:
            compiled = self._shapes[shape] = self._compile(shape, sorted(values))
        if values.keys() != compiled.keys:
            raise ValueError(f"{shape}: values for {sorted(compiled.keys)} expected")
        if None in values.values():
            raise ValueError(f"{shape}: None is not a value to bind")
        connection = connections[compiled.alias]
        like = connection.ops.prep_for_like_query
        params = []
        for kind, key, first, second in compiled.bindings:
            if kind == "const":
                params.append(first)
            elif kind == "value":
                value = first.get_db_prep_value(values[key], connection)
                if second and not second[0] <= value <= second[1]:
                    raise ValueError(f"{key}: {value} is out of its column's range")
                params.append(value)
            else:
                params.append(f"{first}{like(values[key])}{second}")
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        rows = _values(
            compiled, compiled.query, compiled.columns, compiled.alias, connection, rows
        )
        if compiled.row_class is None:
            return [tuple(row) for row in rows]
        new = tuple.__new__
        return [new(compiled.row_class, row) for row in rows]

    def _compile(self, shape, keys: list[str]) -> "_Shape":
        """``shape``'s SQL and, for each of its parameters, how a call's
        values give it: a constant, a key's database value or a key's ``LIKE``
        pattern. Raises ``ValueError`` when a parameter follows no key's probes
        as one of those."""
        kinds = {key: _probe_kind(self.fields[key]) for key in keys}
        probes = [
            {key: _PROBES[kinds[key]](index, turn) for index, key in enumerate(keys)}
            for turn in (0, 1)
        ]
        compiled = []
        for values in probes:
            queryset = self.build(shape, **values)
            compiler = queryset.query.get_compiler(queryset.db)
            compiled.append((queryset, compiler, *compiler.as_sql()))
        (queryset, compiler, sql, first), (_, _, other_sql, second) = compiled
        if queryset._iterable_class not in (
            ValuesListIterable,
            NamedValuesListIterable,
        ):
            raise ValueError("CompiledShapes reads values_list() rows, nothing else")
        if other_sql != sql or len(first) != len(second):
            raise ValueError(f"{shape}: the SQL depends on the values")
        connection = connections[queryset.db]
        bindings = []
        for a, b in zip(first, second, strict=True):
            binding = ("const", None, a, None) if a == b else None
            for key in keys if binding is None else ():
                field, probe, other = self.fields[key], probes[0][key], probes[1][key]
                if kinds[key] == "text" and isinstance(a, str) and probe in a:
                    before, _, after = a.partition(probe)
                    if before == after == "":
                        binding = ("value", key, field, None)
                    elif {*before, *after} == {"%"}:
                        binding = ("like", key, before, after)
                    if binding and f"{before}{other}{after}" != b:
                        binding = None
                elif field.get_db_prep_value(probe, connection) == a:
                    # An integer's column range, checked when bound.
                    limits = None
                    if kinds[key] == "integer":
                        target = getattr(field, "target_field", field)
                        limits = connection.ops.integer_field_range(
                            target.get_internal_type()
                        )
                    binding = ("value", key, field, limits)
                    if field.get_db_prep_value(other, connection) != b:
                        binding = None
                if binding:
                    break
            if binding is None:
                raise ValueError(f"{shape}: parameter {a!r} follows no value")
            bindings.append(binding)
        columns = [column for column, _sql, _alias in compiler.select]
        columns = columns[: compiler.col_count]
        names = (
            queryset._fields
            if queryset._iterable_class is NamedValuesListIterable
            else None
        )
        return _Shape(
            keys=set(keys),
            alias=queryset.db,
            sql=sql,
            bindings=bindings,
            query=queryset.query,
            columns=columns,
            row_class=create_namedtuple_class(*names) if names else None,
        )


@dataclass(eq=False)
class _Shape:
    """One compiled shape of ``CompiledShapes`` (hashed by identity: the key of
    its converters on a connection)."""

    keys: set
    alias: str
    sql: str
    bindings: list
    query: object
    columns: list
    row_class: type | None


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
