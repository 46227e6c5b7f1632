"""The process manager without a broker: environments, state file, mail sink, stop."""

from __future__ import annotations

import smtplib
from collections import Counter
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import psutil
import pytest
from rich.console import Console

from upward.demo.scenario import chance
from upward.demo.summary import Summary, summary_tables
from upward.services.mailsink import read_mailbox
from upward.services.manager import (
    MAIL_SINK,
    Infrastructure,
    ServiceOptions,
    ServicesError,
    ServiceSupervisor,
    service_environment,
)
from upward.stack import SERVICES, free_ports

INFRA = Infrastructure(
    "127.0.0.1:9092", {s: f"postgresql://u@db:5432/upward_{s}" for s in SERVICES}
)


def test_each_service_gets_its_database_port_and_the_shared_settings(tmp_path: Path) -> None:
    options = ServiceOptions(run_dir=tmp_path, topic_prefix="demo-1.")
    for name in SERVICES:
        env = service_environment(name, INFRA, options)
        prefix = f"UPWARD_{name.upper()}_"
        assert env[prefix + "DATABASE_URL"] == INFRA.database_urls[name]
        assert env[prefix + "HTTP_PORT"] == str(options.ports[name])
        assert env["UPWARD_KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:9092"
        assert env["UPWARD_TOPIC_PREFIX"] == "demo-1."
        assert "UPWARD_CLOCK" not in env
        other = [k for k in env if k.endswith("_DATABASE_URL") and not k.startswith(prefix)]
        assert other == [], "a service is told only its own database"
    assert len({options.ports[s] for s in SERVICES}) == len(SERVICES)


def test_manual_clock_smtp_sink_and_overrides(tmp_path: Path) -> None:
    start = datetime(2026, 1, 5, 6, tzinfo=UTC)
    options = ServiceOptions(
        run_dir=tmp_path,
        mail_port=2525,
        clock_start=start,
        extra_env={"UPWARD_SESSIONS_MIN_NOTICE_HOURS": "12"},
    )
    notifications = service_environment("notifications", INFRA, options)
    assert notifications["UPWARD_CLOCK"] == "manual"
    assert datetime.fromisoformat(notifications["UPWARD_CLOCK_START"]) == start
    assert notifications["UPWARD_NOTIFICATIONS_SMTP_PORT"] == "2525"
    assert notifications["UPWARD_NOTIFICATIONS_SMTP_TLS"] == "none"
    sessions = service_environment("sessions", INFRA, options)
    assert sessions["UPWARD_SESSIONS_MIN_NOTICE_HOURS"] == "12"
    assert "UPWARD_NOTIFICATIONS_SMTP_PORT" not in sessions


def test_the_callers_upward_variables_do_not_leak_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UPWARD_TOPIC_PREFIX", "other.")
    monkeypatch.setenv("UPWARD_FEEDBACK_DATABASE_URL", "postgresql://elsewhere/x")
    env = service_environment("feedback", INFRA, ServiceOptions(run_dir=tmp_path))
    assert env["UPWARD_TOPIC_PREFIX"] == ""
    assert env["UPWARD_FEEDBACK_DATABASE_URL"] == INFRA.database_urls["feedback"]


def test_state_file_round_trip(tmp_path: Path) -> None:
    start = datetime(2026, 1, 5, 6, tzinfo=UTC)
    options = ServiceOptions(
        run_dir=tmp_path, ports=dict.fromkeys(SERVICES, 9000), mail_port=9100, clock_start=start
    )
    ServiceSupervisor(options)._save_state()
    again = ServiceSupervisor.from_run_dir(tmp_path).options
    assert (again.ports, again.mail_port, again.clock_start) == (options.ports, 9100, start)


def test_mail_sink_records_messages_and_down_stops_it(tmp_path: Path) -> None:
    port = free_ports(1)[0]
    supervisor = ServiceSupervisor(ServiceOptions(run_dir=tmp_path, mail_port=port))
    try:
        supervisor._start_mail_sink(lambda _: None)
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "a@x.example", "b@x.example", "Hi"
        message["X-Upward-Notification-Kind"] = "pair_formed"
        message.set_content("hello")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.send_message(message)
        mailbox = read_mailbox(supervisor.options.mail_file)
        assert mailbox.by_kind() == {"pair_formed": 1}
        assert mailbox.recipients() == {"b@x.example"}
        sink = next(s for s in supervisor.status() if s.name == MAIL_SINK)
        assert sink.running and sink.ready
    finally:
        stopped = supervisor.down(timeout_s=10)
    assert stopped == [MAIL_SINK]
    assert not next(s for s in supervisor.status() if s.name == MAIL_SINK).running
    assert supervisor.down() == []


def test_down_never_signals_a_process_that_is_not_the_recorded_service(tmp_path: Path) -> None:
    (tmp_path / "matching.pid").write_text("1\n")  # init: not services.matching
    assert ServiceSupervisor(ServiceOptions(run_dir=tmp_path)).down(timeout_s=1) == []


def test_choices_are_deterministic_and_spread() -> None:
    draws = [chance(7, "decline", f"e-{i:05d}") for i in range(2000)]
    assert draws == [chance(7, "decline", f"e-{i:05d}") for i in range(2000)]
    assert 0.04 < sum(d < 0.05 for d in draws) / len(draws) < 0.06
    assert chance(8, "decline", "e-00001") != chance(7, "decline", "e-00001")


def test_summary_tables_show_the_figures_and_urls() -> None:
    summary = Summary(
        participants=Counter({"mentor": 3, "mentee": 2}),
        pairs=Counter({"proposed": 4, "formed": 3, "declined": 1, "ended": 3}),
        ended_reasons=Counter({"completed": 2, "at_risk_rematch": 1}),
        rematches=1,
        nps=22.0,
        notifications=Counter({("session_invite", "email"): 6}),
        events={"upward.pairs": 12},
        dead_letters={"upward.pairs.dlq": 2},
        urls={"matching": "http://127.0.0.1:8101"},
    )
    console = Console(record=True, width=160)
    for table in summary_tables(summary):
        console.print(table)
    text = console.export_text()
    assert "5 (2 mentees, 3 mentors)" in text
    assert "3 (1 at_risk_rematch, 2 completed)" in text
    assert "session_invite" in text and "http://127.0.0.1:8101/metrics" in text
    assert "upward.pairs.dlq" in text


def test_a_service_that_cannot_start_is_reported_with_its_log_and_nothing_is_left(
    tmp_path: Path,
) -> None:
    *ports, mail_port = free_ports(len(SERVICES) + 1)
    closed = free_ports(1)[0]  # nothing listens there
    infra = Infrastructure(
        f"127.0.0.1:{closed}", {s: f"postgresql://u@127.0.0.1:{closed}/x" for s in SERVICES}
    )
    options = ServiceOptions(
        run_dir=tmp_path,
        ports=dict(zip(SERVICES, ports, strict=True)),
        mail_port=mail_port,
        extra_env={f"UPWARD_{s.upper()}_STARTUP_TIMEOUT_S": "0.5" for s in SERVICES},
    )
    supervisor = ServiceSupervisor(options)
    try:
        with pytest.raises(ServicesError) as failed:
            supervisor.up(infra, timeout_s=60)
        assert failed.value.message == "matching exited during start"
        assert failed.value.log_path == tmp_path / "matching.log"
        assert failed.value.log_tail.strip(), "the error carries the end of the log"
    finally:
        supervisor.down(timeout_s=10)
    assert not any(s.running for s in supervisor.status())


def test_token_and_kafka_security_settings_are_shared_with_the_services(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tool signs tokens with the caller's ``UPWARD_AUTH_*``: the services must verify
    with the same settings, and reach Kafka the way the caller configured."""
    monkeypatch.setenv("UPWARD_AUTH_JWT_SECRET", "a-shared-local-secret")
    monkeypatch.setenv("UPWARD_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("UPWARD_KAFKA_SASL_USERNAME", "upward")
    monkeypatch.setenv("UPWARD_CLOCK", "manual")
    env = service_environment("matching", INFRA, ServiceOptions(run_dir=tmp_path))
    assert env["UPWARD_AUTH_JWT_SECRET"] == "a-shared-local-secret"
    assert env["UPWARD_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["UPWARD_KAFKA_SASL_USERNAME"] == "upward"
    assert "UPWARD_CLOCK" not in env


def test_kill_ends_a_process_at_once_and_start_brings_it_back(tmp_path: Path) -> None:
    port = free_ports(1)[0]
    supervisor = ServiceSupervisor(ServiceOptions(run_dir=tmp_path, mail_port=port))
    infra = Infrastructure("127.0.0.1:1", {})
    try:
        first = supervisor.start(MAIL_SINK, infra)
        assert supervisor.pid(MAIL_SINK) == first
        assert supervisor.kill(MAIL_SINK) == first
        assert supervisor.pid(MAIL_SINK) is None
        assert not psutil.pid_exists(first) or psutil.Process(first).status() == "zombie"
        assert supervisor.kill(MAIL_SINK) is None, "nothing left to kill"
        second = supervisor.start(MAIL_SINK, infra)
        assert second != first and supervisor.pid(MAIL_SINK) == second
        assert supervisor.start(MAIL_SINK, infra) == second, "a running process is kept"
    finally:
        supervisor.down(timeout_s=10)
    assert supervisor.pid(MAIL_SINK) is None


def test_a_process_just_started_is_not_taken_for_a_stranger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Right after ``exec`` the kernel shows an empty command line for a moment: the
    supervisor read it as "not ours" and reported a service "exited during start"."""
    port = free_ports(1)[0]
    supervisor = ServiceSupervisor(ServiceOptions(run_dir=tmp_path, mail_port=port))
    real = psutil.Process.cmdline
    calls: list[int] = []

    def just_execed(self: psutil.Process) -> list[str]:
        calls.append(self.pid)
        return [] if len(calls) <= 2 else real(self)

    try:
        pid = supervisor.start(MAIL_SINK, Infrastructure("127.0.0.1:1", {}))
        calls.clear()
        monkeypatch.setattr(psutil.Process, "cmdline", just_execed)
        assert supervisor.pid(MAIL_SINK) == pid
        assert len(calls) == 3
    finally:
        monkeypatch.undo()
        supervisor.down(timeout_s=10)
