"""The cluster's data, written into its own database; prints what the tests need
as JSON (``python -m tests.cluster.seed`` with the cluster's environment)."""

import base64
import json

import django


def basic(username: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()


def main() -> dict:
    django.setup()
    from portal.api.models import ApiCredential
    from portal.models import MerchantUser
    from tests.factories import (
        CustomerFactory,
        MerchantFactory,
        MerchantUserFactory,
        OrderFactory,
        PaymentMethodFactory,
        UserFactory,
    )

    customer = CustomerFactory(name="Maja Berg", email="maja@example.com")
    PaymentMethodFactory(customer=customer, label="Visa •••• 4242")
    out = {"customer_email": customer.email}
    for name in ("refunds", "limits", "load"):
        merchant = MerchantFactory(name=f"Cluster {name}", slug=f"cluster-{name}")
        owner = MerchantUserFactory(
            merchant=merchant,
            user=UserFactory(username=f"cluster-{name}"),
            role=MerchantUser.Role.OWNER,
        )
        credential, secret = ApiCredential.issue(merchant, name, by=owner.user)
        out[f"{name}_auth"] = basic(credential.username, secret)
        out[f"{name}_username"] = owner.user.username
        orders = []
        for _ in range(3):
            order = OrderFactory(merchant=merchant, customer=customer)
            order.capture(by=owner.user)
            orders.append(str(order.order_id))
        out[f"{name}_orders"] = orders
        out[f"{name}_order_amount"] = order.order_amount
    out["password"] = "correct horse battery staple"
    out["load_order"] = out["load_orders"][0]
    return out


if __name__ == "__main__":
    print(json.dumps(main()))
