"""Single-node Apache Kafka (KRaft) run from the official jars of Maven Central.

Layout (``<home>`` is the stack home, ``<cache>`` the jar cache root)::

    <cache>/kafka-<version>/pom.xml        rendered from kafka-pom.xml (package data)
    <cache>/kafka-<version>/libs/*.jar     broker jars + log4j2 backend
    <cache>/kafka-<version>/libs/.complete marker: the fetch finished
    <home>/kafka/config/server.properties  rendered at every `up`
    <home>/kafka/config/log4j2.properties  copied from package data
    <home>/kafka/data/                     log.dirs (formatted by StorageTool)
    <home>/kafka/logs/server.log           broker log (log4j2)
    <home>/kafka/logs/kafka.out            JVM stdout/stderr
    <home>/kafka/kafka.pid                 broker pid (own process group)

With a :class:`SaslSslListener` the broker also opens a SASL_SSL listener (SCRAM-SHA-512
users created at format time, TLS from a PEM keystore) and enforces ACLs there with the
KRaft ``StandardAuthorizer``; the PLAINTEXT listener stays the administrative and
inter-broker one (its anonymous principal is a super user), and :func:`grant_acls` adds
ACLs through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from upward.stack.errors import StackError
from upward.stack.process import (
    Step,
    file_size,
    is_alive,
    live_pid,
    no_step,
    port_open,
    run_sync,
    tail,
    terminate_group,
    write_pid,
)

#: The Apache Kafka version of the local stack: the ONE place it is pinned.
#: Override with the ``UPWARD_STACK_KAFKA_VERSION`` environment variable.
KAFKA_VERSION = "4.0.2"
#: Scala build of the broker artifact (``org.apache.kafka:kafka_<scala>``).
SCALA_VERSION = "2.13"
#: log4j2 backend added to the broker classpath (Kafka 4.0 itself ships 2.24.3).
LOG4J_VERSION = "2.24.3"
#: maven-dependency-plugin used for ``copy-dependencies``.
DEPENDENCY_PLUGIN_VERSION = "3.8.1"

HOST = "127.0.0.1"
_COMPLETE_MARKER = ".complete"
#: Brokers started by this Python process, kept so they can be reaped when stopped.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
#: Size of server.log when each broker (by pid) was launched: its errors start there.
_LOG_OFFSETS: dict[int, int] = {}


@dataclass(frozen=True)
class SaslSslListener:
    """A SASL_SSL (SCRAM-SHA-512) listener with ACLs, beside the PLAINTEXT one.

    ``keystore`` is a PEM file with the broker's unencrypted PKCS#8 private key followed by
    its certificate chain; ``users`` maps SCRAM user names to passwords.
    """

    port: int
    keystore: Path
    users: dict[str, str]

    def scram_arguments(self) -> list[str]:
        """``--add-scram`` arguments of ``kafka-storage format`` for every user."""
        return [
            arg
            for name, password in sorted(self.users.items())
            for arg in ("--add-scram", f"SCRAM-SHA-512=[name={name},password={password}]")
        ]


@dataclass(frozen=True)
class KafkaConfig:
    """Everything needed to fetch, configure, start and stop the local broker."""

    version: str
    libs_dir: Path
    home: Path
    port: int
    controller_port: int
    heap_min: str = "256m"
    heap_max: str = "512m"
    java: str = "java"
    maven: str = "mvn"
    maven_timeout: float = 900.0
    start_timeout: float = 90.0
    stop_timeout: float = 30.0
    sasl_ssl: SaslSslListener | None = None

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` of the PLAINTEXT listener."""
        return f"{HOST}:{self.port}"

    @property
    def sasl_ssl_bootstrap_servers(self) -> str | None:
        """``host:port`` of the SASL_SSL listener, if there is one."""
        return None if self.sasl_ssl is None else f"{HOST}:{self.sasl_ssl.port}"

    @property
    def config_dir(self) -> Path:
        """Directory of the rendered broker configuration."""
        return self.home / "config"

    @property
    def properties_file(self) -> Path:
        """The broker's ``server.properties``."""
        return self.config_dir / "server.properties"

    @property
    def log4j_file(self) -> Path:
        """The broker's log4j2 configuration."""
        return self.config_dir / "log4j2.properties"

    @property
    def data_dir(self) -> Path:
        """``log.dirs`` of the broker (also holds the KRaft metadata log)."""
        return self.home / "data"

    @property
    def logs_dir(self) -> Path:
        """``kafka.logs.dir``: server.log and the JVM output."""
        return self.home / "logs"

    @property
    def server_log(self) -> Path:
        """The log4j2 broker log."""
        return self.logs_dir / "server.log"

    @property
    def stdout_log(self) -> Path:
        """The JVM's stdout/stderr."""
        return self.logs_dir / "kafka.out"

    @property
    def tools_logs_dir(self) -> Path:
        """``kafka.logs.dir`` of StorageTool runs (kept out of server.log)."""
        return self.logs_dir / "tools"

    @property
    def pid_file(self) -> Path:
        """The broker's pid file."""
        return self.home / "kafka.pid"


