"""The database cache's table (``portal_cache``): production without CACHE_URL
keeps sessions, rate limits and throttles there, shared by every process."""

from django.core.management.commands.createcachetable import Command
from django.db import migrations

TABLE = "portal_cache"


def create_cache_table(apps, schema_editor):
    command = Command()
    command.verbosity = 0
    command.create_table(schema_editor.connection.alias, TABLE, dry_run=False)


def drop_cache_table(apps, schema_editor):
    schema_editor.execute(f"DROP TABLE IF EXISTS {schema_editor.quote_name(TABLE)}")


class Migration(migrations.Migration):
    dependencies = [("portal", "0005_line_ledger")]

    operations = [migrations.RunPython(create_cache_table, drop_cache_table)]
