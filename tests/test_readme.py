"""The README is a user's guide: its Python example runs, its links resolve, it stays short."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

README = ROOT / "README.md"


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.slow
def test_readme_python_example_runs():
    """Run as a user would: a new Python process in the checkout, the block as written."""
    blocks = _python_blocks(README.read_text(encoding="utf-8"))
    if not blocks:
        raise AssertionError("the README lost its library example")
    for block in blocks:
        result = subprocess.run([sys.executable, "-"], input=block, cwd=ROOT, capture_output=True, text=True,
                                timeout=300, check=False)
        assert result.returncode == 0, result.stderr[-2000:]
        printed = result.stdout.split()
        assert printed and printed[0] in {"neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"}


def test_readme_links_and_images_exist():
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [target for target in targets if "://" not in target]
    assert local, "expected links to docs/ and screenshots"
    missing = [target for target in local if not (ROOT / target).exists()]
    assert not missing, f"README links to files that do not exist: {missing}"


def test_readme_is_a_guide_not_a_notebook():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 200
