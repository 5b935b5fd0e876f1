"""Where a plotly chart's texts and markers are drawn in the browser, and which of them overlap.

:func:`chart_layout` reads, from a rendered ``.js-plotly-plot`` element, the outline of every text
(annotations, points' and bars' texts, legend entries, axis titles and tick labels) and of every
scatter marker, as the four corners of its box on the screen (a tilted tick label is a tilted
box, not the larger upright one around it); :func:`overlaps` lists the pairs that intersect and
the texts cut by the chart's edge. Used by the end-to-end tests at desktop and phone widths, in
both themes.
"""

from __future__ import annotations

from typing import Any

#: Run in the page with the chart's element: corners in CSS pixels of the viewport.
READ_LAYOUT = """(plot) => {
    const shapes = [];
    const add = (element, kind, trace) => {
        if (kind !== 'marker' && !element.textContent.trim()) return;
        if (element.closest('[display="none"], [visibility="hidden"]')) return;
        if (getComputedStyle(element).visibility === 'hidden' || getComputedStyle(element).opacity === '0') return;
        const box = element.getBBox();
        if (box.width <= 0 || box.height <= 0) return;
        const m = element.getScreenCTM();
        const corners = [[box.x, box.y], [box.x + box.width, box.y], [box.x + box.width, box.y + box.height],
                         [box.x, box.y + box.height]].map(([x, y]) => [m.a * x + m.c * y + m.e,
                                                                        m.b * x + m.d * y + m.f]);
        shapes.push({kind, trace, text: element.textContent || '', corners});
    };
    plot.querySelectorAll('.annotation-text').forEach((e) => add(e, 'annotation', -1));
    plot.querySelectorAll('.legendtext').forEach((e) => add(e, 'legend', -1));
    plot.querySelectorAll('.g-xtitle text, .g-ytitle text, .gtitle, .xtick text, .ytick text')
        .forEach((e) => add(e, 'axis', -1));
    plot.querySelectorAll('.scatterlayer .trace').forEach((trace, index) => {
        trace.querySelectorAll('.textpoint text').forEach((e) => add(e, 'point-text', index));
        trace.querySelectorAll('.points path.point').forEach((e) => add(e, 'marker', index));
    });
    plot.querySelectorAll('.barlayer text.bartext').forEach((e) => add(e, 'bar-text', -1));
    const frame = plot.querySelector('.main-svg').getBoundingClientRect();
    return {shapes, frame: {x0: frame.left, y0: frame.top, x1: frame.right, y1: frame.bottom}};
}"""

TEXTS = {"annotation", "legend", "axis", "point-text", "bar-text"}
Corners = list[list[float]]


def _meet(first: Corners, second: Corners, *, slack: float) -> bool:
    """Whether two convex quadrilaterals overlap by more than ``slack`` pixels (separating axes)."""
    for quad in (first, second):
        for index in range(4):
            (x0, y0), (x1, y1) = quad[index], quad[(index + 1) % 4]
            normal = (y0 - y1, x1 - x0)
            length = (normal[0] ** 2 + normal[1] ** 2) ** 0.5 or 1.0
            a = [(x * normal[0] + y * normal[1]) / length for x, y in first]
            b = [(x * normal[0] + y * normal[1]) / length for x, y in second]
            if min(max(a), max(b)) - max(min(a), min(b)) <= slack:
                return False
    return True


def _inside(text: dict[str, Any], marker: dict[str, Any]) -> bool:
    """Whether ``text`` is a point's own label drawn inside its marker (a segment's number)."""
    if text["kind"] != "point-text" or text["trace"] != marker["trace"]:
        return False
    x = sum(corner[0] for corner in text["corners"]) / 4
    y = sum(corner[1] for corner in text["corners"]) / 4
    xs, ys = [corner[0] for corner in marker["corners"]], [corner[1] for corner in marker["corners"]]
    return min(xs) <= x <= max(xs) and min(ys) <= y <= max(ys)


def chart_layout(plot: Any) -> dict[str, Any]:
    """The shapes of a Playwright locator's chart (``.js-plotly-plot``)."""
    return plot.evaluate(READ_LAYOUT)


def overlaps(layout: dict[str, Any], *, slack: float = 1.0) -> list[str]:
    """Every text that meets another text or a marker (a number inside its own marker excepted),
    and every text the chart's edge cuts; empty when the chart reads cleanly."""
    shapes, frame = layout["shapes"], layout["frame"]
    texts = [shape for shape in shapes if shape["kind"] in TEXTS]
    markers = [shape for shape in shapes if shape["kind"] == "marker"]
    found = []
    for index, first in enumerate(texts):
        for second in texts[index + 1:]:
            if _meet(first["corners"], second["corners"], slack=slack):
                found.append(f"{first['kind']} {first['text']!r} on {second['kind']} {second['text']!r}")
        for marker in markers:
            if _meet(first["corners"], marker["corners"], slack=slack) and not _inside(first, marker):
                found.append(f"{first['kind']} {first['text']!r} under a marker of trace {marker['trace']}")
        xs, ys = [x for x, _ in first["corners"]], [y for _, y in first["corners"]]
        if (min(xs) < frame["x0"] - slack or max(xs) > frame["x1"] + slack
                or min(ys) < frame["y0"] - slack or max(ys) > frame["y1"] + slack):
            found.append(f"{first['kind']} {first['text']!r} cut by the chart's edge")
    return found
