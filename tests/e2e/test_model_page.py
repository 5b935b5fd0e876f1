"""End-to-end: the Model page in headless Chromium at a laptop's and a phone's width.

At 1280 and 390 px, with every expander open: the page never scrolls sideways, every table lies
inside the viewport without a scroll bar of its own, and a chart's toolbar (which a phone shows
on every tap) covers neither the plot nor its legend. Screenshots of the whole page go to
``test-artifacts/model-1280.png`` and ``model-390.png``.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import TIMEOUT_MS, screenshot

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.e2e

#: A laptop and a phone (iPhone 12-15 width).
WIDTHS = (1280, 390)
#: Confusion matrix, accuracy per actor, reliability diagram, learning curves, class counts, ASED answer shares,
#: answer shares on each corpus left out.
CHARTS = 7
#: Every table as laid out: its first words, its box's left and right, and the right edge of what it holds (the
#: widest of its scroll width and its inner <table>; a wider content is cut off or scrolls sideways).
TABLES_JS = """
() => [...document.querySelectorAll('[data-testid="stTable"], [data-testid="stDataFrame"]')].map(element => {
    const box = element.getBoundingClientRect();
    const inner = element.querySelector('table');
    const content = Math.max(box.left + element.scrollWidth, inner ? inner.getBoundingClientRect().right : 0);
    return [element.innerText.split('\\n')[0], box.left, box.right, content];
})
"""
#: The page's full height: Streamlit scrolls inside its own container, not the document.
HEIGHT_JS = "() => Math.max(...[...document.querySelectorAll('*')].map(element => element.scrollHeight))"


def open_every_expander(page) -> None:
    """Once the page is drawn to its end, open the specialists' expanders; wait until every chart is visible."""
    page.get_by_text("Training settings and versions").wait_for()  # the last expander
    expect(page.locator(".js-plotly-plot")).to_have_count(CHARTS, timeout=TIMEOUT_MS)  # closed ones hold theirs
    for details in page.locator('[data-testid="stExpander"] details').all():
        if details.get_attribute("open") is None:
            details.locator("summary").click()
        expect(details).to_have_attribute("open", "", timeout=TIMEOUT_MS)
    expect(page.locator(".js-plotly-plot:visible")).to_have_count(CHARTS, timeout=TIMEOUT_MS)
    for chart in page.locator(".js-plotly-plot:visible").all():
        chart.locator(".main-svg").first.wait_for()


def overlap(first: dict, second: dict) -> bool:
    return (first["x"] < second["x"] + second["width"] and second["x"] < first["x"] + first["width"]
            and first["y"] < second["y"] + second["height"] and second["y"] < first["y"] + first["height"])


@pytest.mark.parametrize("width", WIDTHS)
def test_model_page_fits_the_width_with_every_table_inside(page, warm_app, width):
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{warm_app}/Model")
    page.get_by_text("Trained on:").first.wait_for()
    page.locator(".js-plotly-plot .main-svg").first.wait_for()
    open_every_expander(page)
    page.wait_for_timeout(1500)  # plotly's last resize after the expanders opened

    page_width, viewport = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert page_width <= viewport, f"the page scrolls sideways at {width} px"
    tables = page.evaluate(TABLES_JS)
    assert len(tables) >= 6  # each emotion, conditions, views, baselines, folds, settings, versions
    for name, left, right, content in tables:
        assert 0 <= left and right <= viewport, f"table {name!r} leaves the viewport at {width} px"
        assert content <= right + 1, f"table {name!r} is cut off on the right at {width} px"
    for chart in page.locator(".js-plotly-plot:visible").all():
        box = chart.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= viewport + 1

    # Whole page in one picture: make the viewport as tall as the page.
    page.set_viewport_size({"width": width, "height": min(page.evaluate(HEIGHT_JS) + 100, 16000)})
    page.wait_for_timeout(1500)
    screenshot(page, f"model-{width}")


def test_chart_toolbar_covers_no_plot_or_legend_on_a_phone(page, warm_app):
    page.set_viewport_size({"width": 390, "height": 900})
    page.goto(f"{warm_app}/Model")
    page.get_by_text("Trained on:").first.wait_for()
    open_every_expander(page)
    page.wait_for_timeout(1000)
    charts = page.locator(".js-plotly-plot:visible").all()
    assert len(charts) == CHARTS
    for index, chart in enumerate(charts):
        chart.scroll_into_view_if_needed()
        chart.hover()  # a phone shows the toolbar on a tap, a mouse on hover
        page.wait_for_timeout(300)
        toolbars = chart.locator(".modebar")
        if not toolbars.count() or not toolbars.first.is_visible():
            continue  # the app turns the toolbar off (displayModeBar false): nothing can cover the chart
        toolbar_box = toolbars.first.bounding_box()
        plot_box = chart.locator(".nsewdrag").first.bounding_box()
        assert toolbar_box["y"] + toolbar_box["height"] <= plot_box["y"] + 1, f"chart {index}: toolbar over the plot"
        for legend in chart.locator(".legend").all():
            assert not overlap(toolbar_box, legend.bounding_box()), f"chart {index}: toolbar over the legend"
    screenshot(page, "model-390-toolbar")
