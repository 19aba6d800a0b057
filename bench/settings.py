"""Benchmark settings: the production settings, plus a query-count header and the
ceiling view. Served by gunicorn with ``DJANGO_SETTINGS_MODULE=bench.settings``;
``bench/run.py`` sets the environment (DEBUG=0, a long SECRET_KEY, DATABASE_URL...).
"""

import os

from portal.settings import *  # noqa: F403
from portal.settings import MIDDLEWARE

# Outermost, so the queries of every middleware (sessions, auth) are counted too.
MIDDLEWARE = ["bench.middleware.QueryCountMiddleware", *MIDDLEWARE]
ROOT_URLCONF = "bench.urls"
# collectstatic writes the hashed files (whitenoise manifest) here, outside the repo.
STATIC_ROOT = os.environ.get("BENCH_STATIC_ROOT", "/tmp/bench/static")
# The bench makes its own sessions and logs no failed logins.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
# The API's per-merchant rate limit (300 a minute) would turn a throughput measurement
# into a measurement of 429 responses.
API_RATE_LIMIT = (1_000_000, 60)
