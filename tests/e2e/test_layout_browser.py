"""End-to-end: what a new user sees is drawn cleanly, on a desktop and on a phone, light and dark,
without internet (issue 24 points 5 and 10).

1. The sidebar's page icons and the pages' links draw with the app's own resources while every
   request to another host is refused: each icon is a glyph of the Material Symbols font that
   Streamlit serves itself (a square glyph, not the ligature's name spelled out, and no emoji
   that would draw as an empty box without an emoji font); the favicon is the app's own.
2. A long recording (12 segments, two voices) analysed at 1280 and 390 pixels wide, in the light
   and the dark theme: in the probability bars, the arousal/valence circle and the arousal/valence
   timeline no text meets another text or a marker, and none is cut by the chart's edge
   (:mod:`tests.e2e.overlaps`). Screenshots ``why-<scheme>-<width>.png`` go to ``test-artifacts/``.

Run: ``python -m pytest -q tests/e2e/test_layout_browser.py``.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pytest

from tests.conftest import EXAMPLES
from tests.e2e.conftest import TIMEOUT_MS, UPLOADER, screenshot
from tests.e2e.overlaps import chart_layout, overlaps
from tests.e2e.test_offline import FAVICON, is_local

pytestmark = pytest.mark.e2e

#: The pages of the sidebar, in order.
PAGES = ["Home", "Analyze", "Live", "Model", "Dataset", "Compare"]
#: The icon font Streamlit ships (static/media/MaterialSymbols-Rounded.*.woff2).
ICON_FONT = '24px "Material Symbols Rounded"'
READ_ICONS = """(root) => [...root.querySelectorAll('a')].map((link) => {
    const icon = link.querySelector('[data-testid="stIconMaterial"]');
    const box = icon ? icon.getBoundingClientRect() : null;
    const label = link.innerText.replace(icon ? icon.textContent : '', '').trim();
    return {label, icon: icon ? icon.textContent : null,
            font: icon ? getComputedStyle(icon).fontFamily : null,
            width: box ? box.width : 0, height: box ? box.height : 0};
})"""


def offline_context(browser, **options):
    """A browser context in which every request to another host fails, as on a machine without internet."""
    context = browser.new_context(**options)
    context.set_default_timeout(TIMEOUT_MS)
    refused: list[str] = []

    def route(route):
        if is_local(route.request.url):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    context.route("**/*", route)
    return context, refused


def has_emoji(text: str) -> bool:
    return any(unicodedata.category(char) == "So" or 0x1F000 <= ord(char) <= 0x1FAFF or char == "\ufe0f"
               for char in text)


def assert_glyphs(icons: list[dict], *, where: str) -> None:
    for icon in icons:
        assert icon["icon"], f"{where}: {icon['label']!r} has no icon"
        assert "Material Symbols" in icon["font"], (where, icon)
        # A drawn glyph is about as wide as high; the ligature's name in a fallback font ("library_music")
        # is several times wider.
        assert 0 < icon["width"] <= 1.4 * icon["height"], (where, icon)
        assert not has_emoji(icon["label"]), (where, icon)


def test_sidebar_and_link_icons_draw_from_the_app_itself(browser, warm_app):
    context, refused = offline_context(browser, viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(warm_app)
        nav = page.locator('[data-testid="stSidebarNav"]')
        nav.locator('[data-testid="stIconMaterial"]').nth(len(PAGES) - 1).wait_for()
        page.locator('[data-testid="stMetricValue"]').first.wait_for()
        assert page.evaluate(f"document.fonts.load('{ICON_FONT}', 'home').then((faces) => faces.length)") > 0
        page.wait_for_function(f"document.fonts.check('{ICON_FONT}', 'home')")
        icons = nav.evaluate(READ_ICONS)
        assert [icon["label"] for icon in icons] == PAGES
        assert_glyphs(icons, where="sidebar")
        screenshot(page, "sidebar-offline")
        favicon = page.evaluate(FAVICON)
        assert favicon and is_local(favicon) and "/media/" in favicon, favicon  # assets/favicon.png

        page.goto(f"{warm_app}/Compare")  # no analyses yet: a link to Analyze
        link = page.locator('[data-testid="stPageLink"]').first
        link.locator('[data-testid="stIconMaterial"]').wait_for()
        assert_glyphs(link.evaluate("(element) => (" + READ_ICONS + ")(element)"), where="Compare's link")
        assert is_local(page.evaluate(FAVICON))
    finally:
        context.close()
    assert not refused, f"requests to other hosts: {refused}"


@pytest.fixture(scope="module")
def long_recording(tmp_path_factory):
    """Twelve example sentences of two actors, 0.8 s apart: twelve segments, a voice of unclear gender."""
    from ser.serving.analysis import waveform_to_wav
    from ser.serving.audio import decode_audio

    clips = [decode_audio(path, sample_rate=16000) for path in sorted(EXAMPLES.glob("*.flac"))[:12]]
    pause = np.zeros(12800, np.float32)
    path = tmp_path_factory.mktemp("long") / "twelve-sentences.wav"
    path.write_bytes(waveform_to_wav(np.concatenate([part for clip in clips for part in (clip, pause)]),
                                     sample_rate=16000))
    return path


#: The charts the issue names, found by what they draw: the bars by their y title, the circle by its
#: x title, the arousal/valence timeline by its legend.
CHARTS = {"probabilities": (".g-ytitle text", r"^probability$"), "circle": (".g-xtitle text", r"^valence: "),
          "timeline": (".legendtext", r"^arousal$")}


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [1280, 390])
def test_the_why_charts_have_no_overlapping_text(browser, warm_app, long_recording, scheme, width):
    context, refused = offline_context(browser, viewport={"width": width, "height": 1400}, color_scheme=scheme)
    try:
        page = context.new_page()
        page.goto(f"{warm_app}/Analyze")
        page.locator(UPLOADER).set_input_files(long_recording)
        page.get_by_text("Why this answer").first.wait_for()
        page.get_by_text(re.compile(r"Compared with all the actors .* gender is unclear")).first.wait_for()
        found: dict[str, list[str]] = {}
        for name, (selector, text) in CHARTS.items():
            chart = page.locator(".js-plotly-plot", has=page.locator(selector, has_text=re.compile(text))).first
            chart.wait_for()
            chart.scroll_into_view_if_needed()
            page.wait_for_timeout(300)
            found[name] = overlaps(chart_layout(chart))
        background = page.evaluate("getComputedStyle(document.querySelector('[data-testid=\"stApp\"]'))"
                                   ".backgroundColor")
        page.get_by_text("Why this answer").first.scroll_into_view_if_needed()
        screenshot(page, f"why-{scheme}-{width}")
    finally:
        context.close()
    dark = sum(int(value) for value in re.findall(r"\d+", background)[:3]) < 200
    assert dark == (scheme == "dark"), background  # the theme the test meant
    assert not any(found.values()), found
    assert not refused, refused


def test_the_overlap_check_sees_tilted_boxes_cut_texts_and_numbers_in_their_markers():
    def box(kind, x0, y0, x1, y1, *, text="t", trace=-1):
        return {"kind": kind, "trace": trace, "text": text, "corners": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]}

    def tilted(x, y, *, length=40.0, height=10.0, text="t"):  # a tick label turned 45 degrees
        u, v = length / 2**0.5, height / 2**0.5
        return {"kind": "axis", "trace": -1, "text": text,
                "corners": [[x, y], [x + u, y - u], [x + u + v, y - u + v], [x + v, y + v]]}

    frame = {"x0": 0, "y0": 0, "x1": 300, "y1": 300}
    # two parallel tilted labels side by side: their upright boxes overlap, the labels do not
    apart = [tilted(100, 100, text="calm"), tilted(120, 100, text="happy")]
    assert overlaps({"shapes": apart, "frame": frame}) == []
    assert overlaps({"shapes": [tilted(100, 100), tilted(104, 102)], "frame": frame})
    assert overlaps({"shapes": [box("annotation", 290, 10, 320, 20)], "frame": frame}) == [
        "annotation 't' cut by the chart's edge"]
    number, marker = box("point-text", 48, 48, 52, 52, trace=2), box("marker", 40, 40, 60, 60, trace=2)
    assert overlaps({"shapes": [number, marker], "frame": frame}) == []  # a segment's number in its marker
    label = box("annotation", 45, 45, 80, 55, text="angry")
    assert overlaps({"shapes": [label, marker], "frame": frame}) == ["annotation 'angry' under a marker of trace 2"]
