"""Statements sent to PostgreSQL without waiting for each answer (psycopg's
pipeline mode): one round trip for many statements.

A sync worker waits about 60 µs for each statement's answer on this machine,
plus psycopg's work for each wait; a refund confirm ran 19 statements, a
refund preview six (issue 16). In a pipeline, statements are sent as they are
executed and answered together: at the end of the block, or earlier when a
result is read (a ``RETURNING`` or ``SELECT`` waits for its own answer and
those before it). Elsewhere (SQLite, psycopg 2) statements run one after
another as usual.

What a pipeline does not give: a statement's row count before the block ends
(``cursor.rowcount`` is -1 until then). Code that reads it, such as Django's
``Model.save`` (an ``UPDATE`` that changed no row becomes an ``INSERT``, or an
error with ``update_fields``), must not run in ``sent_together``.
"""

import contextlib

from django.db import DEFAULT_DB_ALIAS, connections


def can_pipeline(connection) -> bool:
    """Whether ``connection`` can send statements in a pipeline: PostgreSQL
    through psycopg 3 with libpq 14 or newer."""
    if connection.vendor != "postgresql":
        return False
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    if not is_psycopg3:
        return False
    import psycopg

    return psycopg.Pipeline.is_supported()


@contextlib.contextmanager
def sent_together(using: str = DEFAULT_DB_ALIAS):
    """Statements executed in the block are sent without waiting for their
    answers and answered together at its end (one round trip, less the reads
    in it). They run in order as usual; an error in one is raised as Django's
    error (``IntegrityError``...) where it is answered, at the latest when
    the block ends, and PostgreSQL runs none of the later ones. Nothing in the
    block may read a row count (module docstring)."""
    connection = connections[using]
    if not can_pipeline(connection):
        yield
        return
    connection.ensure_connection()
    with connection.wrap_database_errors:
        pipeline = connection.connection.pipeline()
        pipeline.__enter__()
        try:
            yield
        except BaseException:
            # A statement's error answered in the block is reported again
            # when the pipeline ends ("pipeline aborted"), which psycopg would
            # log as an ignored error: the one raised in the block counts.
            with contextlib.suppress(Exception):
                pipeline.__exit__(None, None, None)
            raise
        pipeline.__exit__(None, None, None)
