"""The cluster (``tests.cluster.harness``), started once for the module that asks
for it. Skipped with the reason on SQLite, without HAProxy or without Redis."""

import os

import pytest
from django.db import connections

from tests.cluster.harness import Cluster, missing_requirements


@pytest.fixture(scope="session")
def cluster():
    url = os.environ.get("DATABASE_URL", "")
    if connections["default"].vendor != "postgresql":
        url = ""
    if reason := missing_requirements(url):
        pytest.skip(f"the two-server cluster {reason}")
    running = Cluster(url)
    try:
        running.start()
        yield running
    finally:
        running.stop()
