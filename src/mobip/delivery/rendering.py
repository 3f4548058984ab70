"""Jinja2 templates of what people read: the messages other domains compose (each from its own
``templates/`` folder) and delivery's own ``/dev/outbox`` page.

A message template defines ``{% block subject %}`` (e-mail) and ``{% block body %}``; HTML
templates are autoescaped, text templates are not. One template serves every language: its texts
are gettext messages (``{{ _("Pay %(amount)s", amount=…) }}``, ``ngettext``; Jinja2's i18n
extension, new style), translated from kit.i18n's catalogs in the language a render is asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from mobip.kit import i18n


class Templates:
    """The templates of one folder (names relative to it, e.g. ``email/receipt.txt``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._environments: dict[str, Environment] = {}

    def environment(self, language: str) -> Environment:
        """The folder's templates with ``language``'s translations installed."""
        if language in self._environments:
            return self._environments[language]
        environment = Environment(
            loader=FileSystemLoader(self.folder),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            extensions=["jinja2.ext.i18n"],
        )
        environment.install_gettext_translations(  # type: ignore[attr-defined]
            i18n.translations(language), newstyle=True
        )
        return self._environments.setdefault(language, environment)

    def render_block(
        self, name: str, block: str, language: str = i18n.SOURCE_LANGUAGE, **context: Any
    ) -> str:
        """One block of a template (``subject``, ``body``) in ``language``, with ``context``."""
        template = self.environment(language).get_template(name)
        return "".join(template.blocks[block](template.new_context(context))).strip()

    def render(self, name: str, language: str = i18n.SOURCE_LANGUAGE, **context: Any) -> str:
        """A whole template in ``language``, rendered with ``context``."""
        return self.environment(language).get_template(name).render(context)


# delivery's own: the development outbox page.
TEMPLATES = Templates(Path(__file__).parent / "templates")
