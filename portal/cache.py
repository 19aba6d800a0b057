"""The cache backends: Redis with one client per connection pool, and the
database cache with an ``incr`` that counts right across processes.

Django's Redis backend builds a new ``redis.Redis`` client for every operation:
55 µs, more than the GET it then sends (44 µs), on every request that reads its
session (issue 16). A client holds no connection (it borrows one from the pool
per command) and is safe to share between threads, so here each pool keeps one.

The database cache:

Django's database cache increments by reading and then writing the value, so two
processes that count at once both write the same number and one hit is lost. The
rate limit and the throttles count with ``incr``: here it locks the row first
(``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's immediate transactions serialise
writers), so the database fallback counts exactly like Redis's ``INCR``.
"""

import base64
import pickle

from django.core.cache.backends.db import DatabaseCache as DjangoDatabaseCache
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
from django.db import connections, router, transaction
from django.utils import timezone


class _SharedClients(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            pool = self._get_connection_pool(write)
            client = self._clients[index] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    """Django's Redis cache, one client per connection pool."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _SharedClients


class DatabaseCache(DjangoDatabaseCache):
    def incr(self, key, delta=1, version=None):
        """Add ``delta`` to the stored integer atomically; ``ValueError`` if the
        key is missing or expired (as every Django cache does)."""
        key = self.make_and_validate_key(key, version=version)
        db = router.db_for_write(self.cache_model_class)
        connection = connections[db]
        table = connection.ops.quote_name(self._table)
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        now = connection.ops.adapt_datetimefield_value(
            timezone.now().replace(microsecond=0)
        )
        with transaction.atomic(using=db), connection.cursor() as cursor:
            cursor.execute(
                f"SELECT value FROM {table} WHERE cache_key = %s AND expires > %s"
                f"{lock}",
                [key, now],
            )
            row = cursor.fetchone()
            if row is None:
                raise ValueError(f"Key '{key}' not found")
            value = pickle.loads(base64.b64decode(row[0].encode())) + delta
            pickled = pickle.dumps(value, self.pickle_protocol)
            cursor.execute(
                f"UPDATE {table} SET value = %s WHERE cache_key = %s",
                [base64.b64encode(pickled).decode("latin1"), key],
            )
        return value