# --------------------------------------------------------------------------- jars


def jars_present(libs_dir: Path) -> bool:
    """True if a previous fetch into *libs_dir* completed."""
    return (libs_dir / _COMPLETE_MARKER).is_file()


def render_pom(version: str) -> str:
    """Return the Maven POM that pulls Kafka *version* plus the log4j2 backend."""
    template = resources.files("upward.stack").joinpath("kafka-pom.xml").read_text("utf-8")
    return Template(template).substitute(
        kafka_version=version,
        scala_version=SCALA_VERSION,
        log4j_version=LOG4J_VERSION,
        dependency_plugin_version=DEPENDENCY_PLUGIN_VERSION,
    )


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on *path* (serialises concurrent fetches)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def fetch_jars(cfg: KafkaConfig, step: Step = no_step) -> bool:
    """Download the broker jars into ``cfg.libs_dir`` once; return True if it fetched.

    Renders the POM next to ``libs/`` and runs ``mvn dependency:copy-dependencies``
    into a temporary directory that is renamed when complete, so an interrupted fetch
    is simply retried.
    """
    if jars_present(cfg.libs_dir):
        return False
    if shutil.which(cfg.maven) is None:
        raise StackError(f"Maven ({cfg.maven!r}) not found: it is needed once to fetch Kafka.")
    root = cfg.libs_dir.parent
    with _file_lock(root / ".lock"):
        if jars_present(cfg.libs_dir):
            return False
        step(f"Fetching Apache Kafka {cfg.version} jars from Maven Central (once)")
        pom = root / "pom.xml"
        pom.write_text(render_pom(cfg.version), encoding="utf-8")
        staging = root / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        _run_maven(cfg, pom, staging)
        jars = sorted(p.name for p in staging.glob("*.jar"))
        if f"kafka_{SCALA_VERSION}-{cfg.version}.jar" not in jars:
            raise StackError(f"Maven finished without kafka_{SCALA_VERSION}-{cfg.version}.jar")
        (staging / _COMPLETE_MARKER).write_text("\n".join(jars) + "\n", encoding="utf-8")
        shutil.rmtree(cfg.libs_dir, ignore_errors=True)
        staging.rename(cfg.libs_dir)
    return True


def _run_maven(cfg: KafkaConfig, pom: Path, output: Path) -> None:
    """Run ``mvn -q -B dependency:copy-dependencies`` for *pom* into *output*."""
    command = [
        cfg.maven, "-q", "-B", "-Dstyle.color=never", "-f", str(pom),
        "dependency:copy-dependencies", f"-DoutputDirectory={output}", "-DincludeScope=runtime",
    ]  # fmt: skip
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=cfg.maven_timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"Maven did not finish within {cfg.maven_timeout:.0f} s") from exc
    if result.returncode != 0:
        output_tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise StackError(
            f"Fetching Kafka {cfg.version} with Maven failed (exit {result.returncode}): "
            f"{' '.join(command)}",
            log_tail=output_tail,
        )


