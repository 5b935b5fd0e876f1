"""An import-linter contract type for scripts that are not importable modules: the Streamlit app.

import-linter checks packages (``ser``), but the app is ``app.py``, ``app_ui.py`` and the page
scripts in ``pages/``, whose names (``1_Analyze.py``) cannot even be imported. The
``scripts_forbidden`` contract type (registered in ``pyproject.toml`` under
``[tool.importlinter] contract_types``) parses each script with :mod:`ast` and fails when one
imports a forbidden module, at any depth (inside functions too). ``lint-imports`` (``make
lint``) and ``tests/test_architecture.py`` (``make test``) check it with the other contracts.

Example contract::

    [[tool.importlinter.contracts]]
    name = "the app imports the library, never the tests, benchmark or experiments"
    type = "scripts_forbidden"
    scripts = ["app.py", "app_ui.py", "pages/*.py"]
    forbidden_modules = ["tests", "bench", "experiments"]
"""

from __future__ import annotations

import ast
from pathlib import Path

from grimp import ImportGraph
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck

ROOT = Path(__file__).resolve().parent.parent


def script_imports(path: Path) -> list[tuple[int, str]]:
    """Every absolute import of a Python file, as (line number, module name), in file order."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(node.lineno, node.module)]
    return sorted(found)


def _is_in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


class ScriptsForbiddenContract(Contract):
    """Scripts (paths or glob patterns, relative to the project root) must not import the forbidden modules.

    Configuration options:
        - scripts:           Paths or glob patterns of the scripts, e.g. ``pages/*.py``.
        - forbidden_modules: Modules (with their submodules) the scripts must not import.
    """

    scripts = fields.ListField(subfield=fields.StringField())
    forbidden_modules = fields.ListField(subfield=fields.StringField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        violations, missing = [], []
        for pattern in self.scripts:  # type: ignore[attr-defined]
            paths = sorted(ROOT.glob(pattern))
            if not paths:
                missing.append(pattern)
            for path in paths:
                for line, module in script_imports(path):
                    if any(_is_in(module, forbidden) for forbidden in self.forbidden_modules):  # type: ignore[attr-defined]
                        violations.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
        return ContractCheck(kept=not violations and not missing,
                             metadata={"violations": violations, "missing": missing})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for pattern in check.metadata["missing"]:
            output.print_error(f"no script matches {pattern!r}: fix the contract's scripts")
        for violation in check.metadata["violations"]:
            output.print_error(violation, bold=False)
