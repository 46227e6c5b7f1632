"""What a run produced, read back from the platform: stores, feedback outcomes, topics, mail.

:func:`collect_summary` reads each service's store (read-only), the feedback service's
outcomes API (aggregates only, as the program's admin sees them), the SMTP sink's mailbox
and the topics; :func:`summary_tables` renders it with rich.
Events per topic, dead letters and duplicated event ids come from the topic census
(:func:`upward.events.census.topic_census`), which reads and decodes every catalogue topic.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from upward.demo.platform import TOPICS, Platform
from upward.events.census import topic_census
from upward.services.mailsink import read_mailbox
from upward.stack import SERVICES

DLQ_SUFFIX = ".dlq"


@dataclass
class Summary:
    """The figures the demo ends with."""

    participants: Counter[str] = field(default_factory=Counter)
    pairs: Counter[str] = field(default_factory=Counter)
    ended_reasons: Counter[str] = field(default_factory=Counter)
    declined_reasons: Counter[str] = field(default_factory=Counter)
    mean_score: float | None = None
    wants_coverage: float | None = None
    sessions: Counter[str] = field(default_factory=Counter)
    stalled_pairs: int = 0
    at_risk_pairs: int = 0
    rematches: int = 0
    satisfaction: float | None = None
    nps: float | None = None
    response_rate: float | None = None
    feedback_requests: int = 0
    feedback_answers: int = 0
    notifications: Counter[tuple[str, str]] = field(default_factory=Counter)
    notifications_failed: int = 0
    mails_received: int = 0
    events: dict[str, int] = field(default_factory=dict)
    dead_letters: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    urls: dict[str, str] = field(default_factory=dict)


async def topic_figures(platform: Platform) -> tuple[dict[str, int], dict[str, int], int]:
    """Events per topic, dead letters per topic and event ids seen more than once."""
    census = await topic_census(
        bootstrap=platform.address.bootstrap_servers, prefix=platform.address.topic_prefix
    )
    events: Counter[str] = Counter()
    for (topic, _), n in census.counts.items():
        events[topic] += n
    for topic, n in census.undecodable.items():
        events[topic] += n
    per_topic = {topic: events.get(topic, 0) for topic in TOPICS}
    dead = {topic + DLQ_SUFFIX: n for topic, n in census.dead_letters.items() if n}
    duplicates = sum(len(ids) for ids in census.duplicates.values())
    return per_topic, dead, duplicates


async def _matching(platform: Platform, program_id: str, summary: Summary) -> None:
    rows = await platform.fetch(
        "matching",
        "SELECT profile->>'role' AS role, count(*) AS n FROM participants"
        " WHERE program_id = $1 GROUP BY 1",
        program_id,
    )
    summary.participants = Counter({str(r["role"]): int(r["n"]) for r in rows})
    pairs = await platform.fetch(
        "matching",
        "SELECT p.status, p.close_reason, p.formed_at IS NOT NULL AS formed, p.score,"
        " p.topics, p.at_risk_at IS NOT NULL AS at_risk, e.profile->'wants' AS wants"
        " FROM pairs p LEFT JOIN participants e"
        " ON e.program_id = p.program_id AND e.participant_id = p.mentee_id"
        " WHERE p.program_id = $1",
        program_id,
    )
    summary.pairs["proposed"] = len(pairs)
    summary.pairs["formed"] = sum(1 for p in pairs if p["formed"])
    summary.pairs["declined"] = sum(1 for p in pairs if p["status"] == "declined")
    summary.pairs["ended"] = sum(1 for p in pairs if p["status"] == "ended")
    summary.pairs["open"] = sum(1 for p in pairs if p["status"] in ("proposed", "formed"))
    summary.ended_reasons = Counter(str(p["close_reason"]) for p in pairs if p["status"] == "ended")
    summary.declined_reasons = Counter(
        str(p["close_reason"]) for p in pairs if p["status"] == "declined"
    )
    summary.rematches = summary.ended_reasons.get("at_risk_rematch", 0)
    formed = [p for p in pairs if p["formed"]]
    if formed:
        summary.mean_score = sum(float(p["score"]) for p in formed) / len(formed)
        summary.wants_coverage = sum(_coverage(p) for p in formed) / len(formed)


def _coverage(pair: Any) -> float:
    """Share of the mentee's wanted topics the pair covers."""
    wants = pair["wants"]
    wanted = set(json.loads(wants) if isinstance(wants, str) else (wants or {}))
    return len(wanted & set(pair["topics"])) / len(wanted) if wanted else 1.0


async def _sessions(platform: Platform, program_id: str, summary: Summary) -> None:
    rows = await platform.fetch(
        "sessions",
        "SELECT status, count(*) AS n FROM sessions WHERE program_id = $1 GROUP BY 1",
        program_id,
    )
    summary.sessions = Counter({str(r["status"]): int(r["n"]) for r in rows})


async def _feedback(platform: Platform, program_id: str, summary: Summary) -> None:
    summary.feedback_requests = int(
        await platform.value(
            "feedback", "SELECT count(*) FROM feedback_requests WHERE program_id = $1", program_id
        )
    )
    summary.feedback_answers = int(
        await platform.value(
            "feedback",
            "SELECT count(*) FROM feedback_requests WHERE program_id = $1 AND status = 'submitted'",
            program_id,
        )
    )
    outcomes = await platform.call("feedback", "GET", f"/programs/{program_id}/outcomes")
    for cell in outcomes["feedback"]:
        if cell["side"] is None and cell["kind"] is None:
            answers, requests = cell["answers"] or {}, cell["requests"] or {}
            summary.satisfaction = answers.get("satisfaction")
            summary.nps = answers.get("nps")
            summary.response_rate = requests.get("response_rate")


