"""Short form of the load test (``make load`` runs the long one): the real app on loopback,
8 browser sessions analysing at once, then a few analyses in a row; every answer right, the
model loaded once, a bad upload explained, the Live page safe to open, only loopback sockets.
"""

from __future__ import annotations

import pytest

from ser.testing import chromium_path
from tests.load_app import main

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_eight_sessions_at_once_then_analyses_in_a_row(tmp_path, capsys):
    chromium = chromium_path()
    if chromium is None:
        pytest.skip("Chromium is not installed; run `make browser` (apt-get install chromium)")
    report = tmp_path / "load.json"
    code = main([
        "--sessions", "8", "--analyses", "3", "--bad-uploads", "2", "--timeout", "600", "--rss-tolerance-mb", "256",
        "--json", str(report), "--chromium", chromium,
    ])
    output = capsys.readouterr().out
    assert code == 0, output
    import json

    summary = json.loads(report.read_text())
    assert summary["concurrent_ok"] == 8 and summary["sequential_ok"] == 3
    assert summary["model_loads"] == 1
    assert summary["live_page_ok"] and summary["foreign_sockets"] == []
    messages = summary["bad_upload_messages"]
    assert set(messages) == {"notes ☃.wav", "noise.wav"}
    assert messages["notes ☃.wav"].startswith("notes ☃.wav: not a readable audio file")
    assert "no speech detected" in messages["noise.wav"]
    assert summary["rss_mb"]["before"] > 0 and summary["rss_mb"]["after"] > 0
