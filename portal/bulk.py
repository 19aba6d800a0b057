"""Many rows of one table written in one statement: ``UPDATE … FROM (VALUES …)``
(``update_rows``) and ``INSERT … VALUES … RETURNING`` (``insert_rows``).

Django's ``bulk_update`` writes a ``CASE WHEN pk = … THEN … END`` per field with
one branch per row; building and compiling those expressions cost more than the
rest of a refund's writes together (issue 16). Here the values travel as a
``VALUES`` list joined to the table on the primary key: one statement, whatever
the number of rows, on PostgreSQL and on SQLite (3.33 or later), both of which
name the columns of a ``VALUES`` list ``column1``, ``column2``, …
"""

import functools
from collections.abc import Collection, Mapping, Sequence

from django.db import connections, models, router
from django.db.models import Field, Model

#: Fields whose database value is the Python value itself when that value is
#: of the exact type given (or None): ``get_db_prep_save`` returns it unchanged
#: (their ``get_prep_value`` is ``str``, ``int`` or ``bool`` of it) on every
#: backend. Any other value, and every other field, goes through
#: ``get_db_prep_save``. Keys are exact classes: a subclass may prepare its
#: values otherwise.
_PLAIN_TYPES: dict[type, type] = {
    models.CharField: str,
    models.TextField: str,
    models.IntegerField: int,
    models.SmallIntegerField: int,
    models.BigIntegerField: int,
    models.PositiveIntegerField: int,
    models.PositiveSmallIntegerField: int,
    models.PositiveBigIntegerField: int,
    models.BooleanField: bool,
}
_AUTO_KEYS = (models.AutoField, models.BigAutoField, models.SmallAutoField)


def _plain_type(field: Field) -> type | None:
    """The type whose values ``field`` writes as they are (``_PLAIN_TYPES``; a
    foreign key to an integer primary key writes ints as they are), or None."""
    if type(field).pre_save is not Field.pre_save:
        return None  # e.g. auto_now_add: its value is made when saved
    if isinstance(field, models.ForeignKey) and type(field) in (
        models.ForeignKey,
        models.OneToOneField,
    ):
        return int if type(field.target_field) in _AUTO_KEYS else None
    return _PLAIN_TYPES.get(type(field))


@functools.cache
def _insert_fields(model: type[Model]) -> tuple[tuple[Field, str, type | None], ...]:
    """The columns ``insert_rows`` writes: every concrete field but the
    auto-incremented key and generated ones, each with its attribute name and
    ``_plain_type``."""
    meta = model._meta
    return tuple(
        (field, field.attname, _plain_type(field))
        for field in meta.concrete_fields
        if field is not meta.auto_field and not field.generated
    )