async def _health(platform: Platform, program_id: str, summary: Summary) -> None:
    summary.stalled_pairs = int(
        await platform.value(
            "sessions",
            "SELECT count(*) FROM pairs WHERE program_id = $1 AND stalled",
            program_id,
        )
    )
    summary.at_risk_pairs = int(
        await platform.value(
            "matching",
            "SELECT count(*) FROM pairs WHERE program_id = $1"
            " AND (at_risk_at IS NOT NULL OR close_reason = 'at_risk_rematch')",
            program_id,
        )
    )


async def _notifications(platform: Platform, summary: Summary, mail_file: Path | None) -> None:
    rows = await platform.fetch(
        "notifications",
        "SELECT kind, channel, status, count(*) AS n FROM deliveries GROUP BY 1, 2, 3",
    )
    summary.notifications = Counter(
        {(str(r["kind"]), str(r["channel"])): int(r["n"]) for r in rows if r["status"] == "sent"}
    )
    summary.notifications_failed = sum(int(r["n"]) for r in rows if r["status"] == "failed")
    if mail_file is not None:
        summary.mails_received = len(read_mailbox(mail_file).messages)


async def collect_summary(
    platform: Platform, program_id: str, *, mail_file: Path | None = None
) -> Summary:
    """Read the figures of *program_id* back from the running platform."""
    summary = Summary(urls=dict(platform.address.urls))
    await _matching(platform, program_id, summary)
    await _sessions(platform, program_id, summary)
    await _feedback(platform, program_id, summary)
    await _health(platform, program_id, summary)
    await _notifications(platform, summary, mail_file)
    summary.events, summary.dead_letters, summary.duplicates = await topic_figures(platform)
    return summary


def _fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _parts(counts: Counter[str], plural: str = "") -> str:
    """`` (3 a, 2 b)``: a breakdown after a total (empty when there is none)."""
    if not counts:
        return ""
    return " (" + ", ".join(f"{n} {name}{plural}" for name, n in sorted(counts.items())) + ")"


def _program_table(s: Summary) -> Table:
    table = Table(title="Program", show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("participants", f"{sum(s.participants.values())}{_parts(s.participants, 's')}"),
        ("pairs proposed / formed", f"{s.pairs['proposed']} / {s.pairs['formed']}"),
        ("pairs declined", f"{s.pairs['declined']}{_parts(s.declined_reasons)}"),
        ("pairs ended", f"{s.pairs['ended']}{_parts(s.ended_reasons)}"),
        ("match quality: mean score", _fmt(s.mean_score, 3)),
        ("match quality: wants covered", "—" if s.wants_coverage is None
         else f"{s.wants_coverage:.0%}"),
        ("sessions held / missed", f"{s.sessions['held']} / {s.sessions['missed']}"),
        ("sessions cancelled / still scheduled",
         f"{s.sessions['cancelled']} / {s.sessions['scheduled']}"),
        ("feedback requests / answered", f"{s.feedback_requests} / {s.feedback_answers}"),
        ("response rate", "—" if s.response_rate is None else f"{s.response_rate:.0%}"),
        ("satisfaction (1-5)", _fmt(s.satisfaction)),
        ("NPS (-100..100)", _fmt(s.nps, 0)),
        ("stalled pairs", str(s.stalled_pairs)),
        ("at-risk pairs / rematched", f"{s.at_risk_pairs} / {s.rematches}"),
        ("notifications sent / failed / mails received",
         f"{sum(s.notifications.values())} / {s.notifications_failed} / {s.mails_received}"),
    ]  # fmt: skip
    for name, value in rows:
        table.add_row(name, value)
    return table


def _notifications_table(s: Summary) -> Table:
    table = Table(title="Notifications sent")
    for column in ("kind", "channel", "sent"):
        table.add_column(column, justify="right" if column == "sent" else "left")
    for (kind, channel), n in sorted(s.notifications.items()):
        table.add_row(kind, channel, str(n))
    return table


def _events_table(s: Summary) -> Table:
    table = Table(title="Events")
    table.add_column("topic")
    table.add_column("events", justify="right")
    for topic, n in s.events.items():
        table.add_row(topic, str(n))
    table.add_row("[bold]duplicated event ids[/bold]", str(s.duplicates))
    dead = sum(s.dead_letters.values())
    table.add_row("[bold]dead letters[/bold]", f"[{'red' if dead else 'green'}]{dead}[/]")
    for topic, n in s.dead_letters.items():
        table.add_row(f"  {topic}", str(n))
    return table


def _urls_table(s: Summary) -> Table:
    """One row per URL, so the full addresses fit an 80-column terminal."""
    table = Table(title="Services")
    for column in ("service", "what", "URL"):
        table.add_column(column, no_wrap=True)
    for name in SERVICES:
        url = s.urls.get(name, "")
        for what, address in (("API", url), ("docs", f"{url}/docs"), ("metrics", f"{url}/metrics")):
            table.add_row(name if what == "API" else "", what, address)
    return table


def summary_tables(summary: Summary) -> list[Table]:
    """The summary as rich tables: program, notifications, events, service URLs."""
    return [
        _program_table(summary),
        _notifications_table(summary),
        _events_table(summary),
        _urls_table(summary),
    ]
