"""Issue 24 where the browser matters: a tapped Home example on a phone brings its result into view,
and the segment picker shows the file on screen, not the previous one (AppTest sees the widgets,
not what the browser draws from them; tests/test_app_polish.py covers the rest)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from ser.serving.analysis import waveform_to_wav
from ser.serving.audio import decode_audio
from tests.conftest import EXAMPLES
from tests.e2e.conftest import TIMEOUT_MS, UPLOADER, screenshot
from tests.load_page import DELETE_BUTTON

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}


def in_view(page, locator) -> bool:
    box = locator.bounding_box()
    return box is not None and 0 <= box["y"] and box["y"] + min(box["height"], 40) <= page.viewport_size["height"]


def test_a_tapped_example_on_a_phone_brings_its_progress_and_result_into_view(browser, warm_app):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto(warm_app)
        button = page.get_by_role("button", name=re.compile(r"angry · actor 12"))
        button.scroll_into_view_if_needed()
        button.tap()
        top = "document.querySelector('.st-key-home-result')?.getBoundingClientRect().top"
        # In view as the run starts, while the model still works: the progress bar is on screen.
        page.wait_for_function(f"() => {{ const top = {top}; return top !== undefined && top < window.innerHeight; }}",
                               polling=100)
        answer = page.locator(".st-key-home-result").get_by_text("Predicted emotion:").first
        answer.wait_for()
        # Once drawn, the result starts at the top of the screen and its answer is in view.
        page.wait_for_function(f"() => Math.abs({top}) < 80", polling=100)
        assert in_view(page, answer), answer.bounding_box()
        # It was far below the tapped button (Streamlit scrolls its main element, not the window).
        assert page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollTop") > 1000
        screenshot(page, "home-example-phone")
    finally:
        context.close()


def long_wav(names: list[str]) -> bytes:
    gap = np.zeros(16000, np.float32)
    parts = [decode_audio(EXAMPLES / name, sample_rate=16000) for name in names]
    return waveform_to_wav(np.concatenate([piece for part in parts for piece in (part, gap)][:-1]), sample_rate=16000)


def picker(page):
    """The "Hear one segment" box (a combobox whose input shows the chosen option)."""
    return page.locator('[data-testid="stSelectbox"]').filter(has_text="Hear one segment").first


def picker_text(page) -> str:
    """What the closed picker shows."""
    return picker(page).locator('input[role="combobox"]').input_value().strip()


def test_the_segment_picker_shows_the_new_files_segment_not_the_previous_ones(page, warm_app):
    page.goto(f"{warm_app}/Analyze")
    first_file = long_wav(["03-01-05-02-01-01-12.flac", "03-01-04-02-01-01-03.flac"])
    page.locator(UPLOADER).set_input_files(files=[{"name": "first.wav", "mimeType": "audio/wav", "buffer": first_file}])
    page.get_by_text("Hear one segment").first.wait_for()
    assert picker_text(page).startswith("1. 0.0-")
    picker(page).get_by_role("button", name="Open").click()
    page.locator('[role="option"]').nth(1).click()  # the user listens to the second segment
    page.wait_for_function("() => [...document.querySelectorAll('input[role=combobox]')]"
                           ".some(input => input.value.startsWith('2. '))", polling=200)
    first = picker_text(page)
    page.locator(DELETE_BUTTON).first.dispatch_event("click")
    page.wait_for_timeout(500)
    page.locator(UPLOADER).set_input_files(files=[{"name": "second.wav", "mimeType": "audio/wav", "buffer": long_wav(
        ["03-01-03-02-01-01-12.flac", "03-01-02-02-01-01-03.flac", "03-01-06-02-01-01-12.flac"])}])
    page.get_by_text("second.wav · ").first.wait_for()
    page.wait_for_function("() => !document.querySelector('[data-stale=\"true\"]')", polling=200)
    page.get_by_text("Hear one segment").first.wait_for()
    shown = picker_text(page)
    picker(page).get_by_role("button", name="Open").click()
    page.locator('[role="option"]').first.wait_for()
    options = [text.strip() for text in page.locator('[role="option"]').all_inner_texts()]
    assert len(options) == 3 and shown == options[0] and shown != first, (shown, options, first)
