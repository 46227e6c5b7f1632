"""The fault suite's own Kafka broker and PostgreSQL servers, which it stops and restarts.

Nothing here touches the shared test stack: a broker and one or two embedded PostgreSQL
servers are started on free ports under a temporary directory with :mod:`upward.stack`
(the victim service of a database outage gets the second server, so stopping it affects
that service only). :class:`ChaosInfra` is a context manager: everything it started is
stopped on exit, whatever happened.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from upward.services.manager import Infrastructure
from upward.stack import SERVICES, StackError, StackSettings
from upward.stack import kafka as stack_kafka
from upward.stack import postgres as stack_postgres
from upward.stack.process import port_free

HOST = "127.0.0.1"


def _database(service: str) -> str:
    return f"upward_{service}"


#: Ports below Linux's ephemeral range (32768-60999): a client retrying a stopped server
#: on an ephemeral port can be given that very port as its own source port (a TCP
#: self-connect), and the server could not listen there again when restarted.
STABLE_PORTS = range(20000, 32000)


def stable_ports(count: int) -> list[int]:
    """*count* distinct free ports outside the ephemeral range (random, then checked)."""
    rng = random.Random()
    found: list[int] = []
    while len(found) < count:
        port = rng.choice(STABLE_PORTS)
        if port not in found and port_free(HOST, port):
            found.append(port)
    return found


@dataclass
class ChaosInfra:
    """A broker and PostgreSQL server(s) of one fault-suite run, under *home*.

    ``own_server``: the services whose database runs on a second PostgreSQL server.
    """

    home: Path
    own_server: tuple[str, ...] = ()
    kafka: stack_kafka.KafkaConfig = field(init=False)
    servers: dict[str, stack_postgres.PostgresConfig] = field(init=False)
    _started: list[str] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        """Choose the ports and directories; nothing starts yet."""
        stack = StackSettings()
        plain, controller, main_pg, own_pg = stable_ports(4)
        self.kafka = stack_kafka.KafkaConfig(
            version=stack.kafka_version,
            libs_dir=stack.kafka_libs_dir,
            home=self.home / "kafka",
            port=plain,
            controller_port=controller,
            heap_max="384m",
        )
        self.servers = {"main": stack_postgres.PostgresConfig(self.home / "pg-main", main_pg)}
        if self.own_server:
            self.servers["own"] = stack_postgres.PostgresConfig(self.home / "pg-own", own_pg)

    # ------------------------------------------------------------ addresses

    def server_of(self, service: str) -> str:
        """The name of the PostgreSQL server holding *service*'s database."""
        return "own" if service in self.own_server else "main"

    @property
    def infrastructure(self) -> Infrastructure:
        """Where the services find the broker and their databases."""
        urls = {s: f"{self.servers[self.server_of(s)].server_url}/{_database(s)}" for s in SERVICES}
        return Infrastructure(self.kafka.bootstrap_servers, urls)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the broker and the PostgreSQL server(s); create the databases."""
        stack_kafka.fetch_jars(self.kafka)
        stack_kafka.write_config(self.kafka)
        stack_kafka.format_storage(self.kafka)
        self.start_broker()
        for name, cfg in self.servers.items():
            stack_postgres.init_cluster(cfg)
            self.start_postgres(name)
            wanted = [_database(s) for s in SERVICES if self.server_of(s) == name]
            stack_postgres.ensure_databases_sync(cfg.admin_url, wanted)

    def start_broker(self) -> None:
        """Start the broker (again) and wait until it answers metadata requests."""
        pid = stack_kafka.start_broker(self.kafka)
        self._note("kafka")
        stack_kafka.wait_ready(self.kafka, pid, timeout=120.0)

    def stop_broker(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after its stop timeout)."""
        stack_kafka.stop_broker(self.kafka)

    def start_postgres(self, server: str, *, attempts: int = 5) -> None:
        """Start PostgreSQL server *server* (``main`` or ``own``) and wait until it serves;
        a start that fails is tried again (up to *attempts* times, 3 s apart)."""
        cfg = self.servers[server]
        for attempt in range(1, attempts + 1):
            try:
                stack_postgres.start_server(cfg)
                break
            except StackError as exc:
                print(f"PostgreSQL {server} did not start (attempt {attempt}): {exc.message}")
                if attempt == attempts:
                    raise
                time.sleep(3.0)
        self._note(f"pg-{server}")
        stack_postgres.wait_ready(cfg, timeout=60.0)

    def stop_postgres(self, server: str) -> None:
        """Stop PostgreSQL server *server* (fast shutdown: sessions are disconnected)."""
        stack_postgres.stop_server(self.servers[server])

    def stop(self) -> None:
        """Stop everything this run started (each stop is tried even if one fails)."""
        errors: list[BaseException] = []
        for started in reversed(self._started):
            try:
                if started == "kafka":
                    self.stop_broker()
                else:
                    self.stop_postgres(started.removeprefix("pg-"))
            except Exception as exc:  # keep stopping the others
                errors.append(exc)
        self._started.clear()
        if errors:
            raise errors[0]

    def _note(self, component: str) -> None:
        if component not in self._started:
            self._started.append(component)

    def __enter__(self) -> ChaosInfra:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
