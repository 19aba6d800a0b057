"""On PostgreSQL, drop ``order_reference_prefix`` (migration 0007): Django
already gives the unique ``reference`` column the same index,
``portal_order_reference_…_like`` (``varchar_pattern_ops``), which serves
``reference LIKE 'HH9WZ%'`` alike. Two copies cost 40 MB at 1,000,000 orders
and a second write on every new order (issue 16)."""

from django.db import migrations

DROP = 'DROP INDEX IF EXISTS "order_reference_prefix"'
CREATE = (
    'CREATE INDEX IF NOT EXISTS "order_reference_prefix" ON "portal_order" '
    '("reference" varchar_pattern_ops)'
)


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


def add_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


class Migration(migrations.Migration):
    dependencies = [("portal", "0011_order_customer_search")]

    operations = [migrations.RunPython(drop_index, add_index)]
