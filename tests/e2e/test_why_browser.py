"""End-to-end: the "why" of an analysis, the Compare page and the one-file report, in headless Chromium.

1. Two examples uploaded on Analyze: the detail view shows "Why this answer" (cues in words, the
   arousal/valence circle); Compare shows both side by side; no request leaves the machine.
2. The report downloaded from the button opens from disk with no request other than the file
   itself, and shows the answer and the waveform.

Screenshots ``analyze-why.png``, ``compare.png`` and ``report.png`` go to ``test-artifacts/``.
Run: ``python -m pytest -q tests/e2e/test_why_browser.py``.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import EXAMPLES
from tests.e2e.conftest import MIC_CLIP, TIMEOUT_MS, UPLOADER, VIEWPORT, screenshot
from tests.e2e.test_offline import is_local

pytestmark = pytest.mark.e2e

SAD = EXAMPLES / "03-01-04-02-01-01-03.flac"


@pytest.fixture
def context(browser, warm_app):
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context
    finally:
        context.close()


def test_why_and_compare_in_the_browser(context, warm_app):
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    page.goto(f"{warm_app}/Analyze")
    page.locator(UPLOADER).set_input_files([MIC_CLIP, SAD])
    why = page.get_by_text("Why this answer").first
    why.wait_for()
    page.get_by_text(re.compile(r"Pitch: .* than most (fe)?male training voices\.")).first.wait_for()
    page.get_by_text("valence: unpleasant").first.wait_for()  # the circle is drawn
    why.scroll_into_view_if_needed()
    page.wait_for_timeout(800)
    screenshot(page, "analyze-why")

    page.get_by_role("link", name="Compare").first.click()
    page.get_by_text("The cues side by side").first.wait_for()
    assert page.get_by_text("Predicted emotion:").count() == 2
    page.locator(".js-plotly-plot:visible .main-svg").nth(3).wait_for()
    page.wait_for_timeout(800)
    screenshot(page, "compare")
    outside = sorted({url for url in requests if not is_local(url)})
    assert not outside, f"requests to other hosts: {outside}"


def test_the_report_opens_offline(context, warm_app, browser, tmp_path):
    page = context.new_page()
    page.goto(f"{warm_app}/Analyze")
    page.locator(UPLOADER).set_input_files(MIC_CLIP)
    answer = page.get_by_text("Predicted emotion:").first.inner_text()
    emotion = re.search(r"Predicted emotion:\s*(?:not sure\s*—\s*the best guess,\s*)?(\w+)", answer).group(1)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download report (HTML)").click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert path.name == f"{MIC_CLIP.stem}-emotion-report.html"

    offline = browser.new_context(viewport={"width": 900, "height": 1800}, offline=True)
    try:
        requests: list[str] = []
        offline.on("request", lambda request: requests.append(request.url))
        report = offline.new_page()
        report.goto(path.as_uri())
        report.get_by_text("What the voice sounded like").wait_for()
        assert emotion in report.locator(".answer").inner_text()
        assert report.locator("svg path").count() == 1 and report.locator("svg rect").count() >= 1
        screenshot(report, "report")
        assert requests == [path.as_uri()], requests
    finally:
        offline.close()
