"""Two app servers behind HAProxy, on PostgreSQL and Redis, with two task workers.

Used by the cluster tests (``tests/cluster``) and by ``make cluster``
(``python -m tests.cluster.harness``), which also measures throughput through one
server and through two. Everything listens on 127.0.0.1, on ports in
18100–18199; the load it sends is bounded in requests and time.

Layout (``Cluster.start``): a database of its own on the PostgreSQL server of
``DATABASE_URL``, migrated and seeded (``tests.cluster.seed``); static files
collected; a small SMTP sink in this process; gunicorn on two ports; HAProxy in
front of both (round robin, no stickiness); two ``manage.py db_worker``.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
PORT_RANGE = range(18100, 18200)
SECRET_KEY = "cluster-test-secret-key-" + "x" * 40


def missing_requirements(database_url: str) -> str:
    """Why the cluster cannot run here, or "" when it can."""
    if not database_url.startswith(("postgres://", "postgresql://")):
        return "needs PostgreSQL: set DATABASE_URL=postgres://..."
    if shutil.which("haproxy") is None:
        return "needs HAProxy: apt-get install haproxy"
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            if not sock.recv(16).startswith(b"+PONG"):
                return "needs Redis on 127.0.0.1:6379 (no PONG)"
    except OSError:
        return "needs Redis on 127.0.0.1:6379"
    return ""


def _free_base_port() -> int:
    """Five consecutive free ports in 18100–18199, starting at a multiple of 5."""
    start = (os.getpid() % 20) * 5
    for offset in range(20):
        base = PORT_RANGE.start + (start + offset * 5) % 100
        if all(_port_free(base + i) for i in range(5)):
            return base
    raise RuntimeError("No five free ports in 18100–18199.")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# SMTP sink --------------------------------------------------------------------------


class SmtpSink(socketserver.ThreadingTCPServer):
    """A mail server that keeps every message it receives (by Message-ID) and can
    wait ``delay`` seconds before answering "250" to a message: a slow server."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int):
        super().__init__(("127.0.0.1", port), _SmtpHandler)
        self.delay = 0.0
        self.message_ids: list[str] = []
        self.messages: list[bytes] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    def received(self) -> Counter:
        with self.lock:
            return Counter(self.message_ids)


class _SmtpHandler(socketserver.StreamRequestHandler):
    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        self.reply("220 sink ESMTP")
        while line := self.rfile.readline():
            command = line.decode(errors="replace").strip().upper()
            if command.startswith(("EHLO", "HELO")):
                self.reply("250 sink")
            elif command == "DATA":
                self.reply("354 go ahead")
                self._receive_message()
            elif command == "QUIT":
                self.reply("221 bye")
                return
            else:  # MAIL, RCPT, RSET, NOOP
                self.reply("250 ok")

    def _receive_message(self) -> None:
        lines = []
        while (line := self.rfile.readline()) not in (b".\r\n", b""):
            lines.append(line)
        found = re.search(rb"^Message-ID:\s*(\S+)", b"".join(lines), re.I | re.M)
        sink = self.server
        with sink.lock:  # Received in full: from here on it counts as delivered.
            sink.message_ids.append(found.group(1).decode() if found else "")
            sink.messages.append(b"".join(lines))
        time.sleep(sink.delay)
        self.reply("250 queued")


# The cluster ------------------------------------------------------------------------


