"""Jinja2 templates of what people read: the messages other domains compose (each from its own
``templates/`` folder) and delivery's own ``/dev/outbox`` page.

A message template defines ``{% block subject %}`` (e-mail) and ``{% block body %}``; HTML
templates are autoescaped, text templates are not.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape


class Templates:
    """The templates of one folder (names relative to it, e.g. ``email/en/receipt.txt``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @cached_property
    def environment(self) -> Environment:
        return Environment(
            loader=FileSystemLoader(self.folder),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )

    def render_block(self, name: str, block: str, **context: Any) -> str:
        """One block of a template (``subject``, ``body``), rendered with ``context``."""
        template = self.environment.get_template(name)
        return "".join(template.blocks[block](template.new_context(context))).strip()

    def render(self, name: str, **context: Any) -> str:
        """A whole template rendered with ``context``."""
        return self.environment.get_template(name).render(context)


# delivery's own: the development outbox page.
TEMPLATES = Templates(Path(__file__).parent / "templates")
