"""End-to-end: "Teach it your voice" in headless Chromium with a fake microphone (issue 23, item 6).

On the Analyze page: open the panel, record the neutral and the angry take with the browser's recorder
(each recorder picked by its label: the page also holds the calibration panel's and the main one), see
each take's level check, build the profile, download it (a ``ser.voice_profile/1`` JSON file), upload a
clip and see its answer read with the profile, then forget the profile.

The fake microphone loops one neutral RAVDESS sentence with silence around it, so both takes are the
same speech: this checks the flow through a real browser (recorder, upload, download, callbacks), not
how well a profile reads a voice (``make bench`` and the README's table measure that).

Run: ``python -m pytest -q tests/e2e/test_profile_browser.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ser.serving.audio import decode_audio
from ser.serving.profile import PROFILE_SCHEMA
from tests.conftest import EXAMPLES
from tests.e2e.conftest import BROWSER_ARGS, MIC_CLIP, TIMEOUT_MS, UPLOADER, VIEWPORT, chromium_path, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: What the fake microphone says: neutral, statement 1, actor 03 (male).
NEUTRAL_CLIP = EXAMPLES / "03-01-01-01-01-01-03.flac"
#: Silence around the sentence, as a person pausing before and after speaking would leave.
LEAD_SECONDS, TAIL_SECONDS = 0.8, 1.2
#: How long each take is recorded: at least one loop of the file plus the sentence, so every take holds
#: the whole sentence once wherever in the loop the recorder starts.
RECORD_MS = 9_000
STATUS = "Answers use your voice profile:"
EXPANDER = "Teach it your voice (about 30 seconds)"


@pytest.fixture(scope="module")
def profile_mic_wav(tmp_path_factory) -> Path:
    """silence + the neutral sentence + silence as 48 kHz 16-bit WAV (Chromium's fake microphone format)."""
    import soundfile

    speech = decode_audio(NEUTRAL_CLIP, sample_rate=48000)
    signal = np.concatenate([np.zeros(int(LEAD_SECONDS * 48000), np.float32), speech,
                             np.zeros(int(TAIL_SECONDS * 48000), np.float32)])
    assert (signal.size + speech.size) / 48000 * 1000 < RECORD_MS  # a take always holds the whole sentence
    path = tmp_path_factory.mktemp("mic-profile") / "mic-profile.wav"
    soundfile.write(path, signal, 48000, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def profile_page(browser, warm_app, profile_mic_wav) -> Iterator[object]:
    """A page in a Chromium whose fake microphone loops ``profile_mic_wav``.

    Launched through the shared browser's Playwright (one sync Playwright per thread); the shared
    browser's microphone plays the angry example, which the takes should not be.
    """
    mic_browser = browser.browser_type.launch(
        executable_path=chromium_path(), headless=True,
        args=[*BROWSER_ARGS, f"--use-file-for-fake-audio-capture={profile_mic_wav}"],
    )
    try:
        context = mic_browser.new_context(viewport=VIEWPORT, accept_downloads=True)
        context.set_default_timeout(TIMEOUT_MS)
        yield context.new_page()
    finally:
        mic_browser.close()


def recorder(page, label: str):
    """The ``st.audio_input`` whose label starts with ``label`` (the page holds several recorders)."""
    found = page.locator('[data-testid="stAudioInput"]').filter(
        has=page.locator('[data-testid="stWidgetLabel"]', has_text=re.compile("^" + re.escape(label))))
    found.wait_for()
    return found


def record_take(page, label: str, *, emotion: str) -> float:
    """Record one take with the recorder labelled ``label``; returns the seconds of speech its check reports."""
    widget = recorder(page, label)
    assert widget.count() == 1, f"{widget.count()} recorders labelled {label!r}"
    widget.scroll_into_view_if_needed()
    widget.get_by_role("button", name="Record").click()
    page.wait_for_timeout(RECORD_MS)
    widget.get_by_role("button", name="Stop recording").click()
    check = page.get_by_text(re.compile(rf"^{emotion}: ([0-9.]+) s of speech, level fine", re.IGNORECASE))
    check.wait_for()
    return float(re.search(r"([0-9.]+) s of speech", check.inner_text()).group(1))


def test_teach_it_your_voice_in_the_browser(profile_page, warm_app, tmp_path):
    page = profile_page
    page.goto(f"{warm_app}/Analyze")
    page.get_by_text(EXPANDER).click()
    # The panel is open: its first recorder is there, and no profile yet.
    recorder(page, "Neutral: say it")
    assert page.get_by_text(STATUS).count() == 0
    build = page.get_by_role("button", name=re.compile(r"^Build my profile"))
    assert build.is_disabled()  # the neutral take comes first

    neutral = record_take(page, "Neutral: say it", emotion="Neutral")
    angry = record_take(page, "Angry: say it angrily", emotion="Angry")
    assert neutral >= 0.8 and angry >= 0.8  # the whole sentence was heard, not a sliver

    build = page.get_by_role("button", name="Build my profile from 2 take(s)")
    assert build.is_enabled()
    build.click()
    status = page.get_by_text(STATUS)
    status.wait_for()
    page.get_by_role("button", name="Download my profile").wait_for()
    assert re.search(r"neutral, angry, \d+ s of speech", status.inner_text()), status.inner_text()
    status.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    screenshot(page, "analyze-profile")

    with page.expect_download() as download:
        page.get_by_role("button", name="Download my profile").click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    document = json.loads(path.read_text())
    assert path.suffix == ".json" and document["schema"] == PROFILE_SCHEMA == "ser.voice_profile/1"

    page.locator(UPLOADER).set_input_files(MIC_CLIP)
    page.get_by_text("Predicted emotion:").first.wait_for()
    read = page.get_by_text(re.compile(r"^Read with your voice profile\. Generic answer: \w+"))
    read.wait_for()
    assert read.count() == 1

    page.get_by_role("button", name="Forget my voice").click()
    page.wait_for_function(f"() => !document.body.innerText.includes({json.dumps(STATUS)})", polling=200)
    # The clip still in the uploader is answered again, now without the profile.
    page.get_by_text("Predicted emotion:").first.wait_for()
    page.wait_for_function("() => !document.querySelector('[data-stale=\"true\"]')", polling=200)
    assert page.get_by_text(STATUS).count() == 0
    assert page.get_by_role("button", name="Download my profile").count() == 0
    assert page.get_by_text(re.compile(r"^Read with your voice profile")).count() == 0
