"""Run the four services as separate OS processes: start, wait ready, stop, report.

Each service is ``python -m services.<name>`` in its own process group, with a pid file and
a log file in a run directory (default ``$UPWARD_STACK_HOME/services``). Its environment is
built by :func:`service_environment`, the one place that decides what a service is told
(database, broker, topic prefix, port, clock, SMTP; authentication settings go there too).
A local SMTP sink (:mod:`upward.services.mailsink`) runs beside them so the notifications
service can send e-mail; it keeps what it received in ``mail.jsonl``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import psutil

from upward.stack import SERVICES

#: Default HTTP port of each service.
DEFAULT_PORTS: dict[str, int] = {
    "matching": 8101,
    "sessions": 8102,
    "feedback": 8103,
    "notifications": 8104,
}
MAIL_SINK = "mailsink"
DEFAULT_MAIL_PORT = 8125
STATE_FILE = "services.json"
ROOT = Path(__file__).resolve().parents[2]


class ServicesError(RuntimeError):
    """A service could not be started or stopped; carries the tail of its log."""

    def __init__(self, message: str, *, log_path: Path | None = None, log_tail: str = "") -> None:
        """Keep the message, the log file and its last lines."""
        super().__init__(message)
        self.message = message
        self.log_path = log_path
        self.log_tail = log_tail


@dataclass(frozen=True)
class Infrastructure:
    """Where the services find Kafka and PostgreSQL."""

    bootstrap_servers: str
    database_urls: dict[str, str]


@dataclass(frozen=True)
class ServiceOptions:
    """How the services run: ports, topic prefix, clock, SMTP sink, extra settings."""

    run_dir: Path
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    mail_port: int = DEFAULT_MAIL_PORT
    topic_prefix: str = ""
    clock_start: datetime | None = None
    """Manual clock starting here (``UPWARD_CLOCK=manual``); ``None``: the system clock."""
    fast: bool = True
    """Short timer and commit intervals and large batches (demo, tests)."""
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def mail_file(self) -> Path:
        """Where the SMTP sink writes what it received."""
        return self.run_dir / "mail.jsonl"

    def url(self, service: str) -> str:
        """Base URL of *service*'s HTTP API."""
        return f"http://127.0.0.1:{self.ports[service]}"


def _fast_settings(service: str) -> dict[str, str]:
    """Intervals and batch sizes that keep a simulated run brisk (demo, tests)."""
    prefix = f"UPWARD_{service.upper()}_"
    common = {"COMMIT_INTERVAL_S": "0.2", "RELAY_POLL_INTERVAL_S": "0.2"}
    own = {
        "matching": {"CONTINUOUS_INTERVAL_S": "2", "EXPIRY_INTERVAL_S": "5"},
        "sessions": {"TIMER_BATCH_MAX": "5000", "MISSED_GRACE_MINUTES": "2880"},
        "feedback": {"MILESTONE_INTERVAL_S": "5", "OVERDUE_INTERVAL_S": "5"},
        "notifications": {
            "DELIVERY_INTERVAL_S": "0.5",
            "DELIVERY_BATCH_MAX": "1000",
            "DELIVERY_CONCURRENCY": "16",
            "RATE_LIMIT_PER_HOUR": "200",
        },
    }[service]
    return {prefix + key: value for key, value in (common | own).items()}


INHERITED_SETTINGS = (
    "UPWARD_AUTH_",
    "UPWARD_KAFKA_SECURITY_PROTOCOL",
    "UPWARD_KAFKA_SASL_",
    "UPWARD_KAFKA_SSL_",
    "UPWARD_REGION",
    "UPWARD_LOG_LEVEL",
)
"""``UPWARD_*`` settings the services take from the caller's environment: how tokens are
verified (the ``upward`` tool signs its own with the same settings), how Kafka is reached,
the region and the log level. Every other ``UPWARD_*`` variable is decided here."""


def _inherited(key: str) -> bool:
    return not key.startswith("UPWARD_") or key.startswith(INHERITED_SETTINGS)