@dataclass
class Cluster:
    database_url: str
    base_port: int = field(default_factory=_free_base_port)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    seed: dict = field(default_factory=dict)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp("-cluster")))
    extra_env: dict = field(default_factory=dict)

    def __post_init__(self):
        parts = urlsplit(self.database_url)
        self.db_name = f"cluster_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.admin_url = urlunsplit(parts._replace(path="/postgres"))
        self.url = urlunsplit(parts._replace(path=f"/{self.db_name}"))
        self.sink = SmtpSink(self.smtp_port)

    # Ports: HAProxy (both servers), server A, server B, HAProxy (server A only),
    # SMTP sink.
    @property
    def proxy_port(self) -> int:
        return self.base_port

    @property
    def server_ports(self) -> tuple[int, int]:
        return (self.base_port + 1, self.base_port + 2)

    @property
    def smtp_port(self) -> int:
        return self.base_port + 4

    def url_of(self, target: str) -> str:
        """``proxy``, ``proxy-one`` (HAProxy with server A only), ``a`` or ``b``."""
        port = {
            "proxy": self.proxy_port,
            "a": self.server_ports[0],
            "b": self.server_ports[1],
            "proxy-one": self.base_port + 3,
        }[target]
        return f"http://127.0.0.1:{port}"

    def env(self, **extra) -> dict:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DJANGO_", "PYTEST"))
        }
        env.update(
            DJANGO_SETTINGS_MODULE="portal.settings",
            DEBUG="0",
            SECRET_KEY=SECRET_KEY,
            DATABASE_URL=self.url,
            DATABASE_POOL_MIN="1",
            DATABASE_POOL_MAX="6",
            CACHE_URL="redis://127.0.0.1:6379/0",
            CACHE_KEY_PREFIX=f"cluster-{self.db_name}",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            TRUSTED_PROXIES="127.0.0.1",
            SECURE_SSL_REDIRECT="0",
            SESSION_COOKIE_SECURE="0",
            CSRF_COOKIE_SECURE="0",
            SECURE_HSTS_SECONDS="0",
            EMAIL_URL=f"smtp://127.0.0.1:{self.smtp_port}",
            EMAIL_TIMEOUT="5",
            API_RATE_LIMIT="200,3600",
            LOG_LEVEL="WARNING",
        )
        env.update(self.extra_env)
        env.update(extra)
        return env

    def manage(self, *args: str, **extra_env) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env(**extra_env),
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)}: {result.stderr[-2000:]}")
        return result.stdout

    def sql(self, query: str, params=(), *, admin: bool = False) -> list[tuple]:
        import psycopg

        url = self.admin_url if admin else self.url
        with psycopg.connect(url, autocommit=True) as connection:
            cursor = connection.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    # Start and stop -----------------------------------------------------------------

    def start(self) -> "Cluster":
        self.sql(f'CREATE DATABASE "{self.db_name}"', admin=True)
        self.manage("migrate", "--noinput")
        self.manage("collectstatic", "--noinput")
        self.seed = json.loads(
            subprocess.run(
                [sys.executable, "-m", "tests.cluster.seed"],
                cwd=ROOT,
                env=self.env(),
                capture_output=True,
                text=True,
                check=True,
                timeout=120,
            ).stdout
        )
        self.sink.thread.start()
        for name, port in zip("ab", self.server_ports, strict=True):
            self.start_server(name, port)
        self._start("haproxy", ["haproxy", "-db", "-f", str(self._haproxy_config())])
        for n in (1, 2):
            self.start_worker(f"worker{n}")
        for target in ("a", "b", "proxy"):
            self._wait_for(self.url_of(target) + "/login/")
        return self

    def _start(self, name: str, command: list[str], **extra_env) -> None:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115
        self.processes[name] = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env(**extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_server(self, name: str, port: int) -> None:
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        self._start(
            f"server-{name}",
            [
                gunicorn,
                "portal.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--threads",
                "4",
                "--graceful-timeout",
                "2",
            ],
        )

    def start_worker(self, name: str) -> None:
        self._start(
            name,
            [
                sys.executable,
                "manage.py",
                "db_worker",
                "--no-startup-delay",
                "--interval",
                "0.2",
                "--worker-id",
                name,
            ],
        )

    def kill(self, name: str) -> None:
        """SIGKILL ``name`` and everything it started: no chance to clean up."""
        process = self.processes.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        for name in list(self.processes):
            process = self.processes.pop(name)
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=10)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.sink.shutdown()
        self.sink.server_close()
        try:
            self.sql(
                f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)', admin=True
            )
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _haproxy_config(self) -> Path:
        a, b = self.server_ports
        config = self.workdir / "haproxy.cfg"
        config.write_text(
            f"""global
    maxconn 512
defaults
    mode http
    option forwardfor
    option http-server-close
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend portal
    bind 127.0.0.1:{self.proxy_port}
    default_backend app
backend app
    balance roundrobin
    server a 127.0.0.1:{a}
    server b 127.0.0.1:{b}
frontend portal-one
    bind 127.0.0.1:{self.base_port + 3}
    default_backend one
backend one
    server a 127.0.0.1:{a}
"""
        )
        return config

    def _wait_for(self, url: str, timeout: float = 60) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        logs = "\n".join(
            f"== {path.name}\n{path.read_text(errors='replace')[-1500:]}"
            for path in self.workdir.glob("*.log")
        )
        raise RuntimeError(f"{url} did not come up.\n{logs}")

    # Jobs ---------------------------------------------------------------------------

    def jobs(self) -> Counter:
        rows = self.sql(
            "SELECT status, count(*) FROM django_tasks_database_dbtaskresult "
            "GROUP BY status"
        )
        return Counter(dict(rows))

    def wait_for_jobs(self, timeout: float = 60) -> Counter:
        """Until no job is ready to run (a killed worker's job stays RUNNING)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = self.sql(
                "SELECT count(*) FROM django_tasks_database_dbtaskresult "
                "WHERE status = 'READY' AND (run_after IS NULL OR run_after <= now())"
            )[0][0]
            running = self.sql(
                "SELECT count(*) FROM django_tasks_database_dbtaskresult "
                "WHERE status = 'RUNNING' AND worker_ids ?| %s",
                (list(self.live_workers()),),
            )[0][0]
            if not ready and not running:
                return self.jobs()
            time.sleep(0.3)
        raise RuntimeError(f"Jobs still waiting after {timeout} s: {self.jobs()}")

    def live_workers(self) -> set[str]:
        return {name for name in self.processes if name.startswith("worker")}


# Load -------------------------------------------------------------------------------


def measure(url: str, *, seconds: float, concurrency: int, auth: str) -> dict:
    """Requests per second for ``GET url`` from ``concurrency`` threads for at most
    ``seconds`` (and at most 20,000 requests): a bounded loopback load."""
    import httpx

    stop_at = time.monotonic() + seconds
    budget = iter(range(20_000))
    lock = threading.Lock()
    statuses: Counter = Counter()

    def run() -> None:
        with httpx.Client(headers={"Authorization": auth}, timeout=10) as client:
            while time.monotonic() < stop_at:
                with lock:
                    if next(budget, None) is None:
                        return
                status = client.get(url).status_code
                with lock:
                    statuses[status] += 1

    started = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        for _ in range(concurrency):
            pool.submit(run)
    elapsed = time.monotonic() - started
    total = sum(statuses.values())
    return {
        "requests": total,
        "seconds": round(elapsed, 1),
        "per_second": round(total / elapsed, 1),
        "statuses": dict(statuses),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--concurrency", type=int, default=8)
    options = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL", "")
    if reason := missing_requirements(database_url):
        sys.exit(f"make cluster {reason}")
    # The load measures serving, not the rate limit.
    cluster = Cluster(database_url, extra_env={"API_RATE_LIMIT": "1000000,60"})
    try:
        cluster.start()
        print(
            f"Cluster up: HAProxy {cluster.url_of('proxy')} → {cluster.url_of('a')}, "
            f"{cluster.url_of('b')}; workers: 2"
        )
        path = f"/ordermanagement/v1/orders/{cluster.seed['load_order']}"
        auth = cluster.seed["load_auth"]
        results = {}
        for label, target in (("one server", "proxy-one"), ("two servers", "proxy")):
            results[label] = measure(
                cluster.url_of(target) + path,
                seconds=options.seconds,
                concurrency=options.concurrency,
                auth=auth,
            )
            print(f"{label:12} {results[label]}")
        print(json.dumps(results))
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
