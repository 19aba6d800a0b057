"""Accent-insensitive name search: ``Customer.search_name`` (the folded name, kept
by ``Customer.save``), filled in for existing customers, and on PostgreSQL a
trigram index on it and on UPPER(email) (any part: "muller", "example.org", also
LIKE 'MAJA@%') plus a text_pattern_ops index for names starting with one or two
letters. pg_trgm is a trusted extension; TrigramExtension does nothing on SQLite,
which needs no index to work."""

import unicodedata

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations, models

CREATE = [
    'CREATE INDEX IF NOT EXISTS "customer_search_name_trgm" ON "customers_customer" '
    'USING gin ("search_name" gin_trgm_ops)',
    'CREATE INDEX IF NOT EXISTS "customer_search_name_prefix" ON "customers_customer" '
    '("search_name" varchar_pattern_ops)',
    'CREATE INDEX IF NOT EXISTS "customer_email_trgm" ON "customers_customer" '
    'USING gin ((UPPER("email"::text)) gin_trgm_ops)',
]
DROP = [
    'DROP INDEX IF EXISTS "customer_search_name_trgm"',
    'DROP INDEX IF EXISTS "customer_search_name_prefix"',
    'DROP INDEX IF EXISTS "customer_email_trgm"',
]


def fold(text: str) -> str:
    # A copy of customers.models.fold as it was when this migration was written.
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def fill_search_names(apps, schema_editor):
    Customer = apps.get_model("customers", "Customer")
    batch = []
    for customer in Customer.objects.only("pk", "name").iterator(chunk_size=2000):
        customer.search_name = fold(customer.name)
        batch.append(customer)
        if len(batch) == 2000:
            Customer.objects.bulk_update(batch, ["search_name"])
            batch = []
    Customer.objects.bulk_update(batch, ["search_name"])


def add_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in CREATE:
            schema_editor.execute(statement)


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in DROP:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("customers", "0010_installment_plan_protect")]

    operations = [
        TrigramExtension(),
        migrations.AddField(
            model_name="customer",
            name="search_name",
            field=models.CharField(blank=True, editable=False, max_length=400),
        ),
        migrations.RunPython(fill_search_names, migrations.RunPython.noop),
        migrations.RunPython(add_indexes, drop_indexes),
    ]
