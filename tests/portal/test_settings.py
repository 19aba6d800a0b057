"""Settings refuse an unsafe production configuration and are safe by default.

Each case runs a fresh Python process with its own environment, because settings
are read once at start-up.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
GOOD_KEY = "k3J9xq0LmZp2vR7sT1uW4yB6nC8dE5fG0hI2jK4lM6nO8pQ1rS3tU5vX7zA9bD"


def run(code_or_args: str | list[str], **env_vars: str) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {
            "DEBUG",
            "SECRET_KEY",
            "ALLOWED_HOSTS",
            "DATABASE_URL",
            "SECURE_SSL_REDIRECT",
            "SESSION_COOKIE_SECURE",
            "CSRF_COOKIE_SECURE",
            "SECURE_HSTS_SECONDS",
            "EMAIL_URL",
            # The browser tests' conftest sets it; check --deploy rightly refuses it.
            "DJANGO_ALLOW_ASYNC_UNSAFE",
        }
    }
    env["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    env.update(env_vars)
    args = code_or_args if isinstance(code_or_args, list) else ["-c", code_or_args]
    return subprocess.run(
        [sys.executable, *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_without_a_secret_key_refuses_to_start():
    result = run("import portal.settings", DEBUG="0")
    assert result.returncode != 0
    assert "django.core.exceptions.ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY is not set" in result.stderr


def test_debug_defaults_to_off_so_a_missing_key_is_always_refused():
    result = run("import portal.settings")
    assert "SECRET_KEY is not set" in result.stderr


@pytest.mark.parametrize(
    "weak_key", ["short", "demo-not-secret-but-long-enough-0123456789"]
)
def test_production_refuses_a_weak_secret_key(weak_key):
    result = run("import portal.settings", DEBUG="0", SECRET_KEY=weak_key)
    assert result.returncode != 0
    assert "SECRET_KEY is too weak for production" in result.stderr


def test_development_runs_without_a_secret_key():
    result = run("import portal.settings as s; print(s.DEBUG)", DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_production_defaults_are_secure():
    code = (
        "import portal.settings as s; print(s.DEBUG, s.SESSION_COOKIE_SECURE, "
        "s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS >= 31536000, "
        "s.ALLOWED_HOSTS, 'unsafe-inline' in str(s.SECURE_CSP))"
    )
    result = run(code, DEBUG="0", SECRET_KEY=GOOD_KEY)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "False",
        "True",
        "True",
        "True",
        "True",
        "[]",
        "False",
    ]


def test_check_deploy_reports_no_warnings_for_a_production_configuration():
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DEBUG="0",
        SECRET_KEY=GOOD_KEY,
        ALLOWED_HOSTS="portal.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_responses_carry_the_content_security_policy(client):
    response = client.get("/admin/login/")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in policy
    assert "style-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert response.headers["X-Frame-Options"] == "DENY"


def test_postgresql_is_used_through_psycopgs_connection_pool():
    code = (
        "import portal.settings as s; d = s.DATABASES['default']; "
        "print(d['ENGINE'], d['NAME'], sorted(d['OPTIONS']['pool']))"
    )
    result = run(
        code,
        DEBUG="0",
        SECRET_KEY=GOOD_KEY,
        DATABASE_URL="postgres://portal@db.example.com:5432/portal",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "portal.db",
        "portal",
        "['max_size',",
        "'min_size',",
        "'timeout']",
    ]


CACHE_REPORT = (
    "import portal.settings as s; c = s.CACHES['default']; "
    "print(c['BACKEND'], c.get('OPTIONS', {}).get('parser_class', '-'), "
    "s.SESSION_ENGINE)"
)


def test_production_without_cache_url_shares_the_database_cache_never_a_local_one():
    result = run(CACHE_REPORT, DEBUG="0", SECRET_KEY=GOOD_KEY, CACHE_URL="")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "portal.cache.DatabaseCache",
        "-",
        "django.contrib.sessions.backends.cached_db",
    ]


def test_cache_url_redis_uses_djangos_redis_backend_with_hiredis_and_shared_clients():
    result = run(
        CACHE_REPORT
        + "; import redis._parsers.hiredis as h; print(h.HIREDIS_AVAILABLE)",
        DEBUG="0",
        SECRET_KEY=GOOD_KEY,
        CACHE_URL="redis://127.0.0.1:6379/0",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "portal.cache.RedisCache",
        "redis._parsers.hiredis._HiredisParser",
        "django.contrib.sessions.backends.cached_db",
        "True",
    ]


def test_a_per_process_cache_never_holds_sessions():
    result = run(CACHE_REPORT, DEBUG="1", CACHE_URL="")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.core.cache.backends.locmem.LocMemCache",
        "-",
        "django.contrib.sessions.backends.db",
    ]


def test_the_wsgi_application_freezes_what_startup_made():
    """``portal.wsgi`` moves the objects of Django's startup out of the garbage
    collector's generations (``gc.freeze``), in the process that serves."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import gc, portal.wsgi; print(gc.get_freeze_count())",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "DEBUG": "1", "SECRET_KEY": "x"},
    )
    assert int(out.stdout.strip()) > 10_000
