"""Real servers for the conformance tests: ``redis-server``, ``memcached`` and ``nginx`` on loopback
ports.

Each server is started once per test session on a free ``127.0.0.1`` port, in a temporary
directory, without persistence (Redis: ``--save "" --appendonly no``), and stopped afterwards
(``nginx`` is started per test, with that test's configuration, under its ``tmp_path``);
nothing relies on a server left running. A missing binary skips the tests that need it with one
line naming the Debian package, except in CI (the ``CI`` environment variable set), where it is
a failure: CI must hold the models against the real servers, not silently skip them. As a
second line of defence, ``tests/conformance/report.py``'s ``SkipGuard`` fails the whole session in
CI if any test in this directory was skipped for whatever reason, and ``SEQUENCES`` there counts
the command sequences sent to real servers.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from herdproof.ticked_memcached import MetaClient


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _require(binary: str, package: str) -> str:
    found = shutil.which(binary)
    if found is None:
        message = (f"{binary} not found: install the Debian package `{package}` "
                   f"(apt-get install -y {package}) to run the conformance tests")
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the conformance tests, but {message}", pytrace=False)
        pytest.skip(message)
    return found


def _wait_for_port(port: int, process: subprocess.Popen[bytes], name: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode} on start")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"{name} did not listen on 127.0.0.1:{port} within 10 s")


def _serve(command: list[str], port: int, name: str, cwd: Path) -> Iterator[None]:
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, process, name)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``redis://127.0.0.1:<port>/0`` of a fresh ``redis-server`` for this session."""
    binary = _require("redis-server", "redis-server")
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", str(workdir), "--daemonize", "no",
               "--protected-mode", "yes", "--logfile", ""]
    yield from _serve_url(command, port, "redis-server", workdir, f"redis://127.0.0.1:{port}/0")


@pytest.fixture(scope="session")
def memcached_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """``(host, port)`` of a fresh ``memcached`` for this session (for the memcached model)."""
    binary = _require("memcached", "memcached")
    port = _free_port()
    workdir = tmp_path_factory.mktemp("memcached")
    command = [binary, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "16"]
    if os.geteuid() == 0:
        command += ["-u", "root"]  # memcached refuses to run as root without naming the user
    for _ in _serve(command, port, "memcached", workdir):
        yield ("127.0.0.1", port)


def _serve_url(command: list[str], port: int, name: str, cwd: Path,
               url: str) -> Iterator[str]:
    for _ in _serve(command, port, name, cwd):
        yield url


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Callable[[str], int]]:
    """Start a real ``nginx`` (Debian's ``nginx-light``) with the given ``http { }`` body and
    return its loopback port; every nginx started is stopped after the test.

    Each runs in the foreground as one process (``daemon off; master_process off;``) under its
    own prefix in ``tmp_path``: its pid file, error log, temporary paths and proxy cache live
    there. The body's ``listen`` must name ``{port}``, which is filled in with a free port.
    """
    binary = _require("nginx", "nginx-light")
    with ExitStack() as stack:
        def start(http: str) -> int:
            port = _free_port()
            prefix = tmp_path / f"nginx-{port}"
            (prefix / "logs").mkdir(parents=True)
            temp = "\n".join(f"    {kind}_temp_path {prefix / kind};"
                              for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
            conf = prefix / "nginx.conf"
            conf.write_text(f"daemon off;\nmaster_process off;\npid {prefix / 'nginx.pid'};\n"
                            f"error_log {prefix / 'logs' / 'error.log'} info;\n"
                            f"events {{ worker_connections 64; }}\n"
                            f"http {{\n    access_log off;\n{temp}\n"
                            f"{http.replace('{port}', str(port))}\n}}\n", encoding="utf-8")
            command = [binary, "-p", str(prefix), "-c", str(conf),
                       "-e", str(prefix / "logs" / "error.log")]
            stack.enter_context(contextmanager(_serve)(command, port, "nginx", prefix))
            return port

        yield start


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[object]:
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def meta_client(memcached_address: tuple[str, int]) -> Iterator[MetaClient]:
    """A text/meta-protocol connection to this session's memcached."""
    client = MetaClient(memcached_address)
    yield client
    client.close()


