"""Helpers for the API tests: Basic credentials, a JSON client, URLs."""

import base64
import json

from django.test import Client


def basic(username: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()


class ApiClient(Client):
    """A test client that sends JSON bodies and Basic credentials."""

    def __init__(self, authorization: str | None = None, **defaults):
        headers = {"Authorization": authorization} if authorization else {}
        super().__init__(headers=headers, **defaults)

    def post_json(self, path: str, body=None, headers: dict | None = None):
        data = "" if body is None else json.dumps(body)
        return self.post(path, data, content_type="application/json", headers=headers)

    def patch_json(self, path: str, body=None, headers: dict | None = None):
        data = "" if body is None else json.dumps(body)
        return self.patch(path, data, content_type="application/json", headers=headers)


def om(order, *parts: str) -> str:
    """``/ordermanagement/v1/orders/<id>/<parts...>``."""
    return "/".join([f"/ordermanagement/v1/orders/{order.order_id}", *parts])
