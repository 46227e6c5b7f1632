"""Errors raised by the local stack."""

from __future__ import annotations

from pathlib import Path


class StackError(RuntimeError):
    """A stack operation failed; carries the relevant log file and its tail."""

    def __init__(self, message: str, *, log_path: Path | None = None, log_tail: str = "") -> None:
        """Create the error; *log_tail* is shown to the user under the message."""
        super().__init__(message)
        self.message = message
        self.log_path = log_path
        self.log_tail = log_tail

    def __str__(self) -> str:
        """Message, then the log file name and tail when known."""
        text = self.message
        if self.log_path is not None:
            text += f"\nlog: {self.log_path}"
        if self.log_tail:
            text += f"\n--- last lines ---\n{self.log_tail}"
        return text
