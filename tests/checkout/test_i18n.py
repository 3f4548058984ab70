"""Every text of the pages exists in English and French; dates by Babel."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from mobip.checkout import i18n
from mobip.kit.i18n import LANGUAGES

TEMPLATES = Path(i18n.__file__).parent / "templates"


def test_every_message_has_every_language() -> None:
    for key, texts in i18n.MESSAGES.items():
        assert set(texts) == set(LANGUAGES), key
        assert all(text.strip() for text in texts.values()), key
        # The same placeholders in each language.
        fields = {lang: set(re.findall(r"{(\w+)}", text)) for lang, text in texts.items()}
        assert fields["EN"] == fields["FR"], key


def test_templates_use_only_known_keys_and_no_literal_text() -> None:
    used: set[str] = set()
    for path in TEMPLATES.glob("*.html"):
        source = path.read_text()
        used |= set(re.findall(r"""\bt\(\s*'(\w+)'""", source))
        # Visible text between tags is a translation, an expression, or a language's own name.
        stripped = re.sub(r"{[{%#].*?[}%#]}", "", source, flags=re.S)
        for text in re.findall(r">([^<>]+)<", stripped):
            words = text.strip().replace("—", "").replace("&nbsp;", "").strip(" :")
            assert words in ("", "English", "Français"), f"{path.name}: untranslated {words!r}"
    unknown = used - set(i18n.MESSAGES)
    assert not unknown
    # Keys the code passes to templates (notices, error pages, test cards, state titles).
    from mobip.checkout import outcomes, rendering

    dynamic = {key for pair in rendering.ERROR_TEXTS.values() for key in pair}
    dynamic |= {f"declined_{reason}" for reason in outcomes.DECLINE_TEXTS}
    dynamic |= {"not_completed", "test_card_paid", "test_card_declined", "test_card_funds"}
    dynamic |= set(outcomes.REFUND_NOTICES.values())
    dynamic |= {"test_card_error", "error_card_number", "error_not_test_card", "error_name"}
    dynamic |= {"error_expiry_format", "error_expiry_past", "error_cvc", "error_title"}
    dynamic |= {f"{s}_title" for s in ("paid", "cancelled", "expired", "denied", "unavailable")}
    assert dynamic <= set(i18n.MESSAGES)


def test_dates() -> None:
    moment = datetime(2026, 3, 5, 14, 30, tzinfo=UTC)
    assert i18n.when(moment, "EN").startswith("March 5, 2026")
    assert i18n.when(moment, "FR").startswith("5 mars 2026")