def service_environment(
    name: str, infra: Infrastructure, options: ServiceOptions
) -> dict[str, str]:
    """The complete environment of service *name*: the one place it is decided."""
    prefix = f"UPWARD_{name.upper()}_"
    env = {key: value for key, value in os.environ.items() if _inherited(key)}
    env |= {
        "UPWARD_KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap_servers,
        "UPWARD_TOPIC_PREFIX": options.topic_prefix,
        prefix + "DATABASE_URL": infra.database_urls[name],
        prefix + "HTTP_PORT": str(options.ports[name]),
        "PYTHONUNBUFFERED": "1",
    }
    if options.clock_start is not None:
        env |= {"UPWARD_CLOCK": "manual", "UPWARD_CLOCK_START": options.clock_start.isoformat()}
    if name == "notifications":
        env |= {
            prefix + "SMTP_HOST": "127.0.0.1",
            prefix + "SMTP_PORT": str(options.mail_port),
            prefix + "SMTP_TLS": "none",
        }
    if options.fast:
        env |= _fast_settings(name)
    return env | options.extra_env


@dataclass(frozen=True)
class ProcessStatus:
    """One managed process as ``status`` reports it."""

    name: str
    pid: int | None
    port: int
    running: bool
    ready: bool
    url: str


def _pid_file(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.pid"


def log_file(run_dir: Path, name: str) -> Path:
    """The log file of process *name* (a service or the mail sink)."""
    return run_dir / f"{name}.log"


def _tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def _marker(name: str) -> str:
    """What the command line of process *name* contains (to never signal a stranger)."""
    return "upward.services.mailsink" if name == MAIL_SINK else f"services.{name}"


def _live_process(run_dir: Path, name: str) -> psutil.Process | None:
    """The recorded process of *name* if it still runs and is ours."""
    try:
        pid = int(_pid_file(run_dir, name).read_text().strip())
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc if _marker(name) in " ".join(_command_line(proc)) else None
    except (OSError, ValueError, psutil.Error):
        return None


def _command_line(proc: psutil.Process, *, attempts: int = 50) -> list[str]:
    """The command line of *proc*. Just after ``exec`` the kernel briefly shows an empty
    one; it is read again (up to about half a second) rather than taken for a stranger."""
    for _ in range(attempts):
        argv: list[str] = proc.cmdline()
        if argv:
            return argv
        time.sleep(0.01)
    return []


def _spawn(run_dir: Path, name: str, argv: list[str], env: Mapping[str, str]) -> int:
    """Start *argv* in its own process group, output to its log; write its pid file."""
    log = log_file(run_dir, name)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            env=dict(env),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    _pid_file(run_dir, name).write_text(f"{proc.pid}\n")
    return proc.pid


def _http_ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


Notify = Callable[[str], None]


def _no_notify(_: str) -> None:
    return None


class ServiceSupervisor:
    """Starts, checks and stops the four services and the mail sink of one run directory."""

    def __init__(self, options: ServiceOptions) -> None:
        """Nothing starts yet; the run directory is created."""
        self.options = options
        self.run_dir = options.run_dir
        self.run_dir.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_run_dir(cls, run_dir: Path) -> ServiceSupervisor:
        """The supervisor of services started earlier in *run_dir* (ports from its state)."""
        state_path = run_dir / STATE_FILE
        if not state_path.exists():
            return cls(ServiceOptions(run_dir=run_dir))
        state = json.loads(state_path.read_text())
        start = state.get("clock_start")
        return cls(
            ServiceOptions(
                run_dir=run_dir,
                ports={k: int(v) for k, v in state["ports"].items()},
                mail_port=int(state["mail_port"]),
                topic_prefix=state.get("topic_prefix", ""),
                clock_start=datetime.fromisoformat(start) if start else None,
            )
        )

    def _save_state(self) -> None:
        state = asdict(self.options) | {"run_dir": str(self.run_dir)}
        state["clock_start"] = (
            self.options.clock_start.isoformat() if self.options.clock_start else None
        )
        state["extra_env"] = {}
        (self.run_dir / STATE_FILE).write_text(json.dumps(state, indent=2, default=str))

    def up(
        self, infra: Infrastructure, *, timeout_s: float = 120.0, notify: Notify = _no_notify
    ) -> None:
        """Start the mail sink and every service not yet running; wait until all are ready.

        Raises :class:`ServicesError` (with the log's tail) when one exits or is not ready
        within *timeout_s*; the ones already started keep running (``down`` stops them).
        """
        self._save_state()
        self._start_mail_sink(notify)
        for name in SERVICES:
            if _live_process(self.run_dir, name) is None:
                env = service_environment(name, infra, self.options)
                _spawn(self.run_dir, name, [sys.executable, "-m", f"services.{name}"], env)
        for name in SERVICES:
            notify(f"waiting for {name} on port {self.options.ports[name]}")
            self._await_ready(name, timeout_s)

    def pid(self, name: str) -> int | None:
        """The pid of service (or mail sink) *name* if it runs, else ``None``."""
        proc = _live_process(self.run_dir, name)
        return proc.pid if proc is not None else None

    def kill(self, name: str) -> int | None:
        """SIGKILL service (or mail sink) *name*'s process group, as a crash would: no
        shutdown hook runs. Waits until it is gone; returns the pid killed, ``None`` when
        it was not running."""
        proc = _live_process(self.run_dir, name)
        if proc is None:
            return None
        _signal_group(proc, signal.SIGKILL)
        psutil.wait_procs([proc], timeout=10.0)
        _pid_file(self.run_dir, name).unlink(missing_ok=True)
        pid: int = proc.pid
        return pid

    def start(
        self,
        name: str,
        infra: Infrastructure,
        *,
        clock_start: datetime | None = None,
        timeout_s: float = 120.0,
    ) -> int:
        """Start service (or mail sink) *name* if it is not running and wait until it is
        ready; return its pid. *clock_start* overrides the manual clock's start (a service
        restarted mid-run resumes at the run's current simulated time)."""
        if name == MAIL_SINK:
            self._start_mail_sink(_no_notify)
        elif _live_process(self.run_dir, name) is None:
            env = service_environment(name, infra, self.options)
            if clock_start is not None and self.options.clock_start is not None:
                env["UPWARD_CLOCK_START"] = clock_start.isoformat()
            _spawn(self.run_dir, name, [sys.executable, "-m", f"services.{name}"], env)
            self._await_ready(name, timeout_s)
        pid = self.pid(name)
        if pid is None:
            raise ServicesError(f"{name} is not running", log_path=log_file(self.run_dir, name))
        return pid

    def _start_mail_sink(self, notify: Notify) -> None:
        if _live_process(self.run_dir, MAIL_SINK) is not None:
            return
        notify(f"starting the SMTP sink on port {self.options.mail_port}")
        argv = [sys.executable, "-m", "upward.services.mailsink"]
        argv += ["--port", str(self.options.mail_port), "--out", str(self.options.mail_file)]
        _spawn(self.run_dir, MAIL_SINK, argv, os.environ)
        self._await(MAIL_SINK, lambda: _port_open(self.options.mail_port), 30.0)

    def _await_ready(self, name: str, timeout_s: float) -> None:
        url = self.options.url(name)
        self._await(name, lambda: _http_ready(url), timeout_s)

    def _await(self, name: str, ready: Callable[[], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        log = log_file(self.run_dir, name)
        while time.monotonic() < deadline:
            if _live_process(self.run_dir, name) is None:
                raise ServicesError(
                    f"{name} exited during start", log_path=log, log_tail=_tail(log)
                )
            if ready():
                return
            time.sleep(0.25)
        raise ServicesError(
            f"{name} was not ready within {timeout_s:.0f} s", log_path=log, log_tail=_tail(log)
        )

    def down(self, *, timeout_s: float = 20.0, notify: Notify = _no_notify) -> list[str]:
        """SIGTERM every running process (group), SIGKILL after *timeout_s*; names stopped."""
        running = {
            name: proc
            for name in (*SERVICES, MAIL_SINK)
            if (proc := _live_process(self.run_dir, name)) is not None
        }
        for name, proc in running.items():
            notify(f"stopping {name} (pid {proc.pid})")
            _signal_group(proc, signal.SIGTERM)
        _gone, alive = psutil.wait_procs(list(running.values()), timeout=timeout_s)
        for proc in alive:
            _signal_group(proc, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=5.0)
        for name in running:
            _pid_file(self.run_dir, name).unlink(missing_ok=True)
        return list(running)

    def status(self) -> list[ProcessStatus]:
        """Each service and the mail sink: pid, port, running, ready."""
        found = []
        for name in SERVICES:
            proc = _live_process(self.run_dir, name)
            url = self.options.url(name)
            ready = proc is not None and _http_ready(url)
            port = self.options.ports[name]
            pid = proc.pid if proc else None
            found.append(ProcessStatus(name, pid, port, proc is not None, ready, url))
        sink = _live_process(self.run_dir, MAIL_SINK)
        port = self.options.mail_port
        sink_ready = sink is not None and _port_open(port)
        found.append(
            ProcessStatus(
                MAIL_SINK,
                sink.pid if sink else None,
                port,
                sink is not None,
                sink_ready,
                f"smtp://127.0.0.1:{port}",
            )
        )
        return found


def _signal_group(proc: psutil.Process, signum: signal.Signals) -> None:
    """Signal the process group *proc* leads (its children too)."""
    try:
        os.killpg(os.getpgid(proc.pid), signum)
    except ProcessLookupError:
        return
