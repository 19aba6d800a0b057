"""Run the customer side's time-driven jobs once, or every N seconds.

    manage.py run_periodic_jobs                # once, inline
    manage.py run_periodic_jobs --every 60     # loop (next to `manage.py db_worker`)
    manage.py run_periodic_jobs --enqueue      # hand one run to the task worker

What runs (``customers.tasks.run_periodic``): due repayments move on the simulated
payment rail (scheduled → processing → completed, or bounced); return-report
pauses older than 21 days end and payments resume; due installments of paying
plans are charged (the simulated card always pays); refunds whose notification
job was lost are notified; emails whose retry is long overdue are re-enqueued;
orders saved without their customer's search copies (by the previous release
while migration portal 0011 was deployed) get them.
Every step locks what it changes, so overlapping runs are safe.
"""

import time

from django.core.management.base import BaseCommand, CommandError

from customers.tasks import run_periodic, run_periodic_jobs


class Command(BaseCommand):
    help = "Process due repayments, end expired return pauses, charge due installments."

    def add_arguments(self, parser):
        parser.add_argument(
            "--every",
            type=float,
            metavar="SECONDS",
            help="Keep running, one pass every SECONDS (stop with Ctrl-C).",
        )
        parser.add_argument(
            "--enqueue",
            action="store_true",
            help="Enqueue one run for the task worker instead of running it here.",
        )

    def handle(self, *args, every=None, enqueue=False, **options):
        if enqueue:
            result = run_periodic_jobs.enqueue()
            self.stdout.write(f"Enqueued run_periodic_jobs ({result.id}).")
            return
        if every is not None and every <= 0:
            raise CommandError("--every must be a positive number of seconds.")
        while True:
            report = run_periodic()
            self.stdout.write(f"Periodic jobs done: {report}")
            if every is None:
                return
            try:
                time.sleep(every)
            except KeyboardInterrupt:
                return
