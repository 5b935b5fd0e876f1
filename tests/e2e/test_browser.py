"""End-to-end: the app in headless Chromium against `streamlit run` (upload, record, model, dataset).

The Live page has its own file, test_live_browser.py (a fake microphone that plays once).

The shipped model may be a placeholder with low accuracy, so the tests check that *an*
emotion of the bundle is shown (the pipeline works end to end), not which one.
"""

from __future__ import annotations

import re

import pytest

from ser.config import read_json
from tests.conftest import ROOT
from tests.e2e.conftest import MIC_CLIP, TIMEOUT_MS, UPLOADER, VIEWPORT, app_server, screenshot

pytestmark = pytest.mark.e2e

EMOTIONS = read_json(ROOT / "models" / "labels.json")["emotion"]
EMOTION_PATTERN = re.compile(r"\b(" + "|".join(map(re.escape, EMOTIONS)) + r")\b")


def shown_emotion(text: str) -> str | None:
    match = EMOTION_PATTERN.search(text)
    return match.group(1) if match else None


def wait_for_charts(page, count: int) -> None:
    """Wait until ``count`` plotly charts are drawn on the visible part of the page (tabs hide others)."""
    page.locator(".js-plotly-plot:visible .main-svg").nth(count - 1).wait_for()
    page.wait_for_timeout(800)  # plotly's last paint before a screenshot


def test_upload_shows_emotion(page, warm_app):
    page.goto(f"{warm_app}/Analyze")
    page.locator(UPLOADER).set_input_files(MIC_CLIP)
    answer = page.get_by_text("Predicted emotion:").first
    answer.wait_for()
    assert shown_emotion(answer.inner_text()) in EMOTIONS
    wait_for_charts(page, 2)  # probabilities; waveform, segments and spectrogram in one figure
    screenshot(page, "analyze-upload")


def test_recording_through_fake_microphone_shows_emotion(page, warm_app):
    page.goto(f"{warm_app}/Analyze")
    page.get_by_role("tab", name="Record").click()
    page.get_by_role("button", name="Record").click()
    page.wait_for_timeout(4500)  # the example clip is 3.6 s long
    page.get_by_role("button", name="Stop recording").click()
    answer = page.get_by_text("Predicted emotion:").first
    answer.wait_for()
    assert shown_emotion(answer.inner_text()) in EMOTIONS
    assert page.get_by_text("recording.wav").count() >= 1
    wait_for_charts(page, 2)
    screenshot(page, "analyze-record")


def test_model_page_draws_confusion_matrix(page, warm_app):
    page.goto(f"{warm_app}/Model")
    page.get_by_text("Confusion matrix").first.wait_for()
    heatmap = page.locator(".js-plotly-plot .heatmaplayer image").first
    heatmap.wait_for()
    cells = page.locator(".js-plotly-plot").first.locator(".heatmaplayer text")
    assert cells.count() == len(EMOTIONS) ** 2  # one share per cell
    assert cells.first.text_content().endswith("%")
    page.wait_for_timeout(1000)
    screenshot(page, "model")  # the headline, the summary in plain words and the matrix
    page.get_by_role("radio", name="clips").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot .heatmaplayer text')]"
        ".every(t => !t.textContent.endsWith('%'))"
    )


def test_dataset_page_draws_every_example_spectrogram(page, warm_app):
    page.goto(f"{warm_app}/Dataset")
    page.get_by_text("One sentence, eight emotions").wait_for()
    grid = page.locator(".js-plotly-plot").first
    grid.locator(".heatmaplayer image").first.wait_for()
    examples = len(list((ROOT / "assets" / "examples").glob("*.flac")))
    assert grid.locator(".heatmaplayer image").count() == examples
    page.wait_for_timeout(800)
    screenshot(page, "dataset")


def test_a_page_url_as_the_first_request_opens_that_page(browser):
    """A bookmark to /Model on a server nobody has visited yet: the page, no "Page not found".

    (With lower-case url paths, Streamlit's pages/ folder scan named the page "Model" until
    app.py's navigation ran, and the first visitor got a "Page not found" dialog.)"""
    with app_server("streamlit-first-request.log") as url:
        context = browser.new_context(viewport=VIEWPORT)
        try:
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"{url}/Model")
            page.get_by_role("heading", name="How well the model works").wait_for()
            page.wait_for_timeout(1000)
            assert page.get_by_text("Page not found").count() == 0
        finally:
            context.close()
