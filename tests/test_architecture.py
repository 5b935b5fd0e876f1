"""The layout's rules hold: the import contracts in pyproject.toml, checked as `make lint` does."""

from __future__ import annotations

import re
import subprocess
import sys

from ser.testing import ROOT
from tests.contracts import ROOT as CONTRACTS_ROOT
from tests.contracts import ScriptsForbiddenContract, script_imports


def test_import_contracts_are_kept():
    """serving never imports training, reporting, batch or Ray; batch never imports training or
    reporting; the library never imports Streamlit; the app imports the library, never the tests,
    benchmark or experiments (``lint-imports``): every declared contract is kept."""
    run = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()",
         "--no-cache"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    declared = len(re.findall(r"^\[\[tool\.importlinter\.contracts\]\]", (ROOT / "pyproject.toml").read_text(), re.M))
    assert declared >= 5 and f"{declared} kept, 0 broken" in run.stdout


def test_script_imports_sees_every_absolute_import(tmp_path):
    script = tmp_path / "1_Page.py"
    script.write_text("import os, json\nfrom ser.serving import audio\nfrom . import sibling\n\n"
                      "def late():\n    import tests.conftest\n")
    assert script_imports(script) == [(1, "json"), (1, "os"), (2, "ser.serving"), (6, "tests.conftest")]


def test_scripts_contract_names_the_forbidden_import(monkeypatch, tmp_path):
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "1_Page.py").write_text("import streamlit\nfrom bench.common import measure\n")
    (tmp_path / "app.py").write_text("import ser.serving.analysis\n")
    monkeypatch.setattr("tests.contracts.ROOT", tmp_path)
    contract = ScriptsForbiddenContract(
        name="app", session_options={},
        contract_options={"scripts": ["app.py", "pages/*.py", "missing_*.py"], "forbidden_modules": ["tests", "bench"]},
    )
    check = contract.check(graph=None, verbose=False)
    assert not check.kept
    assert check.metadata["violations"] == ["pages/1_Page.py:2 imports bench.common"]
    assert check.metadata["missing"] == ["missing_*.py"]
    assert CONTRACTS_ROOT == ROOT


#: The longest a module of the library may be: past it, a reader loses the thread (issue 24).
MAX_MODULE_LINES = 450


def test_every_library_module_stays_short_enough_to_read():
    lengths = {path.relative_to(ROOT).as_posix(): len(path.read_text().splitlines())
               for path in (ROOT / "ser").rglob("*.py")}
    assert len(lengths) > 40  # the whole library was found
    assert {path: lines for path, lines in lengths.items() if lines > MAX_MODULE_LINES} == {}
