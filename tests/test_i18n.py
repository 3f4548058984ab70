"""The translation catalogs (src/mobip/locale, docs/i18n.md): messages.pot holds exactly the
messages of the code and the templates, French translates every one of them, the compiled .mo
files are those of the .po files, and the templates write no words outside those messages. After
changing a text: `make translations`, then translate what it marked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from mobip.kit.i18n import CATALOGS, DOMAIN, LANGUAGES, LOCALE_DIR, SOURCE_LANGUAGE

ROOT = Path(__file__).resolve().parents[1]
POT = LOCALE_DIR / f"{DOMAIN}.pot"
TRANSLATED = sorted(set(LANGUAGES) - {SOURCE_LANGUAGE})


def read(path: Path) -> Catalog:
    with path.open("rb") as file:
        return read_po(file)


def po_of(language: str) -> Path:
    return LOCALE_DIR / CATALOGS[language] / "LC_MESSAGES" / f"{DOMAIN}.po"


def msgids(catalog: Catalog) -> set[str | tuple[str, ...]]:
    """Each message's msgid, with its plural (msgid_plural) when it has one."""
    return {message.id for message in catalog if message.id}


def untranslated(catalog: Catalog, template: Catalog) -> list[str]:
    """What ``catalog`` lacks against ``template``: a message missing, fuzzy or empty, or whose
    placeholders differ from the msgid's."""
    problems = []
    for wanted in template:
        if not wanted.id:
            continue
        message = catalog.get(wanted.id)
        strings = message.string if message and isinstance(message.string, tuple) else None
        if message is None:
            problems.append(f"missing: {wanted.id!r}")
        elif message.fuzzy:
            problems.append(f"fuzzy: {wanted.id!r}")
        elif not all(strings if strings is not None else [message.string]):
            problems.append(f"untranslated: {wanted.id!r}")
    problems += [
        f"{message.id!r}: {error}" for message, errors in catalog.check() for error in errors
    ]
    return problems


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_message_has_its_translation(language: str) -> None:
    catalog = read(po_of(language))
    assert untranslated(catalog, read(POT)) == []
    # Plurals are the language's own (French: 0 and 1 singular, then plural).
    assert catalog.plural_forms == Catalog(locale=CATALOGS[language]).plural_forms


def test_a_message_without_its_translation_is_reported() -> None:
    template = Catalog()
    template.add("Pay")
    template.add(("%(num)d attempt", "%(num)d attempts"))
    template.add("Card number")
    template.add("Total %(amount)s", flags=["python-format"])
    french = Catalog(locale="fr")
    french.add("Pay", "Payer")
    french.add(("%(num)d attempt", "%(num)d attempts"), ("%(num)d tentative", ""))
    french.add("Total %(amount)s", "Total %(montant)s", flags=["python-format"])
    problems = untranslated(french, template)
    assert "untranslated: ('%(num)d attempt', '%(num)d attempts')" in problems
    assert "missing: 'Card number'" in problems
    assert any(problem.startswith("'Total %(amount)s'") for problem in problems)
    french.add("Card number", "Numéro de carte", flags=["fuzzy"])
    assert "fuzzy: 'Card number'" in untranslated(french, template)


@pytest.mark.parametrize("domain", ["checkout", "transactions"])
def test_what_people_read_is_written_in_messages(domain: str) -> None:
    """No words in the pages' and messages' templates outside {{ _("…") }}: they would not be
    translated. Only the language switch names each language in its own words."""
    for path in sorted((ROOT / "src" / "mobip" / domain / "templates").glob("**/*.*")):
        source = re.sub(r"{[{%#].*?[}%#]}", "", path.read_text(), flags=re.S)
        shown = re.findall(r'\b(?:alt|title|aria-label|placeholder)="([^"]*)"', source)
        shown.append(re.sub(r"&\w+;", "", re.sub(r"<[^>]*>", " ", source)))
        words = {word for text in shown for word in re.findall(r"[^\W\d_]{2,}", text)}
        assert words <= {"English", "Français"}, f"{path.name}: {words}"


def test_the_catalogs_are_current_with_the_code_and_templates() -> None:
    """messages.pot holds what `make translations` extracts now, and each .po merges it."""
    with (ROOT / "babel.cfg").open() as config:
        methods, options = parse_mapping_cfg(config)
    extracted = {
        message
        for _, _, message, _, _ in extract_from_dir(ROOT / "src" / "mobip", methods, options)
    }
    assert extracted == msgids(read(POT)), "run `make translations`"
    for language in TRANSLATED:
        assert msgids(read(po_of(language))) == msgids(read(POT)), "run `make translations`"


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_compiled_catalogs_are_those_of_the_po_files(language: str) -> None:
    po = read(po_of(language))
    with po_of(language).with_suffix(".mo").open("rb") as file:
        mo = read_mo(file)
    expected = {m.id: m.string for m in po if m.id and not m.fuzzy}
    compiled = {_tuple(m.id): _tuple(m.string) for m in mo if m.id}
    assert compiled == expected, "run `make translations`"
    assert mo.plural_forms == po.plural_forms


def _tuple(value: object) -> object:
    """A plural's forms as read_po gives them (read_mo gives lists)."""
    return tuple(value) if isinstance(value, list) else value