def jar_version(libs_dir: Path) -> str | None:
    """Return the Kafka version of the broker jar in *libs_dir*, if any."""
    prefix = f"kafka_{SCALA_VERSION}-"
    for jar in libs_dir.glob(f"{prefix}*.jar"):
        return jar.name[len(prefix) : -len(".jar")]
    return None


# ------------------------------------------------------------------ configuration


def render_server_properties(cfg: KafkaConfig) -> str:
    """Return ``server.properties`` for a single combined broker+controller node.

    The controller quorum is static (``controller.quorum.voters``), so ports can
    change between runs without touching the formatted metadata log.
    """
    settings: dict[str, str | int] = {
        "process.roles": "broker,controller",
        "node.id": 1,
        "controller.quorum.voters": f"1@{HOST}:{cfg.controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{cfg.port},CONTROLLER://{HOST}:{cfg.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{cfg.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(cfg.data_dir),
        # Tests and faust rely on topics appearing on first use.
        "auto.create.topics.enable": "true",
        "num.partitions": 3,
        "default.replication.factor": 1,
        "min.insync.replicas": 1,
        "offsets.topic.replication.factor": 1,
        "offsets.topic.num.partitions": 10,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "transaction.state.log.num.partitions": 10,
        "share.coordinator.state.topic.replication.factor": 1,
        "share.coordinator.state.topic.min.isr": 1,
        "group.initial.rebalance.delay.ms": 0,
        # On restart the controller keeps the previous incarnation registered until its
        # session expires (default 9 s): a short session makes restarts ~7 s faster.
        "broker.heartbeat.interval.ms": 1000,
        "broker.session.timeout.ms": 3000,
        # Kafka's default maximum record batch (1 MiB + overhead), stated explicitly.
        "message.max.bytes": 1048588,
        "replica.fetch.max.bytes": 1048588,
        "log.retention.hours": 168,
        "log.segment.bytes": 64 * 1024 * 1024,
        "num.network.threads": 2,
        "num.io.threads": 4,
        "num.recovery.threads.per.data.dir": 1,
    }
    if cfg.sasl_ssl is not None:
        settings |= _sasl_ssl_settings(cfg, cfg.sasl_ssl)
    lines = ["# Rendered by `upward stack up`; edits are overwritten at the next start."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def _sasl_ssl_settings(cfg: KafkaConfig, listener: SaslSslListener) -> dict[str, str | int]:
    """Broker settings adding the SASL_SSL listener, its TLS keystore and the authorizer."""
    scram_login = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    return {
        "listeners": f"PLAINTEXT://{HOST}:{cfg.port},SASL_SSL://{HOST}:{listener.port},"
        f"CONTROLLER://{HOST}:{cfg.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{cfg.port},SASL_SSL://{HOST}:{listener.port}",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,"
        "SASL_SSL:SASL_SSL",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram_login,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(listener.keystore),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        # The PLAINTEXT and controller listeners are the local administrative ones.
        "super.users": "User:ANONYMOUS",
        "allow.everyone.if.no.acl.found": "false",
    }


def write_config(cfg: KafkaConfig) -> None:
    """Render ``server.properties`` and install the log4j2 configuration."""
    cfg.config_dir.mkdir(parents=True, exist_ok=True)
    cfg.logs_dir.mkdir(parents=True, exist_ok=True)
    cfg.properties_file.write_text(render_server_properties(cfg), encoding="utf-8")
    log4j = resources.files("upward.stack").joinpath("log4j2.properties").read_text("utf-8")
    cfg.log4j_file.write_text(log4j, encoding="utf-8")


def _java_base(cfg: KafkaConfig, *, tool: bool) -> list[str]:
    """JVM command prefix shared by the broker and StorageTool."""
    command = [cfg.java]
    command += ["-Xms64m", "-Xmx256m", "-XX:TieredStopAtLevel=1"] if tool else [
        f"-Xms{cfg.heap_min}", f"-Xmx{cfg.heap_max}", "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20", "-XX:+ExplicitGCInvokesConcurrent",
    ]  # fmt: skip
    command += [
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={cfg.log4j_file}",
        f"-Dkafka.logs.dir={cfg.tools_logs_dir if tool else cfg.logs_dir}",
        "-cp", str(cfg.libs_dir / "*"),
    ]  # fmt: skip
    return command


def _storage_tool(cfg: KafkaConfig, *args: str) -> str:
    """Run ``kafka.tools.StorageTool`` with *args* and return its stdout."""
    command = [*_java_base(cfg, tool=True), "kafka.tools.StorageTool", *args]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    except subprocess.TimeoutExpired as exc:
        raise StackError("Kafka StorageTool timed out", log_path=cfg.server_log) from exc
    if result.returncode != 0:
        raise StackError(
            f"Kafka StorageTool {args[0]} failed (exit {result.returncode})",
            log_tail="\n".join((result.stdout + result.stderr).splitlines()[-30:]),
        )
    return result.stdout


def format_storage(cfg: KafkaConfig, step: Step = no_step) -> bool:
    """Format the KRaft storage once (``random-uuid`` + ``format``); True if it ran."""
    if (cfg.data_dir / "meta.properties").is_file():
        return False
    step("Formatting Kafka KRaft storage")
    cluster_file = cfg.home / "cluster.id"
    cluster_id = cluster_file.read_text().strip() if cluster_file.is_file() else ""
    if not cluster_id:
        cluster_id = _storage_tool(cfg, "random-uuid").strip().splitlines()[-1]
        cluster_file.write_text(cluster_id + "\n", encoding="utf-8")
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    scram = cfg.sasl_ssl.scram_arguments() if cfg.sasl_ssl is not None else []
    _storage_tool(
        cfg,
        "format", "-t", cluster_id, "-c", str(cfg.properties_file), "--ignore-formatted", *scram,
    )  # fmt: skip
    return True


# ------------------------------------------------------------------ run and stop


def running_pid(cfg: KafkaConfig) -> int | None:
    """Pid of the broker of this home if it runs (stale pid files are removed)."""
    return live_pid(cfg.pid_file)


def start_broker(cfg: KafkaConfig) -> int:
    """Start ``kafka.Kafka`` detached (own session); write and return its pid."""
    command = [*_java_base(cfg, tool=False), "kafka.Kafka", str(cfg.properties_file)]
    cfg.logs_dir.mkdir(parents=True, exist_ok=True)
    if cfg.stdout_log.exists():  # keep the previous run's JVM output as kafka.out.1
        cfg.stdout_log.replace(cfg.stdout_log.with_name(cfg.stdout_log.name + ".1"))
    log_offset = file_size(cfg.server_log)
    with cfg.stdout_log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cfg.home,
            start_new_session=True,
            close_fds=True,
        )
    _CHILDREN[proc.pid] = proc
    _LOG_OFFSETS[proc.pid] = log_offset
    write_pid(cfg.pid_file, proc.pid)
    return proc.pid


