"""Django's PostgreSQL backend with a pool that hands out the connection
returned last (``ENGINE = "portal.db"``; ``portal/settings.py`` sets it when
the pool is on).

Queries run as prepared statements, and a prepared statement lives on one
server connection: psycopg prepares a query the second time a connection runs
it, and PostgreSQL plans it for its parameters on each of its first five runs
there before it may keep one plan (``portal/settings.py``, ``portal.prepared``).
psycopg's pool hands out the connection returned *first*, so a process using
one connection at a time (a sync gunicorn worker) went round every connection
of its pool (three after its first requests): each connection prepared and
planned each query on its own, and a refund's statements were still being
planned after 30 requests (issue 16). Handing out the one returned last keeps a
process on its warmest connection, as SQLAlchemy's ``pool_use_lifo``; the
others stay idle, and the pool closes idle connections above ``min_size``
after ``max_idle`` (10 minutes), taking the longest unused first.
"""

from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool


class MostRecentFirstPool(ConnectionPool):
    """A ``psycopg_pool.ConnectionPool`` that hands out the connection returned
    to it last (last in, first out).

    The pool keeps its idle connections in a deque: returned ones are appended
    on the right, handed out and closed ones are taken from the left. Moving
    the right end to the left before each hand-out makes that the connection
    returned last; the others keep their order, so shrinking still closes the
    longest unused one. (Overrides ``_get_ready_connection``, psycopg_pool 3.3's
    internal; ``tests/portal/test_db.py`` fails first if it changes.)
    """

    def _get_ready_connection(self, timeout):
        if self._pool:
            self._pool.rotate(1)
        return super()._get_ready_connection(timeout)


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self):
        """Django's pool (``OPTIONS["pool"]``), as ``MostRecentFirstPool``.
        Django creates it unopened on first use; its class is set before it
        opens (the subclass adds behaviour only, no state)."""
        pool = super().pool
        if pool is not None and type(pool) is ConnectionPool:
            pool.__class__ = MostRecentFirstPool
        return pool
