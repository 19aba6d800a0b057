"""Two app servers behind HAProxy, sharing PostgreSQL and Redis, with two task
workers: state held in one process decides nothing (issue 12)."""

import email
import email.policy
import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

pytestmark = pytest.mark.cluster

CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def _login(cluster, base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=20)
    page = client.get("/login/")
    client.post(
        "/login/",
        data={
            "username": cluster.seed["refunds_username"],
            "password": cluster.seed["password"],
            "csrfmiddlewaretoken": CSRF.search(page.text).group(1),
        },
    )
    assert "sessionid" in client.cookies
    return client


def _om(cluster, order_id: str, *parts: str) -> str:
    return "/".join(
        [cluster.url_of("proxy"), "ordermanagement/v1/orders", order_id, *parts]
    )


def test_logout_on_one_server_ends_the_session_on_the_other(cluster):
    on_a = _login(cluster, cluster.url_of("a"))
    stolen = dict(on_a.cookies)
    on_b = httpx.Client(base_url=cluster.url_of("b"), cookies=stolen, timeout=20)
    assert on_b.get("/orders/").status_code == 200
    for _ in range(6):  # cached on every worker of both servers
        on_a.get("/orders/")
        on_b.get("/orders/")

    orders = on_a.get("/orders/")
    on_a.post(
        "/logout/", data={"csrfmiddlewaretoken": CSRF.search(orders.text).group(1)}
    )

    replayed = httpx.Client(base_url=cluster.url_of("proxy"), timeout=20)
    replayed.cookies.update(stolen)
    statuses = [replayed.get("/orders/").status_code for _ in range(12)]
    statuses += [on_b.get("/orders/").status_code for _ in range(4)]
    assert statuses == [302] * 16


def test_the_rate_limit_holds_across_both_servers(cluster):
    # 200 requests an hour per merchant (the cluster's API_RATE_LIMIT); stay
    # clear of the window's end so all 300 requests count in one window.
    if time.time() % 3600 > 3540:
        time.sleep(3600 - time.time() % 3600 + 1)
    auth = {"Authorization": cluster.seed["limits_auth"]}
    order = cluster.seed["limits_orders"][0]
    urls = [cluster.url_of(t) for t in ("a", "b")] * 150

    def get(base: str) -> int:
        return httpx.get(
            f"{base}/ordermanagement/v1/orders/{order}", headers=auth, timeout=20
        ).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = Counter(pool.map(get, urls))

    assert statuses == {200: 200, 429: 100}


def test_failed_api_logins_are_throttled_across_both_servers(cluster):
    wrong = {"Authorization": "Basic " + "b21fbm9ib2R5Ondyb25n"}  # om_nobody:wrong
    url = f"/ordermanagement/v1/orders/{cluster.seed['limits_orders'][0]}"
    statuses = Counter(
        httpx.get(cluster.url_of(t) + url, headers=wrong, timeout=20).status_code
        for t in ("a", "b") * 20
    )

    assert statuses == {401: 10, 429: 30}  # 10 failures per username, then 429
    logged = cluster.sql("SELECT count(*) FROM api_apiauthfailure")[0][0]
    assert logged == 1  # one row for this address and hour, not one per request


def test_fifty_racing_refunds_on_both_servers_never_over_refund(cluster):
    order = cluster.seed["refunds_orders"][0]
    amount = cluster.seed["refunds_order_amount"]
    step = amount // 40  # 50 requests ask for 125% of what is refundable
    auth = {"Authorization": cluster.seed["refunds_auth"]}
    bases = [cluster.url_of(t) for t in ("a", "b")] * 25
    barrier = threading.Barrier(25)

    def refund(base: str) -> int:
        with httpx.Client(timeout=60) as client:
            barrier.wait(timeout=30)
            return client.post(
                f"{base}/ordermanagement/v1/orders/{order}/refunds",
                json={"refunded_amount": step},
                headers=auth,
            ).status_code

    with ThreadPoolExecutor(25) as pool:
        statuses = Counter(pool.map(refund, bases))

    assert statuses[201] == amount // step
    assert statuses[403] == 50 - amount // step
    refunded = cluster.sql(
        "SELECT coalesce(sum(r.refunded_amount), 0) FROM refunds_refund r "
        "JOIN portal_order o ON o.id = r.order_id WHERE o.order_id = %s",
        (order,),
    )[0][0]
    assert refunded == (amount // step) * step <= amount


def test_one_idempotency_key_sent_to_both_servers_refunds_once(cluster):
    order = cluster.seed["refunds_orders"][1]
    headers = {
        "Authorization": cluster.seed["refunds_auth"],
        "Klarna-Idempotency-Key": "cluster-once",
    }
    bases = [cluster.url_of(t) for t in ("a", "b")] * 5
    barrier = threading.Barrier(10)

    def refund(base: str) -> httpx.Response:
        with httpx.Client(timeout=60) as client:
            barrier.wait(timeout=30)
            return client.post(
                f"{base}/ordermanagement/v1/orders/{order}/refunds",
                json={"refunded_amount": 1000},
                headers=headers,
            )

    with ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(refund, bases))

    assert {r.status_code for r in responses} == {201}
    assert len({r.headers["Refund-Id"] for r in responses}) == 1
    count = cluster.sql(
        "SELECT count(*) FROM refunds_refund r JOIN portal_order o "
        "ON o.id = r.order_id WHERE o.order_id = %s",
        (order,),
    )[0][0]
    assert count == 1


