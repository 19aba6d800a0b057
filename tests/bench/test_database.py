"""The bench's database helpers."""

import psycopg
import pytest
from django.db import connection

from bench.database import settle


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_settle_vacuums_a_loaded_database_before_it_is_measured():
    settings = connection.settings_dict
    url = (
        f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}"
        f"/{settings['NAME']}"
    )
    settle(url)
    with psycopg.connect(url) as conn:
        vacuumed = conn.execute(
            "SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables "
            "WHERE relname = 'portal_order'"
        ).fetchone()[0]
    assert vacuumed
