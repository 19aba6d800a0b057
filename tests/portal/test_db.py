"""The database backend's pool (``portal.db``): the connection returned last is
handed out first, so a process stays on the connection whose statements are
prepared (issue 16)."""

import pytest
from django.db import connection

from portal.db.base import MostRecentFirstPool

pytestmark = pytest.mark.postgres


def backend_pids(connections) -> list[int]:
    return [c.info.backend_pid for c in connections]


def test_the_pool_hands_out_the_connection_returned_last(db):
    pool = connection.pool
    assert type(pool) is MostRecentFirstPool
    taken = [pool.getconn() for _ in range(3)]
    pids = backend_pids(taken)
    for conn in taken:  # returned first, second, third
        pool.putconn(conn)
    again = [pool.getconn() for _ in range(3)]
    try:
        assert backend_pids(again) == pids[::-1]
    finally:
        for conn in again:
            pool.putconn(conn)


def test_one_use_after_another_stays_on_one_server_connection(db):
    """Sequential use (a sync worker's requests) stays on one server process
    however many the pool holds idle, so each query is prepared and planned
    there once, not on every connection of the pool in turn."""
    pool = connection.pool
    idle = [pool.getconn() for _ in range(3)]
    for conn in idle:
        pool.putconn(conn)
    used = set()
    for _ in range(6):
        with pool.connection() as conn:
            used.add(conn.info.backend_pid)
    assert len(used) == 1
