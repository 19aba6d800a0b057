"""The order search matches the customer on the order's own copies of their
folded name and email (``Order.customer_search_name``,
``customer_search_email``; issue 16), filled here from the customers.

On PostgreSQL each kind of match has an index on the orders: trigram for any
part of the name or the email, ``varchar_pattern_ops`` for the start of a name
(shorter than three characters) or of an email ("maja@"). SQLite needs none.
"""

from django.db import migrations, models
from django.db.models import OuterRef, Subquery

CREATE = [
    'CREATE INDEX IF NOT EXISTS "order_customer_name_trgm" ON "portal_order" '
    'USING gin ("customer_search_name" gin_trgm_ops)',
    'CREATE INDEX IF NOT EXISTS "order_customer_email_trgm" ON "portal_order" '
    'USING gin ((UPPER("customer_search_email"::text)) gin_trgm_ops)',
    'CREATE INDEX IF NOT EXISTS "order_customer_name_prefix" ON "portal_order" '
    '("customer_search_name" varchar_pattern_ops)',
    'CREATE INDEX IF NOT EXISTS "order_customer_email_prefix" ON "portal_order" '
    '((UPPER("customer_search_email"::text)) text_pattern_ops)',
]
DROP = [
    'DROP INDEX IF EXISTS "order_customer_name_trgm"',
    'DROP INDEX IF EXISTS "order_customer_email_trgm"',
    'DROP INDEX IF EXISTS "order_customer_name_prefix"',
    'DROP INDEX IF EXISTS "order_customer_email_prefix"',
]


def fill_copies(apps, schema_editor):
    """One UPDATE: each order takes its customer's search_name and email.
    Orders the previous release saves after this (its servers run until the
    new ones start) get "" from the columns' database default and their
    copies from ``OrderQuerySet.fill_search_copies``, a periodic job."""
    Order = apps.get_model("portal", "Order")
    Customer = apps.get_model("customers", "Customer")
    customer = Customer.objects.filter(pk=OuterRef("customer_id"))
    Order.objects.update(
        customer_search_name=Subquery(customer.values("search_name")[:1]),
        customer_search_email=Subquery(customer.values("email")[:1]),
    )


def add_indexes(apps, schema_editor):
    """The indexes, then fresh statistics: the search is planned from the
    new columns' statistics, which autovacuum may gather only much later."""
    if schema_editor.connection.vendor == "postgresql":
        for statement in CREATE:
            schema_editor.execute(statement)
        schema_editor.execute('ANALYZE "portal_order"')


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in DROP:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0010_ordering_by_column"),
        ("customers", "0015_customer_email_prefix_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="customer_search_email",
            field=models.CharField(
                blank=True, db_default="", default="", editable=False, max_length=254
            ),
        ),
        migrations.AddField(
            model_name="order",
            name="customer_search_name",
            field=models.CharField(
                blank=True, db_default="", default="", editable=False, max_length=400
            ),
        ),
        migrations.RunPython(fill_copies, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="order",
            index=models.Index(
                condition=models.Q(("customer_search_email", "")),
                fields=["id"],
                name="order_search_copies_missing",
            ),
        ),
        migrations.RunPython(add_indexes, drop_indexes),
    ]
