"""Bench-only middleware: SQL queries and server time per request, as headers."""

import time
from contextlib import ExitStack

from django.db import connections


class QueryCountMiddleware:
    """Adds ``X-Bench-Queries`` (every query on every connection) and
    ``X-Bench-Server-Ms`` (time inside Django) to each response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        count = 0

        def counter(execute, sql, params, many, context):
            nonlocal count
            count += 1
            return execute(sql, params, many, context)

        started = time.perf_counter()
        with ExitStack() as stack:
            for alias in connections:
                stack.enter_context(connections[alias].execute_wrapper(counter))
            response = self.get_response(request)
        response["X-Bench-Queries"] = str(count)
        response["X-Bench-Server-Ms"] = f"{(time.perf_counter() - started) * 1000:.2f}"
        return response
