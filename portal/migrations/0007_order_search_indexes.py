"""Finding orders from part of what people remember, at 1,000,000 orders: on
PostgreSQL, a text_pattern_ops index for the short reference's prefix
(reference LIKE 'HH9WZ%') and a trigram index on UPPER(merchant_reference1) for
any part of the store's order number ("10886" finds NW-10886 and #10886). SQLite
needs neither; TrigramExtension does nothing there."""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

CREATE = [
    'CREATE INDEX IF NOT EXISTS "order_reference_prefix" ON "portal_order" '
    '("reference" varchar_pattern_ops)',
    'CREATE INDEX IF NOT EXISTS "order_merchant_ref1_trgm" ON "portal_order" '
    'USING gin ((UPPER("merchant_reference1"::text)) gin_trgm_ops)',
]
DROP = [
    'DROP INDEX IF EXISTS "order_reference_prefix"',
    'DROP INDEX IF EXISTS "order_merchant_ref1_trgm"',
]


def add_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in CREATE:
            schema_editor.execute(statement)


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in DROP:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("portal", "0006_database_cache_table")]

    operations = [
        TrigramExtension(),
        migrations.RunPython(add_indexes, drop_indexes),
    ]