def test_a_worker_killed_mid_job_loses_and_doubles_nothing(cluster):
    cluster.wait_for_jobs()
    cluster.sink.delay = 1.0  # every "250" comes a second late
    order = cluster.seed["refunds_orders"][2]
    auth = {"Authorization": cluster.seed["refunds_auth"]}
    for _ in range(8):
        response = httpx.post(
            _om(cluster, order, "refunds"),
            json={"refunded_amount": 500},
            headers=auth,
            timeout=20,
        )
        assert response.status_code == 201
    before = sum(cluster.sink.received().values())
    deadline = time.monotonic() + 30
    while sum(cluster.sink.received().values()) < before + 2:
        assert time.monotonic() < deadline, "no email went out"
        time.sleep(0.05)

    cluster.kill("worker1")  # while it waits for the mail server's answer
    killed_jobs = cluster.sql(
        "SELECT count(*) FROM django_tasks_database_dbtaskresult "
        "WHERE status = 'RUNNING' AND worker_ids ? 'worker1'"
    )[0][0]
    assert killed_jobs == 1  # it died mid-job, and its job stays RUNNING
    cluster.sink.delay = 0
    cluster.start_worker("worker3")
    cluster.wait_for_jobs()
    # The sweep, as run_periodic_jobs runs it, once the killed job is overdue.
    cluster.manage("run_periodic_jobs", LOST_JOB_SECONDS="0")
    cluster.wait_for_jobs()

    rows = cluster.sql(
        "SELECT n.id, n.created_at, n.email_sent_at IS NOT NULL, "
        "n.email_uncertain_at IS NOT NULL FROM customers_notification n "
        "JOIN refunds_refund r ON r.id = n.refund_id "
        "JOIN portal_order o ON o.id = r.order_id WHERE o.order_id = %s",
        (order,),
    )
    refunds = cluster.sql(
        "SELECT count(*) FROM refunds_refund r JOIN portal_order o "
        "ON o.id = r.order_id WHERE o.order_id = %s",
        (order,),
    )[0][0]
    received = cluster.sink.received()
    assert refunds == 8 and len(rows) == 8  # no refund lost its notification

    def delivered(pk: int) -> int:
        prefix = f"<notification-{pk}."
        return sum(n for m, n in received.items() if m.startswith(prefix))

    for pk, _created, sent, uncertain in rows:
        assert sent or uncertain, f"notification {pk} was left behind"
        if sent:
            assert delivered(pk) == 1, f"notification {pk} sent {delivered(pk)}×"
        else:
            assert delivered(pk) <= 1
    # At most the one the killed worker was sending is uncertain.
    assert sum(1 for row in rows if row[3]) <= 1


def test_a_customer_logs_in_on_one_server_and_out_on_the_other(cluster):
    on_a = httpx.Client(base_url=cluster.url_of("a"), timeout=20)
    page = on_a.get("/my/login/")
    before = len(cluster.sink.messages)
    on_a.post(
        "/my/login/",
        data={
            "email": cluster.seed["customer_email"],
            "csrfmiddlewaretoken": CSRF.search(page.text).group(1),
        },
    )
    deadline = time.monotonic() + 30
    while not (codes := _login_codes(cluster.sink.messages[before:])):
        assert time.monotonic() < deadline, "the worker sent no code"
        time.sleep(0.1)

    # The code asked for on server A is entered on server B: one shared session.
    on_b = httpx.Client(base_url=cluster.url_of("b"), cookies=on_a.cookies, timeout=20)
    form = on_b.get("/my/login/code/")
    entered = on_b.post(
        "/my/login/code/",
        data={
            "code": codes[-1],
            "csrfmiddlewaretoken": CSRF.search(form.text).group(1),
        },
    )
    assert entered.status_code == 302
    stolen = dict(on_b.cookies)
    for client in (on_a, on_b) * 6:
        client.cookies.update(stolen)
        assert client.get("/my/").status_code == 200

    page = on_b.get("/my/")
    on_b.post(
        "/my/logout/", data={"csrfmiddlewaretoken": CSRF.search(page.text).group(1)}
    )

    replayed = httpx.Client(
        base_url=cluster.url_of("proxy"), cookies=stolen, timeout=20
    )
    assert [replayed.get("/my/").status_code for _ in range(12)] == [302] * 12


def _login_codes(messages: list[bytes]) -> list[str]:
    """The codes of the login-code emails among ``messages``, whatever language
    the customer reads (the subject ends with the code: "Ihr Anmeldecode: 123456")."""
    codes = []
    for raw in messages:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        match = re.search(r":\s*(\d{6})$", str(message["Subject"] or ""))
        if match:
            codes.append(match.group(1))
    return codes


def test_five_failed_logins_split_across_both_servers_lock_the_account(cluster):
    def attempt(target: str, password: str) -> int:
        client = httpx.Client(base_url=cluster.url_of(target), timeout=20)
        page = client.get("/login/")
        return client.post(
            "/login/",
            data={
                "username": cluster.seed["limits_username"],
                "password": password,
                "csrfmiddlewaretoken": CSRF.search(page.text).group(1),
            },
        ).status_code

    failures = [attempt(target, "wrong") for target in "ababa"]

    assert failures[:4] == [200] * 4  # the form again, with its error
    right = [attempt(target, cluster.seed["password"]) for target in "ab"]
    assert right == [429, 429]  # locked out on both servers (django-axes rows)