def wait_ready(cfg: KafkaConfig, pid: int | None, timeout: float) -> dict[str, Any]:
    """Wait until the port accepts connections and a metadata request succeeds.

    *pid* (the local broker, or ``None`` for an external one) must stay alive.
    Returns the ``describe_cluster`` answer; raises :class:`StackError` with the
    tail of the server log on failure.
    """
    deadline = time.monotonic() + timeout
    last_error = "port not open"
    while time.monotonic() < deadline:
        if pid is not None and not is_alive(pid):
            raise _broker_error(cfg, f"Kafka (pid {pid}) exited during startup", pid)
        if port_open(HOST, cfg.port):
            try:
                return describe_cluster(cfg.bootstrap_servers, timeout=5.0)
            except Exception as exc:  # any client failure means "not ready yet"
                last_error = f"{type(exc).__name__}: {exc}"
        time.sleep(0.5)
    raise _broker_error(
        cfg,
        f"Kafka at {cfg.bootstrap_servers} not ready after {timeout:.0f} s ({last_error})",
        pid,
    )


def _broker_error(cfg: KafkaConfig, message: str, pid: int | None) -> StackError:
    """StackError with the JVM output and the server.log lines of this launch."""
    parts: list[str] = []
    jvm = tail(cfg.stdout_log, 15)
    if jvm:
        parts.append(f"--- {cfg.stdout_log} ---\n{jvm}")
    server = tail(cfg.server_log, 30, start=_LOG_OFFSETS.get(pid or -1, 0))
    if server:
        parts.append(f"--- {cfg.server_log} ---\n{server}")
    log = cfg.server_log if cfg.server_log.exists() else cfg.stdout_log
    return StackError(message, log_path=log, log_tail="\n".join(parts))


