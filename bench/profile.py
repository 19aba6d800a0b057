"""Profile one page in-process against a loaded bench database (pyinstrument).

    .venv/bin/python bench/profile.py --orders 10000 /orders/ [--user bench-de]

Uses ``bench.settings`` (production settings) and a session for the merchant user,
or ``--customer`` for a customer page. Prints the profile and the mean time.
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--user", default="bench-de")
    parser.add_argument("--customer", type=int)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--show-all", action="store_true")
    args = parser.parse_args()

    from bench.database import database_url
    from bench.run import server_environment

    os.environ.update(server_environment(database_url(f"refund_bench_{args.orders}")))
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from pyinstrument import Profiler

    from bench.run import customer_headers, merchant_headers

    if args.customer:
        headers = customer_headers(args.customer)
    else:
        headers = merchant_headers(get_user_model().objects.get(username=args.user))
    client = Client(HTTP_HOST="127.0.0.1")
    client.cookies[settings.SESSION_COOKIE_NAME] = (
        headers["Cookie"].split(";")[0].split("=", 1)[1]
    )
    with CaptureQueriesContext(connection) as queries:
        response = client.get(args.url)
    print(
        f"status {response.status_code}, {len(response.content):,} bytes, "
        f"{len(queries)} queries"
    )
    started = time.perf_counter()
    for _ in range(args.repeat):
        client.get(args.url)
    plain = (time.perf_counter() - started) * 1000 / args.repeat
    print(f"mean {plain:.1f} ms per request without the profiler")
    profiler = Profiler(interval=0.0005)
    started = time.perf_counter()
    profiler.start()
    for _ in range(args.repeat):
        client.get(args.url)
    profiler.stop()
    mean = (time.perf_counter() - started) * 1000 / args.repeat
    print(profiler.output_text(unicode=True, color=False, show_all=args.show_all))
    print(f"mean {mean:.1f} ms per request (under the profiler)")


if __name__ == "__main__":
    main()