def update_rows(
    model: type[Model],
    fields: Sequence[str],
    rows: Mapping[int, Sequence],
    *,
    add: bool | Collection[str] = False,
) -> int:
    """Write ``fields`` of many rows of ``model`` in one statement.

    ``rows`` maps a primary key to the row's values, in the order of ``fields``.
    The values replace the columns, or with ``add=True`` (or for the fields
    named in ``add``) are added to them in SQL (counters: what the row holds
    when the statement runs is what grows, and the table's CHECK constraints
    judge the result). No statement without rows. Returns the number of rows
    changed.
    """
    if not rows:
        return 0
    meta = model._meta
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    model_fields = [meta.get_field(name) for name in fields]
    added = set(fields) if add is True else set(add or ())
    assignments = ", ".join(
        f"{quote(field.column)} = {table}.{quote(field.column)} + v.column{i}"
        if field.name in added
        else f"{quote(field.column)} = v.column{i}"
        for i, field in enumerate(model_fields, 2)
    )
    row_sql = "(" + ", ".join(["%s"] * (len(fields) + 1)) + ")"
    plain = [_plain_type(field) for field in model_fields]
    params = []
    for pk, values in rows.items():
        params.append(pk)
        for field, kind, value in zip(model_fields, plain, values, strict=True):
            if kind is not None and (value is None or type(value) is kind):
                params.append(value)  # what get_db_prep_save would give
            else:
                params.append(field.get_db_prep_save(value, connection))
    sql = (
        f"UPDATE {table} SET {assignments} "
        f"FROM (VALUES {', '.join([row_sql] * len(rows))}) AS v "
        f"WHERE {table}.{quote(meta.pk.column)} = v.column1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


#: The most parameters ``insert_rows`` puts in one statement: psycopg converts
#: a statement's ``%s`` parameter markers once and keeps the result for statements
#: of up to 50 parameters (``psycopg._queries.MAX_CACHED_STATEMENT_PARAMS``);
#: beyond that it converts them again on every call, about a tenth of a
#: 5-line refund confirm's Python calls (issue 16).
STATEMENT_PARAMS = 50
#: ... in at most this many statements: more rows than that are one statement,
#: so the number of statements stays bounded whatever the number of rows.
MAX_STATEMENTS = 2


def insert_rows(objs: Sequence[Model], *, returning: bool = True) -> None:
    """Insert ``objs``, new instances of one model with an auto-incremented
    primary key, in one statement (or two, below), and set their primary keys
    (unless ``returning`` is False: they are not read back, so the statement does not
    wait for its answer in ``portal.pipeline.sent_together``): what
    ``bulk_create`` does (field defaults and ``pre_save``, such as
    ``auto_now_add``, apply; no signals are sent), without building and
    compiling the ORM's insert query on every call, and without preparing the
    values that need no preparing (``_plain_type``). The ORM's insert machinery
    was a fifth of a refund confirm's Python time for its five inserts (issue
    16). An instance holding an expression (a ``db_default`` left unset) is
    inserted by ``bulk_create`` instead. No statement without objects; two
    when the rows take more than ``STATEMENT_PARAMS`` parameters and fit in two
    such statements (in ``sent_together`` they still travel together when
    nothing is read back); one for more rows.
    """
    if not objs:
        return
    model = type(objs[0])
    meta = model._meta
    using = router.db_for_write(model)
    connection = connections[using]
    columns = _insert_fields(model)
    fields = [field for field, _attname, _plain in columns]
    params = []
    for obj in objs:
        obj._prepare_related_fields_for_save(operation_name="insert_rows")
        for field, attname, plain in columns:
            if plain is not None:
                value = getattr(obj, attname)
                if value is None or type(value) is plain:
                    params.append(value)  # what get_db_prep_save would give
                    continue
            else:
                value = field.pre_save(obj, True)
            if hasattr(value, "resolve_expression"):
                model._base_manager.using(using).bulk_create(objs)
                return
            params.append(field.get_db_prep_save(value, connection))
    quote = connection.ops.quote_name
    head = (
        f"INSERT INTO {quote(meta.db_table)} "
        f"({', '.join(quote(field.column) for field in fields)}) VALUES "
    )
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    width = len(fields)
    per_statement = max(1, STATEMENT_PARAMS // width)
    if -(-len(objs) // per_statement) > MAX_STATEMENTS:
        per_statement = len(objs)
    keys = []
    with connection.cursor() as cursor:
        for start in range(0, len(objs), per_statement):
            rows = min(per_statement, len(objs) - start)
            sql = head + ", ".join([row_sql] * rows)
            chunk = params[start * width : (start + rows) * width]
            if not returning:
                cursor.execute(sql, chunk)
                continue
            cursor.execute(f"{sql} RETURNING {quote(meta.pk.column)}", chunk)
            # Rows come back in the order of the VALUES list (as bulk_create
            # relies on).
            keys.extend(row[0] for row in cursor.fetchall())
    if not returning:
        return
    for obj, key in zip(objs, keys, strict=True):
        obj.pk = key
        obj._state.adding = False
        obj._state.db = using
