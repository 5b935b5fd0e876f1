"""End-to-end: the app works on a machine without internet, and looks like the system asks.

1. Every page is opened (and used: an example analysed, an upload, a live stream started
   and stopped) in headless Chromium while every request of the browser context, the
   WebRTC component's iframe included, is recorded. Any request to a host other than the
   app's (127.0.0.1 / localhost, or data: and blob: URLs) fails the test, and so does a
   favicon that is not the app's own.
2. The theme follows the system's light/dark setting: Home opened with Chromium's
   ``color_scheme`` "light" and "dark" gets a light and a dark background with readable
   text; screenshots ``home-light.png`` and ``home-dark.png`` go to ``test-artifacts/``.

Run: ``python -m pytest -q tests/e2e/test_offline.py``.
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest

from tests.e2e.conftest import MIC_CLIP, TIMEOUT_MS, UPLOADER, VIEWPORT, screenshot

pytestmark = pytest.mark.e2e

#: Hosts the browser may talk to: the app's own server on this machine.
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
#: URLs that never leave the browser.
LOCAL_SCHEMES = {"data", "blob", "about"}
FAVICON = "document.querySelector(\"link[rel~='icon']\")?.href || ''"


def is_local(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme in LOCAL_SCHEMES or parsed.hostname in LOCAL_HOSTS


def test_is_local():
    assert is_local("http://127.0.0.1:8501/static/js/index.js") and is_local("data:image/svg+xml,<svg/>")
    assert is_local("blob:http://127.0.0.1:8501/0f1e") and is_local("ws://localhost:8501/_stcore/stream")
    assert not is_local("https://fonts.gstatic.com/s/i/short-term/release/materialsymbolsrounded/mic/default/24px.svg")
    assert not is_local("https://cdn.jsdelivr.net/gh/twitter/twemoji/72x72/1f3a4.png")


def settle(page) -> None:
    """Let lazy loads (plotly, components, the favicon) happen before moving on."""
    try:
        page.wait_for_load_state("networkidle", timeout=15_000)
    except Exception:  # Streamlit's websocket keeps a connection open on some versions: fine
        pass
    page.wait_for_timeout(1000)


def test_no_request_leaves_the_machine(browser, warm_app):
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    favicons: dict[str, str] = {}
    page = context.new_page()
    try:
        page.goto(warm_app)
        page.locator('[data-testid="stMetricValue"]').first.wait_for()
        page.get_by_role("button", name=re.compile(r"actor \d+")).first.click()
        page.get_by_text("Predicted emotion:").first.wait_for()
        page.locator(".js-plotly-plot .main-svg").first.wait_for()
        settle(page)
        favicons["Home"] = page.evaluate(FAVICON)

        page.goto(f"{warm_app}/Analyze")
        page.locator(UPLOADER).set_input_files(MIC_CLIP)
        page.get_by_text("Predicted emotion:").first.wait_for()
        settle(page)
        favicons["Analyze"] = page.evaluate(FAVICON)

        page.goto(f"{warm_app}/Live")
        widget = page.frame_locator('iframe[title*="webrtc"]')
        widget.get_by_role("button", name="Start listening").click()
        page.get_by_text(re.compile(r"Microphone level: -?\d+ dBFS")).first.wait_for()
        page.wait_for_timeout(2000)
        widget.get_by_role("button", name="Stop").click()
        page.get_by_text("Stopped").first.wait_for()
        settle(page)
        favicons["Live"] = page.evaluate(FAVICON)

        for path, heading in (("Model", "Confusion matrix"), ("Dataset", "One sentence, eight emotions")):
            page.goto(f"{warm_app}/{path}")
            page.get_by_text(heading).first.wait_for()
            page.locator(".js-plotly-plot .main-svg").first.wait_for()
            settle(page)
            favicons[path] = page.evaluate(FAVICON)
    finally:
        context.close()

    outside = sorted({url for url in requests if not is_local(url)})
    assert not outside, f"requests to other hosts: {outside}"
    assert len(requests) > 20  # the recording worked (scripts, styles, the component...)
    for name, favicon in favicons.items():
        assert favicon and is_local(favicon), f"{name}: favicon {favicon[:120]!r}"


def luminance(css_color: str) -> float:
    """WCAG relative luminance of an ``rgb(...)``/``rgba(...)`` CSS colour."""
    red, green, blue = (int(value) / 255 for value in re.findall(r"[\d.]+", css_color)[:3])
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (red, green, blue)]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(first: str, second: str) -> float:
    high, low = sorted([luminance(first), luminance(second)], reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_theme_follows_the_system_setting(browser, warm_app, scheme):
    context = browser.new_context(viewport=VIEWPORT, color_scheme=scheme)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto(warm_app)
        page.locator('[data-testid="stMetricValue"]').first.wait_for()
        page.wait_for_timeout(1500)
        colors = page.evaluate("""() => {
            const style = (selector) => getComputedStyle(document.querySelector(selector));
            return {background: style('[data-testid="stApp"]').backgroundColor,
                    text: style('[data-testid="stMarkdownContainer"] p').color,
                    heading: style('h1').color};
        }""")
        screenshot(page, f"home-{scheme}")
    finally:
        context.close()
    background = luminance(colors["background"])
    assert (background > 0.8) if scheme == "light" else (background < 0.05), colors
    assert contrast(colors["text"], colors["background"]) >= 7.0, colors  # WCAG AAA for body text
    assert contrast(colors["heading"], colors["background"]) >= 7.0, colors
