"""A local SMTP sink for the demo and the end-to-end tests: ``python -m upward.services.mailsink``.

The notifications service needs an outbound SMTP server. This one (aiosmtpd) accepts every
message on 127.0.0.1 and appends one JSON line per message to a file: the recipients, the
``X-Upward-Notification-Kind`` header, the subject and the Message-ID. Nothing leaves the
machine. :func:`read_mailbox` counts what it received.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from collections import Counter
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session


@dataclass
class FileMailbox:
    """aiosmtpd handler: every accepted message becomes one JSON line in ``path``."""

    path: Path

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        """Record the message and accept it."""
        # Headers only: the body (HTML, invite attachments) is not needed to count.
        message = BytesHeaderParser().parsebytes(envelope.original_content or b"")
        line = {
            "to": list(envelope.rcpt_tos),
            "kind": str(message.get("X-Upward-Notification-Kind", "")),
            "subject": str(message.get("Subject", "")),
            "message_id": str(message.get("Message-ID", "")),
        }
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")
        return "250 OK"


@dataclass(frozen=True)
class Mailbox:
    """What the sink received: one dict per message."""

    messages: list[dict[str, Any]]

    def by_kind(self) -> Counter[str]:
        """Messages per notification kind."""
        return Counter(str(m["kind"]) for m in self.messages)

    def recipients(self) -> set[str]:
        """Every address that received something."""
        return {address for m in self.messages for address in m["to"]}


def read_mailbox(path: Path) -> Mailbox:
    """Read the sink's file (empty when nothing arrived yet)."""
    if not path.exists():
        return Mailbox([])
    lines = path.read_text(encoding="utf-8").splitlines()
    return Mailbox([json.loads(line) for line in lines if line.strip()])


def serve(port: int, path: Path) -> None:
    """Serve until SIGTERM or SIGINT."""
    path.parent.mkdir(parents=True, exist_ok=True)
    controller = Controller(FileMailbox(path), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"mail sink listening on 127.0.0.1:{port}, writing {path}", flush=True)
    stop = asyncio.new_event_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        stop.add_signal_handler(signum, stop.stop)
    try:
        stop.run_forever()
    finally:
        controller.stop()
        stop.close()


def main() -> None:
    """Command line: ``--port`` and ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    serve(args.port, args.out)


if __name__ == "__main__":
    main()
