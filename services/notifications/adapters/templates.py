"""Message texts from Jinja2 templates, per notification kind and locale.

``templates/<locale>/<kind>.j2`` defines two blocks: ``subject`` (one line) and
``content`` (plain-text paragraphs). Every message is wrapped in the locale's letter
(``_letter.j2``: greeting and signature), and its HTML part is the same paragraphs in
``templates/_layout.html.j2``, autoescaped, so the two e-mail parts never disagree.
Times are shown in the recipient's time zone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, pass_context
from jinja2.runtime import Context

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
_BLANK_LINES = re.compile(r"\n\s*\n+")


@dataclass(frozen=True)
class Rendered:
    """A message's texts: subject, plain-text body, HTML body, and its main link."""

    subject: str
    content: str
    text: str
    html: str
    link: str | None


@pass_context
def _local_time(context: Context, value: str) -> str:
    zone: ZoneInfo = context["zone"]
    local = datetime.fromisoformat(value).astimezone(zone)
    return f"{local:%A} {local.day} {local:%B %Y, %H:%M} ({zone.key})"


@pass_context
def _local_clock(context: Context, value: str) -> str:
    return f"{datetime.fromisoformat(value).astimezone(context['zone']):%H:%M}"


def _duration(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    parts = [f"{hours} hour{'s' if hours != 1 else ''}"] if hours else []
    parts += [f"{rest} minute{'s' if rest != 1 else ''}"] if rest or not hours else []
    return " ".join(parts)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _capitalize_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _tidy(text: str) -> str:
    """Strip, and keep at most one blank line between paragraphs."""
    return _BLANK_LINES.sub("\n\n", text.strip())


class TemplateRenderer:
    """Renders notification kinds in the locales that have a template directory."""

    def __init__(self, directory: Path = TEMPLATES, *, default_locale: str = "en") -> None:
        self._env = Environment(
            loader=FileSystemLoader(directory),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            autoescape=lambda name: bool(name and name.endswith(".html.j2")),
        )
        self._env.filters.update(
            local_time=_local_time,
            local_clock=_local_clock,
            duration=_duration,
            ordinal=_ordinal,
            capitalize_first=_capitalize_first,
        )
        self.locales = frozenset(p.name for p in directory.iterdir() if p.is_dir())
        if default_locale not in self.locales:
            raise ValueError(f"no templates for the default locale {default_locale!r}")
        self.default_locale = default_locale

    def render(
        self,
        kind: str,
        *,
        locale: str,
        context: Mapping[str, Any],
        recipient_name: str,
        zone: ZoneInfo,
        has_calendar: bool = False,
    ) -> Rendered:
        """Render one notification of ``kind`` for one recipient."""
        locale = locale if locale in self.locales else self.default_locale
        variables = {
            **context,
            "recipient_name": recipient_name,
            "zone": zone,
            "has_calendar": has_calendar,
            "m": self._env.get_template(f"{locale}/_macros.j2").make_module(),
        }
        template = self._env.get_template(f"{locale}/{kind}.j2")
        subject = " ".join(self._block(template, "subject", variables).split())
        content = _tidy(self._block(template, "content", variables))
        link = context.get("link")
        return self._wrap(locale, subject, content, recipient_name, link)

    def render_digest(
        self, items: list[Rendered], *, locale: str, recipient_name: str, zone: ZoneInfo
    ) -> Rendered:
        """One message gathering several rendered notifications."""
        return self.render(
            "digest",
            locale=locale,
            context={"items": [{"subject": i.subject, "content": i.content} for i in items]},
            recipient_name=recipient_name,
            zone=zone,
        )

    def _block(self, template: Template, name: str, variables: dict[str, Any]) -> str:
        return "".join(template.blocks[name](template.new_context(variables)))

    def _wrap(
        self, locale: str, subject: str, content: str, recipient_name: str, link: str | None
    ) -> Rendered:
        letter = self._env.get_template(f"{locale}/_letter.j2")
        text = _tidy(letter.render(recipient_name=recipient_name, content=content)) + "\n"
        html = self._env.get_template("_layout.html.j2").render(
            locale=locale, subject=subject, paragraphs=text.strip().split("\n\n")
        )
        return Rendered(subject=subject, content=content, text=text, html=html, link=link)
