"""Test settings: the real settings, with test-friendly environment defaults."""

import os

os.environ.setdefault("DEBUG", "0")
os.environ.setdefault(
    "SECRET_KEY", "test-secret-key-that-is-long-enough-for-the-check-0123456789"
)
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("EMAIL_URL", "consolemail://")
# A per-process cache for speed and isolation (sessions then live in the
# database); the tests of shared state run against Redis and the database cache
# through the ``shared_cache`` fixture.
os.environ.setdefault("CACHE_URL", "locmemcache://")

from portal.settings import *

STORAGES["staticfiles"]["BACKEND"] = (
    "django.contrib.staticfiles.storage.StaticFilesStorage"
)
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tasks run on commit, inline; tests of the worker itself switch to the database backend.
TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False

# Concurrency tests run 24 clients at once; each thread holds its own connection.
if "pool" in DATABASES["default"].get("OPTIONS", {}):
    DATABASES["default"]["OPTIONS"]["pool"]["max_size"] = 40
# Serve static files from the app folders as in development (no collectstatic).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
