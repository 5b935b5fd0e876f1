"""Fixtures for the end-to-end tests: a real ``streamlit run`` server and headless Chromium.

The server listens on a free loopback port (``ser.testing.streamlit_server``, the harness the
load test and the benchmark use too) and is stopped after the session. Chromium is
Debian's (``make browser`` installs it; Playwright cannot download browsers here) with a
fake microphone fed from a WAV of a real example clip, so both ``st.audio_input`` and the
WebRTC Live page hear the same speech. Screenshots go to ``test-artifacts/`` (git-ignored);
with ``SER_UPDATE_SCREENSHOTS=1`` they are also copied to ``docs/screenshots/`` for the README.

The server and the browser are package-scoped: they stop as soon as the last end-to-end test
is done, so Playwright's event loop and the server do not linger into the other tests.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from ser.testing import CHROMIUM_ARGS, EXAMPLES, ROOT, chromium_path, streamlit_server

ARTIFACTS = ROOT / "test-artifacts"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
#: The example the fake microphone plays: angry, actor 12 (female).
MIC_CLIP = EXAMPLES / "03-01-05-02-01-01-12.flac"
#: The Analyze page's file input, by its widget key: the "Calibrate to your voice" panel above it has one too.
UPLOADER = '.st-key-uploads [data-testid="stFileUploaderDropzoneInput"]'
#: Generous: the machine may be busy (the first page load imports TensorFlow and loads the model).
TIMEOUT_MS = 120_000
#: Tall enough for a result's answer, charts and spectrogram in one screenshot.
VIEWPORT = {"width": 1280, "height": 1300}
#: Chromium's flags (``ser.testing.CHROMIUM_ARGS``) plus a microphone that needs no prompt.
BROWSER_ARGS = [
    *CHROMIUM_ARGS,
    "--use-fake-ui-for-media-stream",  # grant the microphone without a prompt
    "--use-fake-device-for-media-stream",
]


@contextlib.contextmanager
def app_server(log_name: str = "streamlit-server.log") -> Iterator[str]:
    """``streamlit run app.py`` on a free loopback port (:func:`ser.testing.streamlit_server`); yields its URL."""
    with streamlit_server(ROOT / "app.py", log=ARTIFACTS / log_name) as server:
        yield server.url


@pytest.fixture(scope="package")
def app_url() -> Iterator[str]:
    """The app server shared by the browser tests."""
    with app_server() as url:
        yield url


@pytest.fixture(scope="session")
def mic_wav(tmp_path_factory) -> Path:
    """The example clip as 48 kHz 16-bit WAV, the format Chromium's fake microphone reads."""
    import soundfile

    from ser.serving.audio import decode_audio

    path = tmp_path_factory.mktemp("mic") / "mic.wav"
    soundfile.write(path, decode_audio(MIC_CLIP, sample_rate=48000), 48000, subtype="PCM_16")
    return path


@pytest.fixture(scope="package")
def browser(mic_wav) -> Iterator[object]:
    """Headless Chromium whose fake microphone loops ``mic_wav``."""
    executable = chromium_path()
    if executable is None:
        pytest.skip("Chromium is not installed; run `make browser` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=[*BROWSER_ARGS, f"--use-file-for-fake-audio-capture={mic_wav}"],
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="package")
def warm_app(app_url, browser) -> str:
    """The server after one full page load, so TensorFlow and the model are loaded once, up front."""
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(app_url)
        examples = len(list(EXAMPLES.glob("*.flac")))
        page.locator('[data-testid="stMetricValue"]').first.wait_for()
        page.get_by_role("button", name=re.compile(r"actor \d+")).nth(examples - 1).wait_for()
        page.wait_for_timeout(500)
        screenshot(page, "home")
    finally:
        page.close()
    return app_url


@pytest.fixture
def page(browser, warm_app) -> Iterator[object]:
    """A fresh browser context per test (own session, own microphone stream)."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def screenshot(page, name: str) -> Path:
    """Save a viewport screenshot to test-artifacts/ (and docs/screenshots/ when refreshing)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=path)
    if os.environ.get("SER_UPDATE_SCREENSHOTS") == "1":
        from PIL import Image  # a Streamlit dependency

        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        # 256-colour PNGs keep the README's images small (spectrograms are detail-heavy).
        with Image.open(path) as image:
            image.convert("RGB").quantize(colors=256).save(DOCS_SCREENSHOTS / f"{name}.png", optimize=True)
    return path
