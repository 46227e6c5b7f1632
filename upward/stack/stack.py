"""The local stack as one object: :class:`LocalStack` (up / down / status / info)."""

from __future__ import annotations

import functools
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import psutil

from upward.stack import kafka, postgres
from upward.stack.errors import StackError
from upward.stack.process import (
    Step,
    describe,
    is_alive,
    kill_processes,
    no_step,
    port_free,
    run_sync,
    wait_gone,
)
from upward.stack.settings import (
    SERVICES,
    ExternalAddresses,
    StackSettings,
    database_url,
    server_url,
    service_database_name,
)

State = Literal["ready", "stopped", "external", "not ready", "unreachable"]
#: States in which a component is usable.
OK_STATES: frozenset[str] = frozenset({"ready", "external"})
_STATE_FILE = "stack.json"
_PROCESS_NAMES = ("java", "postgres", "pg_ctl")


@dataclass(frozen=True)
class ComponentStatus:
    """One row of ``upward stack status``."""

    name: Literal["kafka", "postgres"]
    state: State
    address: str
    pid: int | None = None
    version: str | None = None
    data_dir: Path | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        """True if the component can be used (ready, or external and reachable)."""
        return self.state in OK_STATES


@dataclass(frozen=True)
class StackInfo:
    """How to reach the running stack."""

    bootstrap_servers: str
    postgres_admin_url: str
    database_urls: dict[str, str]
    kafka_version: str | None
    postgres_version: str | None
    kafka_external: bool = False
    postgres_external: bool = False
    home: Path | None = None
    kafka_pid: int | None = None
    postgres_pid: int | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """Environment variables that point services and tools at this stack."""
        variables = {"UPWARD_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers}
        if not self.postgres_external:
            variables["UPWARD_DATABASE_URL"] = server_url(self.postgres_admin_url)
        for service, url in self.database_urls.items():
            variables[f"UPWARD_{service.upper()}_DATABASE_URL"] = url
        return variables


class LocalStack:
    """Local Kafka + PostgreSQL for development and tests.

    >>> stack = LocalStack(StackSettings())
    >>> info = stack.up()          # idempotent
    >>> rows = stack.status()
    >>> stack.down(purge=False)

    Components whose address is configured (:class:`ExternalAddresses`) are not started;
    they are checked instead.
    """

    def __init__(
        self, settings: StackSettings | None = None, external: ExternalAddresses | None = None
    ) -> None:
        """Use *settings* (default: from env) and *external* (default: from env)."""
        self.settings = settings if settings is not None else StackSettings()
        self.external = self._ignore_self(external if external is not None else ExternalAddresses())

    def _ignore_self(self, ext: ExternalAddresses) -> ExternalAddresses:
        """Drop "external" addresses that are this stack's own (after `eval $(... env)`).

        An address is this stack's own if it equals the one this home records or would
        use, and this home runs it (recorded) or nothing else listens there.
        """
        update: dict[str, None] = {}
        state = self._state()
        cfg = self.kafka_config()
        if ext.kafka_bootstrap_servers == cfg.bootstrap_servers and (
            "kafka" in state or port_free(kafka.HOST, cfg.port)
        ):
            update["kafka_bootstrap_servers"] = None
        pg = self.postgres_config()
        own = {s: database_url(pg.server_url, service_database_name(s)) for s in SERVICES}
        if (
            ext.database_url in (None, pg.server_url, pg.admin_url)
            and ext.service_database_urls() == own
            and ("postgres" in state or port_free(postgres.HOST, pg.port))
        ):
            update |= {"database_url": None} | {f"{s}_database_url": None for s in SERVICES}
        return ext.model_copy(update=update) if update else ext

    # ------------------------------------------------------------ configuration

    @property
    def home(self) -> Path:
        """The stack's data directory."""
        return self.settings.home

    @property
    def state_file(self) -> Path:
        """JSON record of the ports and versions the running components use."""
        return self.home / _STATE_FILE

    def _state(self) -> dict[str, Any]:
        """Read the state file ({} when missing or broken)."""
        try:
            data = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save_state(self, component: str, values: dict[str, Any] | None) -> None:
        """Record (or forget, when *values* is None) what *component* runs with."""
        state = self._state()
        if values is None:
            state.pop(component, None)
        else:
            state[component] = values
        self.home.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")

    def _recorded(self, component: str, *, restart: bool) -> dict[str, Any]:
        """Recorded values of *component*, minus those the user set explicitly on restart.

        A running component keeps its recorded ports (status/down find it there). On a
        restart after a crash the recorded ports are reused unless the user set them
        (CLI option or ``UPWARD_STACK_*``); after a clean ``down`` nothing is recorded.
        """
        rec = dict(self._state().get(component, {}))
        if restart:
            names = {"port": f"{component}_port", "controller_port": "kafka_controller_port"}
            for key, field_name in names.items():
                if field_name in self.settings.model_fields_set:
                    rec.pop(key, None)
            if "kafka_version" in self.settings.model_fields_set:
                rec.pop("version", None)
                rec.pop("libs_dir", None)
        return rec

    def kafka_config(self, *, restart: bool = False) -> kafka.KafkaConfig:
        """Broker configuration: recorded ports/version first, then the settings."""
        s = self.settings
        rec = self._recorded("kafka", restart=restart)
        version = str(rec.get("version", s.kafka_version))
        return kafka.KafkaConfig(
            version=version,
            libs_dir=Path(rec.get("libs_dir", s.cache_dir / f"kafka-{version}" / "libs")),
            home=s.kafka_dir,
            port=int(rec.get("port", s.kafka_port)),
            controller_port=int(rec.get("controller_port", s.kafka_controller_port)),
            heap_min=s.kafka_heap_min,
            heap_max=s.kafka_heap_max,
            java=s.java,
            maven=s.maven,
            maven_timeout=s.maven_timeout,
            start_timeout=s.kafka_start_timeout,
            stop_timeout=s.kafka_stop_timeout,
        )

    def postgres_config(self, *, restart: bool = False) -> postgres.PostgresConfig:
        """PostgreSQL configuration: recorded port first, then the settings."""
        rec = self._recorded("postgres", restart=restart)
        return postgres.PostgresConfig(
            home=self.settings.postgres_dir,
            port=int(rec.get("port", self.settings.postgres_port)),
            start_timeout=self.settings.postgres_start_timeout,
        )

    def _database_urls(self, pg: postgres.PostgresConfig) -> dict[str, str]:
        """Per-service database URLs (external ones when configured)."""
        if self.external.postgres_is_external:
            return self.external.service_database_urls()
        return {s: database_url(pg.server_url, service_database_name(s)) for s in SERVICES}

    def _postgres_admin_url(self, pg: postgres.PostgresConfig) -> str:
        """Admin URL: the local superuser URL, or the configured external one."""
        if self.external.postgres_is_external:
            return self.external.database_url or next(
                iter(self.external.service_database_urls().values())
            )
        return pg.admin_url

    def info(self) -> StackInfo:
        """Addresses of the stack as configured/recorded (no probing, nothing started)."""
        cfg, pg = self.kafka_config(), self.postgres_config()
        state = self._state()
        return StackInfo(
            bootstrap_servers=self.external.kafka_bootstrap_servers or cfg.bootstrap_servers,
            postgres_admin_url=self._postgres_admin_url(pg),
            database_urls=self._database_urls(pg),
            kafka_version=None if self.external.kafka_is_external else cfg.version,
            postgres_version=state.get("postgres", {}).get("version"),
            kafka_external=self.external.kafka_is_external,
            postgres_external=self.external.postgres_is_external,
            home=self.home,
            kafka_pid=kafka.running_pid(cfg),
            postgres_pid=postgres.running_pid(pg),
        )

    # ----------------------------------------------------------------------- up

    def up(self, step: Step = no_step, *, with_kafka: bool = True,
           with_postgres: bool = True) -> StackInfo:  # fmt: skip
        """Start (or confirm) the components and wait until they answer.

        Idempotent: running components are only checked. *step* receives a short
        description of each long step (for spinners). Raises :class:`StackError`.
        """
        timings: dict[str, float] = {}
        self.home.mkdir(parents=True, exist_ok=True)
        kafka_pid: int | None = None
        launched_at = time.monotonic()
        if with_kafka and not self.external.kafka_is_external:
            kafka_pid, launched_at = self._launch_kafka(step, timings)
        pg_version: str | None = None
        postgres_pid: int | None = None
        if with_postgres:
            pg_version, postgres_pid = self._up_postgres(step, timings)
        kafka_version: str | None = None
        if with_kafka:
            kafka_version = self._await_kafka(step, kafka_pid, launched_at, timings)
        info = self.info()
        return StackInfo(
            bootstrap_servers=info.bootstrap_servers,
            postgres_admin_url=info.postgres_admin_url,
            database_urls=info.database_urls,
            kafka_version=kafka_version,
            postgres_version=pg_version,
            kafka_external=info.kafka_external,
            postgres_external=info.postgres_external,
            home=self.home,
            kafka_pid=kafka_pid,
            postgres_pid=postgres_pid,
            timings=timings,
        )

    def _launch_kafka(self, step: Step, timings: dict[str, float]) -> tuple[int, float]:
        """Fetch jars, configure, format and start the broker unless it runs.

        Returns the broker pid and the monotonic time it was launched.
        """
        running = self.kafka_config()
        pid = kafka.running_pid(running)
        if pid is not None:
            step(f"Kafka already running (pid {pid}) at {running.bootstrap_servers}")
            return pid, time.monotonic()
        cfg = self.kafka_config(restart=True)
        self._kill_leftovers(str(cfg.properties_file))
        for port in (cfg.port, cfg.controller_port):
            if not port_free(kafka.HOST, port):
                raise StackError(
                    f"Port {port} on {kafka.HOST} is already in use: choose others with "
                    "--kafka-port / UPWARD_STACK_KAFKA_PORT / UPWARD_STACK_KAFKA_CONTROLLER_PORT"
                )
        t0 = time.monotonic()
        if kafka.fetch_jars(cfg, step):
            timings["kafka_fetch"] = time.monotonic() - t0
        kafka.write_config(cfg)
        t0 = time.monotonic()
        if kafka.format_storage(cfg, step):
            timings["kafka_format"] = time.monotonic() - t0
        step(f"Starting Apache Kafka {cfg.version} (KRaft) on {cfg.bootstrap_servers}")
        launched_at = time.monotonic()
        pid = kafka.start_broker(cfg)
        self._save_state("kafka", {
            "version": cfg.version, "libs_dir": str(cfg.libs_dir), "port": cfg.port,
            "controller_port": cfg.controller_port, "pid": pid,
        })  # fmt: skip
        return pid, launched_at

    def _await_kafka(self, step: Step, pid: int | None, launched_at: float,
                     timings: dict[str, float]) -> str | None:  # fmt: skip
        """Wait for the local broker, or check the external one; return its version."""
        if self.external.kafka_is_external:
            servers = self.external.kafka_bootstrap_servers or ""
            step(f"Checking external Kafka at {servers}")
            try:
                kafka.describe_cluster(servers, timeout=10.0)
            except Exception as exc:
                message = f"External Kafka at {servers} does not answer: {_explain(exc)}"
                raise StackError(message) from exc
            return None
        cfg = self.kafka_config()
        step(f"Waiting for Kafka at {cfg.bootstrap_servers} (metadata request)")
        kafka.wait_ready(cfg, pid, cfg.start_timeout)
        timings["kafka_ready"] = time.monotonic() - launched_at
        return cfg.version

    def _up_postgres(self, step: Step, timings: dict[str, float]) -> tuple[str, int | None]:
        """Start/check PostgreSQL and create the service databases; (version, pid)."""
        if self.external.postgres_is_external:
            return self._check_external_postgres(step), None
        t0 = time.monotonic()
        pg = self.postgres_config()
        pid = postgres.running_pid(pg)
        if pid is not None:
            step(f"PostgreSQL already running (pid {pid}) on port {pg.port}")
        else:
            pg = self.postgres_config(restart=True)
            postgres.init_cluster(pg, step)
            step(f"Starting PostgreSQL on {postgres.HOST}:{pg.port}")
            pid = postgres.start_server(pg)
            self._save_state("postgres", {"port": pg.port, "pid": pid})
        version = postgres.wait_ready(pg, pg.start_timeout)
        step("Creating the service databases")
        postgres.ensure_databases_sync(pg.admin_url, [service_database_name(s) for s in SERVICES])
        self._save_state("postgres", {"port": pg.port, "pid": pid, "version": version})
        timings["postgres_ready"] = time.monotonic() - t0
        return version, pid

    def _check_external_postgres(self, step: Step) -> str:
        """Connect to the configured server(s); create service DBs on a server URL."""
        ext = self.external
        if ext.database_url:
            server_url = ext.database_url
            step(f"Checking external PostgreSQL at {_redact(server_url)}")
            names = [service_database_name(s) for s, url in ext.per_service_urls().items()
                     if not url]  # fmt: skip
            try:
                postgres.ensure_databases_sync(server_url, names)
            except Exception as exc:
                raise StackError(
                    f"External PostgreSQL {_redact(server_url)} does not answer: {exc}"
                ) from exc
        return self._probe_urls(ext.service_database_urls(), step)[0]

    @staticmethod
    def _probe_urls(urls: dict[str, str], step: Step) -> list[str]:
        """Connect to every service URL; return their ``SELECT version()``."""
        versions: list[str] = []
        for service, url in urls.items():
            step(f"Checking the {service} database at {_redact(url)}")
            try:
                versions.append(run_sync(functools.partial(postgres.server_version, url)))
            except Exception as exc:
                raise StackError(f"{service} database {_redact(url)} unreachable: {exc}") from exc
        return versions

    # --------------------------------------------------------------------- down

    def down(self, *, purge: bool = False, step: Step = no_step) -> list[str]:
        """Stop local components, verify no process of this stack is left.

        Returns what was done (for display). With *purge*, the home directory is
        deleted afterwards. Raises :class:`StackError` if a process survives.
        """
        done: list[str] = []
        watched = self._stack_processes()
        cfg = self.kafka_config()
        if kafka.running_pid(cfg) is not None:
            step("Stopping Kafka")
            kafka.stop_broker(cfg)
            done.append("Kafka stopped")
        pg = self.postgres_config()
        if postgres.running_pid(pg) is not None:
            step("Stopping PostgreSQL")
            postgres.stop_server(pg)
            done.append("PostgreSQL stopped")
        cfg.pid_file.unlink(missing_ok=True)
        self._verify_gone(watched, done)
        if self.state_file.exists():
            self.state_file.unlink()
        if purge:
            self._purge()
            done.append(f"Deleted {self.home}")
        return done

    def _verify_gone(self, watched: list[psutil.Process], done: list[str]) -> None:
        """Kill survivors among *watched* + leftovers; raise if any still lives."""
        leftovers = [p for p in watched if is_alive(p.pid)] + self._stack_processes()
        if leftovers:
            step_desc = ", ".join(sorted({describe(p) for p in leftovers}))
            done.append(f"Killed leftover processes: {step_desc}")
            kill_processes(leftovers)
        survivors = [p for p in watched if is_alive(p.pid)] + self._stack_processes()
        if survivors:
            raise StackError(
                "Processes of this stack are still running: "
                + "; ".join(describe(p) for p in survivors)
            )

    def _stack_processes(self) -> list[psutil.Process]:
        """Java/PostgreSQL processes of this home and all their descendants."""
        marker = str(self.home)
        roots: dict[int, psutil.Process] = {}
        for proc in psutil.process_iter(attrs=["pid", "name", "cmdline"]):
            cmdline: list[str] = proc.info.get("cmdline") or []
            name = str(proc.info.get("name") or "")
            exe = Path(cmdline[0]).name if cmdline else ""
            if (name in _PROCESS_NAMES or exe in _PROCESS_NAMES) and any(
                marker in arg for arg in cmdline
            ):
                roots[proc.pid] = proc
        found = dict(roots)
        for proc in roots.values():
            try:
                found.update({c.pid: c for c in proc.children(recursive=True)})
            except psutil.Error:
                continue
        return [p for p in found.values() if is_alive(p.pid)]

    def _kill_leftovers(self, marker: str) -> None:
        """Kill processes of this home mentioning *marker* that have no pid file."""
        procs = [p for p in self._stack_processes() if _cmdline_has(p, marker)]
        if procs:
            kill_processes(procs)
            wait_gone([p.pid for p in procs], 10.0)

    def _purge(self) -> None:
        """Delete the home directory if it looks like a stack home."""
        if not self.home.exists():
            return
        names = {p.name for p in self.home.iterdir()}
        if names and not names & {"kafka", "postgres", _STATE_FILE}:
            raise StackError(f"Refusing to delete {self.home}: it does not look like a stack home")
        shutil.rmtree(self.home)

    # ------------------------------------------------------------------- status

    def status(self) -> list[ComponentStatus]:
        """Probe both components (nothing is started)."""
        return [self._kafka_status(), self._postgres_status()]

    def _kafka_status(self) -> ComponentStatus:
        """Status of the local or external broker."""
        if self.external.kafka_is_external:
            servers = self.external.kafka_bootstrap_servers or ""
            try:
                kafka.describe_cluster(servers, timeout=5.0)
                state: State = "external"
                detail = "UPWARD_KAFKA_BOOTSTRAP_SERVERS"
            except Exception as exc:
                state, detail = "unreachable", _explain(exc)
            return ComponentStatus("kafka", state, servers, detail=detail)
        cfg = self.kafka_config()
        pid = kafka.running_pid(cfg)
        version = kafka.jar_version(cfg.libs_dir) or cfg.version
        if pid is None:
            return ComponentStatus("kafka", "stopped", cfg.bootstrap_servers, None, version,
                                   cfg.home)  # fmt: skip
        try:
            kafka.describe_cluster(cfg.bootstrap_servers, timeout=5.0)
            state, detail = "ready", ""
        except Exception as exc:
            state, detail = "not ready", _explain(exc)
        return ComponentStatus("kafka", state, cfg.bootstrap_servers, pid, version, cfg.home,
                               detail)  # fmt: skip

    def _postgres_status(self) -> ComponentStatus:
        """Status of the local or external PostgreSQL."""
        pg = self.postgres_config()
        if self.external.postgres_is_external:
            urls = self.external.service_database_urls()
            hosts = {urlsplit(u).netloc.rsplit("@", 1)[-1] for u in urls.values()}
            address = ", ".join(sorted(hosts))
            try:
                versions = self._probe_urls(urls, no_step)
                return ComponentStatus("postgres", "external", address, None,
                                       _short_pg(versions[0]))  # fmt: skip
            except StackError as exc:
                return ComponentStatus("postgres", "unreachable", address, detail=exc.message)
        address = f"{postgres.HOST}:{pg.port}"
        pid = postgres.running_pid(pg)
        if pid is None:
            return ComponentStatus("postgres", "stopped", address, None,
                                   postgres.binaries_version(), pg.data_dir)  # fmt: skip
        try:
            version = run_sync(functools.partial(postgres.server_version, pg.admin_url))
            return ComponentStatus("postgres", "ready", address, pid, _short_pg(version),
                                   pg.data_dir)  # fmt: skip
        except Exception as exc:
            return ComponentStatus("postgres", "not ready", address, pid, None, pg.data_dir,
                                   _explain(exc))  # fmt: skip


def _explain(exc: BaseException) -> str:
    """``Type: message`` of *exc*, without repeating the type when the message has it."""
    text = str(exc) or repr(exc)
    name = type(exc).__name__
    return text if text.startswith(name) else f"{name}: {text}"


def _short_pg(version: str) -> str:
    """``PostgreSQL 18.1 on x86_64...`` -> ``PostgreSQL 18.1``."""
    return " ".join(version.split()[:2])


def _redact(url: str) -> str:
    """Hide the password of a URL for display."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}{':***' if ':' in creds else ''}@{host}"


def _cmdline_has(proc: psutil.Process, marker: str) -> bool:
    """True if *proc*'s command line mentions *marker*."""
    try:
        return any(marker in arg for arg in proc.cmdline())
    except psutil.Error:
        return False
