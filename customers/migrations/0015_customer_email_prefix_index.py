"""On PostgreSQL, a text_pattern_ops index on UPPER(email) for the order list's
email prefix search ("maja@": ``UPPER(email) LIKE 'MAJA@%'``, issue 16).

Neither ``customer_email_upper`` (a plain btree: LIKE can use it only under the C
collation) nor the trigram index serves a prefix well: on 2,000 customers
PostgreSQL read every row (0.9 ms); this index is a range seek at any size.
SQLite has no operator classes and needs none.
"""

from django.db import migrations

CREATE = (
    'CREATE INDEX IF NOT EXISTS "customer_email_prefix" ON "customers_customer" '
    '((UPPER("email"::text)) text_pattern_ops)'
)
DROP = 'DROP INDEX IF EXISTS "customer_email_prefix"'


def add_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("customers", "0014_ordering_by_column")]

    operations = [migrations.RunPython(add_index, drop_index)]
