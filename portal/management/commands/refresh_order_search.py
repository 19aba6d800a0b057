"""Give every order its customer's current search copies.

    manage.py refresh_order_search

Once after deploying migration portal 0011 (docs/DEPLOYMENT.md): the previous
release, still serving while it was deployed, may have renamed a customer or
changed an email without copying it to their orders, which the order search
then does not find by the new name. One UPDATE of the orders whose copies
differ from their customer's (``OrderQuerySet.fill_search_copies``); safe to
run at any time, and again.
"""

from django.core.management.base import BaseCommand

from portal.models import Order


class Command(BaseCommand):
    help = "Copy each customer's current name and email to their orders' search copies."

    def handle(self, *args, **options):
        refreshed = Order.objects.fill_search_copies(stale=True)
        self.stdout.write(f"Orders whose search copies were refreshed: {refreshed}")
