"""Many rows of one table changed in one statement: ``UPDATE … FROM (VALUES …)``.

Django's ``bulk_update`` writes a ``CASE WHEN pk = … THEN … END`` per field with
one branch per row; building and compiling those expressions cost more than the
rest of a refund's writes together (issue 16). Here the values travel as a
``VALUES`` list joined to the table on the primary key: one statement, whatever
the number of rows, on PostgreSQL and on SQLite (3.33 or later), both of which
name the columns of a ``VALUES`` list ``column1``, ``column2``, …
"""

from collections.abc import Mapping, Sequence

from django.db import connections, router
from django.db.models import Model


def update_rows(
    model: type[Model],
    fields: Sequence[str],
    rows: Mapping[int, Sequence],
    *,
    add: bool = False,
) -> int:
    """Write ``fields`` of many rows of ``model`` in one statement.

    ``rows`` maps a primary key to the row's values, in the order of ``fields``.
    The values replace the columns, or with ``add=True`` are added to them in
    SQL (counters: what the row holds when the statement runs is what grows, and
    the table's CHECK constraints judge the result). No statement without rows.
    Returns the number of rows changed.
    """
    if not rows:
        return 0
    meta = model._meta
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    model_fields = [meta.get_field(name) for name in fields]
    assignments = ", ".join(
        f"{quote(field.column)} = {table}.{quote(field.column)} + v.column{i}"
        if add
        else f"{quote(field.column)} = v.column{i}"
        for i, field in enumerate(model_fields, 2)
    )
    row_sql = "(" + ", ".join(["%s"] * (len(fields) + 1)) + ")"
    params = []
    for pk, values in rows.items():
        params.append(pk)
        params.extend(
            field.get_db_prep_save(value, connection)
            for field, value in zip(model_fields, values, strict=True)
        )
    sql = (
        f"UPDATE {table} SET {assignments} "
        f"FROM (VALUES {', '.join([row_sql] * len(rows))}) AS v "
        f"WHERE {table}.{quote(meta.pk.column)} = v.column1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
