"""The bench database: created fresh, migrated, with merchants and their users."""

import contextlib
import os
from urllib.parse import urlsplit, urlunsplit

import psycopg

DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"


def database_url(name: str) -> str:
    """``DATABASE_URL`` (if set) with its database name replaced by ``name``."""
    base = urlsplit(os.environ.get("DATABASE_URL") or DEFAULT_SERVER)
    if not base.scheme.startswith("postgres"):
        base = urlsplit(DEFAULT_SERVER)
    return urlunsplit(base._replace(path=f"/{name}"))


def recreate(url: str) -> None:
    """Drop the database of ``url`` if it exists and create it empty."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            [name],
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def settle(url: str) -> None:
    """Bring a freshly loaded database to the state a database in use is in
    before anything is measured: ``VACUUM`` (the visibility map and hint bits
    set, which autovacuum keeps in production; index-only scans then skip the
    table) and ``CHECKPOINT`` (the load's dirty pages written now, not while
    pages are timed). The load writes with ``synchronous_commit = off`` and
    autovacuum may be off on the machine, so measuring could otherwise start
    while its writes are still being flushed and hint bits still being set.
    PostgreSQL only; about 5 s at 1,000,000 orders."""
    if not urlsplit(url).scheme.startswith("postgres"):
        return
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM")
        # A role without pg_checkpoint: the writes settle on their own.
        with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
            conn.execute("CHECKPOINT")


def create_merchants(specs: list[dict]) -> list:
    """The merchants (one admin user each, password unusable: the bench logs in by
    session) as ``bench.loader.Merchant`` records with their ids."""
    from django.contrib.auth import get_user_model

    from bench.loader import FEE_RATE_BP, Merchant
    from portal.models import Merchant as MerchantModel
    from portal.models import MerchantUser

    merchants = []
    for spec in specs:
        model = MerchantModel.objects.create(
            name=spec["name"],
            slug=spec["slug"],
            country=spec["country"],
            currency=spec["currency"],
            locale=spec["locale"],
            fee_rate_bp=FEE_RATE_BP,
        )
        user = get_user_model().objects.create_user(
            username=f"bench-{spec['country'].lower()}",
            email=f"admin@{spec['slug']}.example",
        )
        MerchantUser.objects.create(
            user=user, merchant=model, role=MerchantUser.Role.ADMIN
        )
        merchants.append(
            Merchant(
                pk=model.pk,
                name=model.name,
                country=model.country,
                currency=model.currency,
                locale=model.locale,
                tax_rate=spec["tax_rate"],
                prices=spec["prices"],
                prefix=spec["prefix"],
                admin_user_id=user.pk,
            )
        )
    return merchants
