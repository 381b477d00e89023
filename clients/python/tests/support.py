"""A real runstate service for the tests, and a TCP proxy that loses answers and cuts connections.

One service serves the whole run: started at the first test that asks for it, stopped (and its
database dropped) when the interpreter exits. With TEST_DATABASE_URL (a PostgreSQL server URL)
it runs on a database of its own, created for this run; without, on the embedded PGlite in a
temporary directory. RUNSTATE_REPO points at the checkout to run (default: the one these tests
are in).
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import unittest
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional
from urllib.parse import urlsplit, urlunsplit

import runstate

ADMIN_TOKEN = "python-client-tests-admin-token-0123456789"
REPO = Path(os.environ.get("RUNSTATE_REPO") or Path(__file__).resolve().parents[3])
START_TIMEOUT = 90.0

# Creates or drops one database, with the driver the service itself uses (node_modules).
_DATABASE_SCRIPT = """
import postgres from 'postgres';
const [action, name] = process.argv.slice(1);
const sql = postgres(process.env.ADMIN_DATABASE_URL, { onnotice() {}, max: 1, connect_timeout: 10 });
try {
  if (action === 'create') await sql.unsafe(`CREATE DATABASE "${name}"`);
  else await sql.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
} finally {
  await sql.end();
}
"""


def _database(action: str, admin_url: str, name: str) -> None:
    assert re.fullmatch(r"[a-z0-9_]+", name)
    subprocess.run(
        ["node", "--input-type=module", "-e", _DATABASE_SCRIPT, action, name],
        cwd=REPO,
        env={**os.environ, "ADMIN_DATABASE_URL": admin_url},
        check=True,
        timeout=60,
        capture_output=True,
    )


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def _die_with_parent() -> None:
    """In the child: SIGKILL when the test process dies, however it dies (Linux only)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Service:
    """One runstate process (``node --import tsx src/main.ts``) on a free port."""

    def __init__(self) -> None:
        self.tempdir = tempfile.mkdtemp(prefix="runstate-py-")
        self.log_path = os.path.join(self.tempdir, "service.log")
        self.admin_url = os.environ.get("TEST_DATABASE_URL") or None
        self.database: Optional[str] = None
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", self.tempdir),
            "PORT": "0",
            "HOST": "127.0.0.1",
            "RUNSTATE_ADMIN_TOKEN": ADMIN_TOKEN,
            "DASHBOARD": "false",
            "GRAPHIQL": "false",
            # Deadlines (heartbeat timeouts) are found within 0.1 s.
            "REAPER_INTERVAL_MS": "100",
            "LOG_LEVEL": "info",
        }
        if self.admin_url:
            self.database = f"runstate_py_{os.getpid()}_{uuid.uuid4().hex[:8]}"
            _database("create", self.admin_url, self.database)
            env["DATABASE_URL"] = _with_database(self.admin_url, self.database)
        else:
            env["RUNSTATE_DATA_DIR"] = os.path.join(self.tempdir, "data")
        started = time.monotonic()
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            ["node", "--import", "tsx", "src/main.ts"],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        self.url = self._wait_for_url()
        self.startup_seconds = time.monotonic() - started
        self.client = runstate.RunstateClient(self.url, ADMIN_TOKEN)

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            match = re.search(r'"url":"(http://[^"]+)"', self.output())
            if match:
                return match.group(1)
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"runstate did not start:\n{self.output()}")

    def output(self) -> str:
        try:
            with open(self.log_path, "rb") as log:
                return log.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def gql(self, query: str, variables: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """An operation as the admin, straight to the service (not through the client's handles)."""
        return self.client.request(query, variables or {})

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        if self.database and self.admin_url:
            try:
                _database("drop", self.admin_url, self.database)
            except Exception as error:  # pragma: no cover - reported, not fatal
                print(f"could not drop test database {self.database}: {error}", file=sys.stderr)
        shutil.rmtree(self.tempdir, ignore_errors=True)


_service: Optional[Service] = None
_service_lock = threading.Lock()


def service() -> Service:
    """The run's service, started on first use."""
    global _service
    with _service_lock:
        if _service is None:
            _service = Service()
            atexit.register(_service.stop)
        return _service


def unique_project(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_until(what: str, condition: Callable[[], Any], timeout: float = 10.0, every: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def history(run_id: str) -> List[Dict[str, Any]]:
    """The run's status changes as the server has them, oldest first."""
    data = service().gql(
        """query($id: ID!) { run(id: $id) { statusHistory(first: 500) {
          edges { node { cursor from to version reason outcome nativeTo } } } } }""",
        {"id": run_id},
    )
    return [edge["node"] for edge in data["run"]["statusHistory"]["edges"]]


def server_run(run_id: str, fields: str = "status version attempt heartbeatAt progress phase") -> Dict[str, Any]:
    return service().gql(f"query($id: ID!) {{ run(id: $id) {{ {fields} }} }}", {"id": run_id})["run"]


def measurements(run_id: str) -> List[Dict[str, Any]]:
    data = service().gql(
        """query($id: ID!) { run(id: $id) { measurements(first: 500) {
          edges { node { name value step } } } } }""",
        {"id": run_id},
    )
    return [edge["node"] for edge in data["run"]["measurements"]["edges"]]


class FlakyProxy:
    """A TCP proxy in front of the service that fails as a network does.

    ``lose_next_answers(n)``: the next n POSTs reach the service (they commit) and the connection
    drops as the answer starts to come back. ``answer_next(n, status, body)``: the next n POSTs
    get this answer from the proxy instead (a 503 from a load balancer, say). ``cut_all()``: every
    open connection drops (an SSE stream too). ``requests`` holds every POST body (parsed JSON).
    """

    def __init__(self, target_url: str):
        target = urlsplit(target_url)
        self._target = (target.hostname or "127.0.0.1", target.port or 80)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        port = self._listener.getsockname()[1]
        self.url = urlunsplit((target.scheme, f"127.0.0.1:{port}", target.path, "", ""))
        self._lock = threading.Lock()
        self._sockets: set = set()
        self._to_lose = 0
        self.lost = 0
        self._canned: List[bytes] = []
        self.answered = 0
        self.requests: List[Dict[str, Any]] = []
        self.connections = 0
        self._closed = False
        threading.Thread(target=self._accept, name="flaky-proxy", daemon=True).start()

    def lose_next_answers(self, n: int) -> None:
        with self._lock:
            self._to_lose = n

    def answer_next(self, n: int, status: int, body: Dict[str, Any], headers: Optional[Dict[str, str]] = None) -> None:
        raw = json.dumps(body).encode()
        head = f"HTTP/1.1 {status} Proxied\r\ncontent-type: application/json\r\ncontent-length: {len(raw)}\r\nconnection: close\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        with self._lock:
            self._canned = [head.encode() + b"\r\n" + raw] * n

    def cut_all(self) -> int:
        """Drop every open connection; answers how many sockets were dropped."""
        with self._lock:
            sockets, self._sockets = list(self._sockets), set()
        for sock in sockets:
            _kill(sock)
        return len(sockets)

    def bodies(self, containing: str) -> List[Dict[str, Any]]:
        with self._lock:
            return [body for body in self.requests if containing in body.get("query", "")]

    def close(self) -> None:
        self._closed = True
        _kill(self._listener)
        self.cut_all()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream: Optional[socket.socket] = None
        with self._lock:
            self._sockets.add(client)
            self.connections += 1
        try:
            request = _read_request(client)  # the client sends one request per connection
            if request is None:
                return
            head, body = request
            is_post = head.startswith(b"POST ")
            with self._lock:
                if is_post:
                    try:
                        self.requests.append(json.loads(body or b"{}"))
                    except ValueError:
                        pass
                canned = self._canned.pop(0) if is_post and self._canned else None
                if canned is not None:
                    self.answered += 1
            if canned is not None:
                client.sendall(canned)
                return
            upstream = socket.create_connection(self._target, timeout=30)
            upstream.settimeout(None)
            with self._lock:
                self._sockets.add(upstream)
            upstream.sendall(head + body)
            first = True
            while True:
                chunk = upstream.recv(65536)
                if not chunk:
                    return
                if first and is_post:
                    first = False
                    with self._lock:
                        lose = self._to_lose > 0
                        if lose:
                            self._to_lose -= 1
                            self.lost += 1
                    if lose:
                        return  # the answer is lost: the finally drops both ends
                client.sendall(chunk)
        except OSError:
            return
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    with self._lock:
                        self._sockets.discard(sock)
                    _kill(sock)


def _read_request(sock: socket.socket) -> Optional[tuple]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    match = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
    length = int(match.group(1)) if match else 0
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        body += chunk
    return head + b"\r\n\r\n", body


def _kill(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class ServiceTest(unittest.TestCase):
    """A test case with the shared service and a client on it (admin token), closed afterwards.
    ``client_options`` are passed to the client."""

    client_options: Dict[str, Any] = {}

    @classmethod
    def setUpClass(cls) -> None:
        from runstate import RunstateClient

        cls.service = service()
        cls.client = RunstateClient(cls.service.url, ADMIN_TOKEN, **cls.client_options)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.client.close()

