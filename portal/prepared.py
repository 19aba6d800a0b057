"""Queries PostgreSQL plans for their parameters on every call (issue 16).

On PostgreSQL the portal runs with prepared statements (``portal/settings.py``):
psycopg prepares a query the second time a pooled connection runs it, and after
five executions PostgreSQL may switch the statement to a *generic* plan, made
without looking at the parameters. That is right for lookups by key (the order
page) and wrong for searches, whose best plan depends on what is searched: the
generic plan of the order list's ``… LIKE $2 … ORDER BY created_at DESC LIMIT
26`` walks the merchant's newest orders testing each, which for an email prefix
that matches nothing ("maja@") read all 333,000 of the merchant's orders: 324 ms
at 1,000,000 orders, against 0.4 ms planned with the text (a trigram index
lookup, then a sort of what it found).
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections


@contextmanager
def planned_per_call(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Inside, queries on ``using`` are not prepared: PostgreSQL plans each one
    for its parameters (a custom plan), at the cost of planning it (about 1 ms
    for the order list's query). Use it around queries whose best plan depends
    on the values searched for, not on the shape of the query.

    No effect where statements are not prepared (SQLite, or
    ``DATABASE_PREPARED_STATEMENTS=0``). Only single statements are affected;
    ``executemany`` goes through as it is.
    """
    connection = connections[using]
    if not connection.settings_dict.get("OPTIONS", {}).get("prepare_threshold"):
        yield
        return

    def unprepared(execute, sql, params, many, context):
        if many:
            return execute(sql, params, many, context)
        # What Django's CursorWrapper._execute does, with psycopg's prepare=False.
        connection.validate_no_broken_transaction()
        with connection.wrap_database_errors:
            return context["cursor"].cursor.execute(sql, params, prepare=False)

    with connection.execute_wrapper(unprepared):
        yield