def describe_cluster(bootstrap_servers: str, timeout: float = 5.0) -> dict[str, Any]:
    """Send a real Kafka metadata request to *bootstrap_servers*; return the cluster view."""

    async def probe() -> dict[str, Any]:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap_servers,
            request_timeout_ms=int(timeout * 1000),
            client_id="upward-stack-probe",
        )
        try:
            await asyncio.wait_for(admin.start(), timeout)
            cluster: dict[str, Any] = await asyncio.wait_for(admin.describe_cluster(), timeout)
            return cluster
        finally:
            with contextlib.suppress(Exception):
                await admin.close()

    return run_sync(probe)


def stop_broker(cfg: KafkaConfig) -> bool:
    """SIGTERM the broker's process group, SIGKILL after ``stop_timeout``; True if it ran."""
    pid = running_pid(cfg)
    if pid is None:
        return False
    terminate_group(pid, cfg.stop_timeout)
    child = _CHILDREN.pop(pid, None)
    if child is not None:  # started by this process: reap it (no zombie)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5)
    cfg.pid_file.unlink(missing_ok=True)
    return True


# ------------------------------------------------------------------------- ACLs

#: Kafka protocol codes of the ACL resource types, pattern types and operations used here.
ACL_RESOURCE_TYPES = {"topic": 2, "group": 3, "cluster": 4, "transactional_id": 5}
ACL_PATTERN_TYPES = {"literal": 3, "prefixed": 4}
ACL_OPERATIONS = {"all": 2, "read": 3, "write": 4, "create": 5, "describe": 8}
_ACL_ALLOW = 3


@dataclass(frozen=True)
class AclGrant:
    """Allow ``principal`` (``User:<name>``) ``operation`` on a resource (all hosts)."""

    principal: str
    resource_type: str
    resource_name: str
    operation: str = "all"
    pattern_type: str = "literal"


async def grant_acls(bootstrap_servers: str, grants: list[AclGrant]) -> None:
    """Create ``grants`` through the (super-user) PLAINTEXT listener at ``bootstrap_servers``.

    aiokafka's admin client has no ``create_acls``; the CreateAcls request is sent to the
    controller directly. Raises :class:`StackError` when the broker refuses one.
    """
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.protocol.admin import CreateAclsRequest

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="upward-acls")
    await admin.start()
    try:
        for grant in grants:
            request = CreateAclsRequest(
                ACL_RESOURCE_TYPES[grant.resource_type],
                grant.resource_name,
                ACL_PATTERN_TYPES[grant.pattern_type],
                grant.principal,
                "*",
                ACL_OPERATIONS[grant.operation],
                _ACL_ALLOW,
            )
            response = await admin._send_to_controller(request)
            for result in response.to_object()["creation_responses"]:
                if result["error_code"]:
                    reason = result["error_message"] or result["error_code"]
                    raise StackError(f"creating ACL {grant} failed: {reason}")
    finally:
        await admin.close()
