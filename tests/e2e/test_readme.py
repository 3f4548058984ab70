"""README.md's examples, run as a new user would run them, against a live `mobip serve`.

Every ```sh block of README.md is run, command by command (a line ending in ``\\`` continues;
``  # …`` ends a line with a comment):

- ``make TARGET``: the target exists (``make -n``: printed, not run: ``make test`` is the suite);
- ``curl …``: run by bash against a development server started in a fresh data folder (README's
  ``http://127.0.0.1:8000`` is its address), with README's placeholders filled in: ``api_…`` and
  ``mbs_…`` with the demo merchant's credentials from the server's first-start banner, ``mbt_…``
  and ``tr_…`` with the token and the trid that the examples before printed. The reply must match
  the ``# → …`` line under the command, ``…`` standing for any text;
- ``.venv/bin/mobip …``: run (as ``python -m mobip``) in the folder holding the server's ``./var``,
  with no ``MOBIP_*`` variable set, as README says: it must succeed.

Any other command fails the test: an example README shows must be one this test can run.
The ```text block of the first-start banner must match what the server printed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from e2e.serving import Served, serve

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
README_BASE = "http://127.0.0.1:8000"
PLACEHOLDER = re.compile(r"\b(api|mbs|mbt|tr)_…")


@dataclass(frozen=True)
class Example:
    command: str
    expected: str | None  # the "# → …" line under it, without the arrow


def blocks(language: str, text: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def examples(block: str) -> list[Example]:
    """The block's commands, continuation lines joined, each with its expected reply if any."""
    found: list[Example] = []
    command = ""
    for line in block.splitlines():
        if line.startswith("# →"):
            found[-1] = Example(found[-1].command, line.removeprefix("# →").strip())
            continue
        if not line.strip() or line.startswith("#"):
            continue
        command += re.sub(r"\s{2,}#.*$", "", line).rstrip()
        if command.endswith("\\"):
            command = command[:-1].rstrip() + " "
            continue
        found.append(Example(" ".join(command.split()), None))
        command = ""
    assert not command, f"a command ends with a continuation: {command!r}"
    return found


def pattern(expected: str) -> re.Pattern[str]:
    """README's example text as a pattern: ``…`` is any text, the rest as written."""
    return re.compile(".*?".join(re.escape(part) for part in expected.split("…")), re.DOTALL)


def test_readme_examples_are_parsed_as_written() -> None:
    block = (
        'make run    # starts\ncurl -s URL \\\n     -F a=1 -F b="x y"\n# → {"return_code":"0",…}\n'
    )
    assert examples(block) == [
        Example("make run", None),
        Example('curl -s URL -F a=1 -F b="x y"', '{"return_code":"0",…}'),
    ]
    assert pattern('{"a":"tr_…",…}').fullmatch('{"a":"tr_xyz","b":2}')
    assert not pattern('{"a":"0"}').fullmatch('{"a":"1"}')


def without_mobip_settings() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("MOBIP_")}


def check_make(command: str) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    targets = command.split()[1:]
    assert targets, command
    result = subprocess.run(
        ["make", "-n", *targets], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"{command}: {result.stderr}"


def run_curl(served: Served, example: Example, values: dict[str, str]) -> None:
    command = example.command.replace(README_BASE, served.base)
    command = PLACEHOLDER.sub(lambda found: values[found[1]], command)
    assert "…" not in command, command
    result = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"{command}: {result.stderr}"
    assert example.expected is not None, f"README gives no '# →' reply under {example.command}"
    expected = example.expected.replace(README_BASE, served.base)
    assert pattern(expected).fullmatch(result.stdout.strip()), (
        f"{example.command}\nREADME says: {expected}\nthe server said: {result.stdout}"
    )
    reply = json.loads(result.stdout)
    for value in _strings(reply):
        for prefix in ("mbt", "tr"):
            if value.startswith(f"{prefix}_"):
                values.setdefault(prefix, value)


def _strings(reply: object) -> list[str]:
    if isinstance(reply, dict):
        return [text for value in reply.values() for text in _strings(value)]
    return [reply] if isinstance(reply, str) else []


def run_cli(example: Example, folder: Path) -> None:
    arguments = example.command.split()[1:]
    result = subprocess.run(
        [sys.executable, "-m", "mobip", *arguments],
        cwd=folder,
        env=without_mobip_settings(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"{example.command}: {result.stderr}"
    assert result.stdout.strip(), example.command


def test_every_shell_example_of_the_readme_works(tmp_path: Path) -> None:
    text = README.read_text()
    shell = [example for block in blocks("sh", text) for example in examples(block)]
    assert any(e.command.startswith("curl") for e in shell)
    with serve(tmp_path / "var") as served:
        [banner] = [b for b in blocks("text", text) if "api_secret_key" in b]
        assert pattern(banner.strip()).fullmatch(served.banner.strip()), served.banner
        account_id, secret = served.credentials
        values = {"api": account_id.removeprefix("api_"), "mbs": secret.removeprefix("mbs_")}
        values = {prefix: f"{prefix}_{value}" for prefix, value in values.items()}
        for example in shell:
            if example.command.startswith("make "):
                check_make(example.command)
            elif example.command.startswith("curl "):
                run_curl(served, example, values)
            elif example.command.startswith(".venv/bin/mobip "):
                run_cli(example, tmp_path)
            else:
                pytest.fail(f"README shows a command this test cannot run: {example.command}")
