"""Any part of a customer's name is searchable fast on PostgreSQL: a trigram index
on UPPER(name) serves ``name__icontains`` (UPPER(name) LIKE '%TEXT%'). pg_trgm is a
trusted extension (PostgreSQL 13+): the database owner may create it. SQLite
needs nothing."""

from django.db import migrations

CREATE = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    'CREATE INDEX IF NOT EXISTS "customer_name_trgm" ON "customers_customer" '
    'USING gin ((UPPER("name"::text)) gin_trgm_ops)',
]


def add_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in CREATE:
            schema_editor.execute(statement)


def drop_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute('DROP INDEX IF EXISTS "customer_name_trgm"')


class Migration(migrations.Migration):
    dependencies = [("customers", "0005_balance_from_entries")]

    operations = [migrations.RunPython(add_trigram_index, drop_trigram_index)]
