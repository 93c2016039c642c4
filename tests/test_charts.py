"""Chart specs and widget images: valid Vega-Lite, no data inside, drawn as expected.

Every spec is checked against the Vega-Lite schema shipped with Altair, then drawn
by vl-convert with hand-made rows; expected labels and values are written out by hand
from those rows.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from html import unescape
from importlib import resources
from typing import Any
from xml.etree import ElementTree

import altair as alt
import jsonschema
import polars as pl
import pytest
import vl_convert as vlc

from embedkit.embed.charts import chart_spec
from embedkit.embed.fields import Field
from embedkit.embed.images import NO_TABLE_IMAGE, kpi_svg, render_image
from embedkit.embed.resources import Widget
from embedkit.embed.theme import Theme
from embedkit.query.spec import Query

DAY = Field("ordered_at", "orders.ordered_at", "Ordered at", "time", grain="day")
HOUR = Field("ordered_at", "orders.ordered_at", "Ordered at", "time", grain="hour")
WEEK = Field("ordered_at", "orders.ordered_at", "Ordered at", "time", grain="week")
HOUR_OF_DAY = Field(
    "ordered_at_hour_of_day",
    "orders.ordered_at",
    "Ordered at (hour of day)",
    "dimension",
    grain="hour_of_day",
)
DAY_OF_WEEK = Field(
    "ordered_at_day_of_week",
    "orders.ordered_at",
    "Ordered at (day of week)",
    "dimension",
    grain="day_of_week",
)
CATEGORY = Field("category", "products.category", "Category", "dimension")
REGION = Field("region", "orders.region", "Region", "dimension")
REVENUE = Field("revenue", "orders.revenue", "Revenue", "measure", format="currency")
ORDERS = Field("orders", "orders.count", "Orders", "measure", format="integer")
SHARE = Field("share", "orders.share", "Share", "measure", format="percent")
CONFIG = Theme().vega_config(dark=False)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def widget(kind: Any, **options: Any) -> Widget:
    return Widget(name="w", kind=kind, query=Query(measures=("orders.revenue",)), **options)


@functools.cache
def validator() -> jsonschema.Draft7Validator:
    text = resources.files("altair.vegalite.v6.schema").joinpath("vega-lite-schema.json")
    return jsonschema.Draft7Validator(json.loads(text.read_text()))


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def check(spec: dict[str, Any] | None, fields: list[Field]) -> dict[str, Any]:
    """Schema-valid, reads only the named rows, names fields by key only."""
    assert spec is not None
    validator().validate(spec)
    assert spec["data"] == {"name": "rows"}
    keys = {f.key for f in fields}
    named: list[str] = []
    for key, value in walk(spec):
        assert key not in ("values", "url", "datasets", "config"), key
        if key == "field" and isinstance(value, str):
            named.append(value)
        elif key in ("fold", "groupby", "fields") and isinstance(value, list):
            named += [v for v in value if isinstance(v, str)]
    assert named
    for name in named:
        assert "." not in name
        assert name in keys or name.startswith("_ek_"), name
    text = json.dumps(spec)
    for f in fields:
        assert f.member not in text
    assert "select " not in text.lower()
    assert "title" not in spec and spec["width"] == "container"
    return spec


def draw(spec: dict[str, Any], rows: list[dict[str, Any]], width: int = 360) -> str:
    full = json.loads(json.dumps(spec))
    full["datasets"] = {"rows": rows}
    full["width"] = width
    return vlc.vegalite_to_svg(full, config=CONFIG, allowed_base_urls=[])


def texts(svg: str) -> list[str]:
    return [unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]


def items(svg: str, role: str) -> list[str]:
    """The aria labels of the mark items of one kind (``bar``, ``point``, ``rect mark``)."""
    pattern = rf'<path aria-label="([^"]*)" role="graphics-symbol" aria-roledescription="{role}"'
    return [unescape(label) for label in re.findall(pattern, svg)]


def test_kpi_and_table_have_no_spec() -> None:
    assert chart_spec(widget("kpi"), [REVENUE], title="Revenue") is None
    assert chart_spec(widget("table"), [CATEGORY, REVENUE], title="Revenue") is None


def test_line_by_day_formats_values_and_dates() -> None:
    fields = [DAY, REVENUE, ORDERS, SHARE]
    spec = check(chart_spec(widget("line", y="orders.revenue"), fields, title="Daily"), fields)
    assert spec["description"] == "Daily"
    assert spec["params"][0]["name"] == "pick"
    rows = [
        {"ordered_at": "2024-03-01T00:00:00Z", "revenue": 1234.5, "orders": 1234, "share": 0.256},
        {"ordered_at": "2024-03-02T00:00:00Z", "revenue": 10.0, "orders": 3, "share": 0.5},
        {"ordered_at": "2024-03-03T00:00:00Z", "revenue": 99.99, "orders": 7, "share": 1.0},
    ]
    svg = draw(spec, rows)
    points = items(svg, "point")
    assert len(points) == 3 and len(items(svg, "line mark")) == 1
    assert (
        points[0] == "Ordered at: Fri Mar 1, 2024; Revenue: $1,234.50; Orders: 1,234; Share: 25.6%"
    )
    assert {"Mar 1", "Mar 2", "Mar 3", "Revenue"} <= set(texts(svg))
    assert 'opacity="0"' not in svg  # few points: all visible


def test_line_folds_several_measures_into_series() -> None:
    fields = [DAY, REVENUE, ORDERS]
    spec = check(chart_spec(widget("line"), fields, title="t"), fields)
    rows = [
        {"ordered_at": "2024-03-01T00:00:00Z", "revenue": 5.0, "orders": 1},
        {"ordered_at": "2024-03-02T00:00:00Z", "revenue": 7.0, "orders": 2},
    ]
    svg = draw(spec, rows)
    assert len(items(svg, "line mark")) == 2 and len(items(svg, "point")) == 4
    assert {"Revenue", "Orders"} <= set(texts(svg))  # legend labels are the titles


def test_line_points_show_single_values_and_hide_when_many() -> None:
    fields = [DAY, CATEGORY, REVENUE]
    spec = check(chart_spec(widget("line"), fields, title="t"), fields)
    one = [{"ordered_at": "2024-03-01T00:00:00Z", "category": "Books", "revenue": 3.0}]
    svg = draw(spec, one)
    assert len(items(svg, "point")) == 1 and 'opacity="0"' not in svg
    days = [date(2024, 3, 1) + timedelta(days=n) for n in range(41)]  # one more than 40
    many = [
        {"ordered_at": f"{d.isoformat()}T00:00:00Z", "category": c, "revenue": float(d.day)}
        for d in days
        for c in ("Books", "Games")
    ] + [{"ordered_at": "2024-03-05T00:00:00Z", "category": "Solo", "revenue": 1.0}]
    svg = draw(spec, many)
    points = re.findall(r'aria-roledescription="point"[^>]*opacity="(\d)"', svg)
    assert len(points) == 83
    assert points.count("1") == 1  # 41-point series hide their points; Solo's one shows
    assert {"Books", "Games", "Solo"} <= set(texts(svg))


def test_area_stacks_series_only_when_asked() -> None:
    fields = [DAY, CATEGORY, REVENUE]
    rows = [
        {"ordered_at": f"2024-03-0{d}T00:00:00Z", "category": c, "revenue": v}
        for d in (1, 2)
        for c, v in (("Books", 10.0), ("Games", 30.0))
    ]
    stacked = check(chart_spec(widget("area", stack=True), fields, title="t"), fields)
    overlaid = check(chart_spec(widget("area", stack=False), fields, title="t"), fields)
    on, off = texts(draw(stacked, rows)), texts(draw(overlaid, rows))
    assert "$40" in on and "$40" not in off and "$30" in off  # 10 + 30 on top of each other
    assert {"Books", "Games"} <= set(on)
    assert len(items(draw(stacked, rows), "area mark")) == 2


def test_bar_by_category_stacked_and_grouped() -> None:
    fields = [CATEGORY, REGION, REVENUE]
    rows = [
        {"category": "Books", "region": "North", "revenue": 12.0},
        {"category": "Books", "region": "South", "revenue": 8.0},
        {"category": "Games", "region": "North", "revenue": 5.0},
    ]
    stacked = check(chart_spec(widget("bar", color="orders.region"), fields, title="t"), fields)
    svg = draw(stacked, rows)
    assert len(items(svg, "bar")) == 3
    assert {"Books", "Games", "North", "South"} <= set(texts(svg))
    assert "$20" in texts(svg)  # Books: 12 + 8
    grouped = widget("bar", color="orders.region", stack=False)
    spec = check(chart_spec(grouped, fields, title="t"), fields)
    assert spec["encoding"]["xOffset"]["field"] == "region"
    svg = draw(spec, rows)
    assert len(items(svg, "bar")) == 3 and "$20" not in texts(svg)


def test_horizontal_bars_sort_by_value_and_truncate_long_labels() -> None:
    fields = [CATEGORY, REVENUE]
    long_name = "Garden furniture, outdoor lighting and other very long things"
    rows = [
        {"category": "Books", "revenue": 5.0},
        {"category": long_name, "revenue": 50.0},
        {"category": "Games", "revenue": 20.0},
    ]
    spec = check(chart_spec(widget("bar", horizontal=True), fields, title="t"), fields)
    labels = texts(draw(spec, rows))
    names = [t for t in labels if t in ("Books", "Games") or t.startswith("Garden")]
    assert names[1:] == ["Games", "Books"] and names[0].endswith("…")
    assert long_name not in labels


def test_bars_over_weeks_are_one_band_per_week() -> None:
    fields = [WEEK, REVENUE]
    rows = [  # weeks start on Mondays: Jan 1, 8 and 15 of 2024
        {"ordered_at": "2024-01-01T00:00:00Z", "revenue": 1.0},
        {"ordered_at": "2024-01-08T00:00:00Z", "revenue": 2.0},
        {"ordered_at": "2024-01-15T00:00:00Z", "revenue": 3.0},
    ]
    svg = draw(check(chart_spec(widget("bar"), fields, title="t"), fields), rows)
    bars = items(svg, "bar")
    assert bars == [
        "Ordered at: Jan 1, 2024; Revenue: $1.00",
        "Ordered at: Jan 8, 2024; Revenue: $2.00",
        "Ordered at: Jan 15, 2024; Revenue: $3.00",
    ]
    assert {"Jan 1", "Jan 8", "Jan 15"} <= set(texts(svg))


def test_heatmap_one_cell_per_row() -> None:
    fields = [CATEGORY, REGION, ORDERS]
    pairs = [(c, r) for c in ("Books", "Games") for r in ("North", "South")]
    rows = [{"category": c, "region": r, "orders": n} for n, (c, r) in enumerate(pairs, 1)]
    spec = check(chart_spec(widget("heatmap"), fields, title="t"), fields)
    svg = draw(spec, rows)
    cells = items(svg, "rect mark")
    assert len(cells) == 4 and "Category: Games; Region: South; Orders: 4" in cells
    assert {"Books", "Games", "North", "South"} <= set(texts(svg))


WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def test_heatmap_of_hour_by_weekday_names_the_days_in_order() -> None:
    fields = [HOUR_OF_DAY, DAY_OF_WEEK, ORDERS]
    spec = check(chart_spec(widget("heatmap"), fields, title="t"), fields)
    assert spec["encoding"]["x"]["type"] == spec["encoding"]["y"]["type"] == "ordinal"
    # Rows in no particular order: the axes still run 0..23 and Monday..Sunday.
    cells = [(h, d) for d in (7, 3, 1, 5, 2, 6, 4) for h in range(23, -1, -1)]
    rows = [
        {"ordered_at_hour_of_day": h, "ordered_at_day_of_week": d, "orders": 10 * h + d}
        for h, d in cells
    ]
    svg = draw(spec, rows, width=600)
    labels = texts(svg)
    assert [t for t in labels if t in WEEKDAYS] == WEEKDAYS
    x_title = labels.index("Ordered at (hour of day)")  # drawn after the axis labels
    assert labels[x_title - 24 : x_title] == [str(h) for h in range(24)]
    marks = items(svg, "rect mark")
    assert len(marks) == 24 * 7
    assert "Ordered at (hour of day): 9; Ordered at (day of week): Tuesday; Orders: 92" in marks


def test_bars_by_weekday_keep_the_weeks_order() -> None:
    fields = [DAY_OF_WEEK, ORDERS]
    rows = [
        {"ordered_at_day_of_week": d, "orders": 8 - d if d != 3 else 50} for d in range(7, 0, -1)
    ]
    for horizontal in (False, True):
        spec = check(chart_spec(widget("bar", horizontal=horizontal), fields, title="t"), fields)
        labels = texts(draw(spec, rows))
        assert [t for t in labels if t in WEEKDAYS] == WEEKDAYS  # not sorted by value


def test_titles_with_quotes_and_accents_reach_labels_intact() -> None:
    odd = Field("region", "orders.region", 'Région "nord" d\'achat \\ <b>', "dimension")
    fields = [CATEGORY, odd, REVENUE]
    spec = check(chart_spec(widget("heatmap"), fields, title="t"), fields)
    svg = draw(spec, [{"category": "Books", "region": "Nord", "revenue": 2.5}])
    assert items(svg, "rect mark") == [
        'Category: Books; Région "nord" d\'achat \\ <b>: Nord; Revenue: $2.50'
    ]


PHONE_ROWS = [
    {
        "ordered_at": f"2024-03-{d:02d}T00:00:00Z",
        "category": f"A rather long category {c}",
        "revenue": 123456.78 * d,
        "orders": d,
    }
    for d in range(1, 15)
    for c in range(6)
]


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("line", {}),
        ("area", {}),
        ("bar", {}),
        ("bar", {"horizontal": True, "stack": False}),
        ("heatmap", {"y": "orders.revenue"}),
    ],
)
def test_charts_fit_a_phone_card(kind: str, options: dict[str, Any]) -> None:
    fields = [DAY, CATEGORY, REVENUE, ORDERS]
    spec = check(chart_spec(widget(kind, **options), fields, title="t"), fields)
    for rows in (PHONE_ROWS, []):
        svg = draw(spec, rows, width=343)  # a 375 px screen less the card's padding
        root = ElementTree.fromstring(svg)
        assert float(root.attrib["width"]) <= 343


def test_specs_are_fresh_copies() -> None:
    fields = [DAY, REVENUE]
    first = chart_spec(widget("line"), fields, title="One")
    assert first is not None
    first["datasets"] = {"rows": []}
    first["layer"].clear()
    again = check(chart_spec(widget("line"), fields, title="Two"), fields)
    assert again["description"] == "Two" and len(again["layer"]) == 2


def test_altair_chart_gets_the_rows_and_loses_its_own_data() -> None:
    sample = pl.DataFrame({"category": ["SECRET"], "revenue": [1.0]})
    base = alt.Chart(sample).encode(x="category:N", y="revenue:Q")
    chart = alt.layer(base.mark_bar(), alt.Chart(sample).mark_rule().encode(y="mean(revenue):Q"))
    fields = [CATEGORY, REVENUE]
    spec = chart_spec(widget("altair", chart=chart), fields, title="Custom")
    assert spec is not None and "SECRET" not in json.dumps(spec)
    assert all("data" not in layer for layer in spec["layer"])
    check(spec, fields)
    assert "datasets" in chart.to_dict()  # the developer's chart is left as it was
    rows = [{"category": "Books", "revenue": 4.0}, {"category": "Games", "revenue": 6.0}]
    svg = draw(spec, rows)
    assert len(items(svg, "bar")) == 2 and {"Books", "Games"} <= set(texts(svg))
    remote = alt.LookupData(alt.UrlData("https://example.com/x.json"), "k")
    lookup = alt.Chart().mark_bar().transform_lookup(lookup="category", from_=remote)
    with pytest.raises(ValueError, match="only read the widget's rows"):
        chart_spec(widget("altair", chart=lookup), fields, title="t")


def test_hour_buckets_show_their_wall_clock_in_any_time_zone() -> None:
    # 02:00 on 2024-03-10 does not exist in New York (clocks jump to 03:00): a chart in
    # local time would move it; the UTC scales keep it.
    fields = [HOUR, REVENUE]
    spec = check(chart_spec(widget("line"), fields, title="t"), fields)
    rows = [{"ordered_at": f"2024-03-10T0{h}:00:00Z", "revenue": 1.0 + h} for h in range(5)]
    full = dict(spec, datasets={"rows": rows}, width=360)
    local = {  # control: the same instant, formatted in the process's zone
        "data": {"values": rows[2:3]},
        "mark": "text",
        "encoding": {"text": {"field": "ordered_at", "type": "temporal", "format": "%H:%M"}},
    }
    script = (
        "import json, sys, vl_convert as v\n"
        "spec, local = json.load(sys.stdin)\n"
        "print(json.dumps([v.get_local_tz(), v.vegalite_to_svg(spec), v.vegalite_to_svg(local)]))\n"
    )
    env, payload = dict(os.environ, TZ="America/New_York"), json.dumps([full, local])
    cmd = [sys.executable, "-c", script]
    out = subprocess.check_output(cmd, input=payload, text=True, env=env, timeout=60)
    zone, svg, control = json.loads(out)
    assert zone == "America/New_York"
    assert "02:00" not in texts(control)  # the zone is really in effect
    assert "02:00" in texts(svg) and "Mar 10" in texts(svg)
    assert "Ordered at: Mar 10, 2024 02:00; Revenue: $3.00" in items(svg, "point")


def test_render_image_svg_and_png() -> None:
    fields = [CATEGORY, REVENUE]
    spec = check(chart_spec(widget("bar"), fields, title="t"), fields)
    rows = [{"category": "Books", "revenue": 4.0}, {"category": "Games", "revenue": 6.0}]
    svg = render_image(spec, rows, config=CONFIG, fmt="svg", width=500)
    assert svg.startswith(b"<svg") and b'width="500"' in svg.split(b">", 1)[0]
    assert b"Books" in svg and b"Games" in svg
    png = render_image(spec, rows, config=CONFIG, fmt="png", width=300, background="#ffffff")
    assert png.startswith(PNG_MAGIC)
    assert spec["width"] == "container" and "datasets" not in spec  # the spec is not changed
    with pytest.raises(ValueError, match=NO_TABLE_IMAGE):
        render_image(None, rows, config=CONFIG, fmt="svg")


def test_render_image_fetches_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        remote = {"data": {"url": f"{url}/rows.json"}, "mark": "bar"}
        image = {"data": {"name": "rows"}, "mark": "image", "encoding": {"url": {"field": "u"}}}
        for spec in (remote, image):
            with pytest.raises(ValueError, match="URL"):
                render_image(spec, [{"u": f"{url}/x.png"}], config=CONFIG, fmt="png")
        with pytest.raises(ValueError, match="not allowed"):  # vl-convert's own guard
            vlc.vegalite_to_svg(remote, allowed_base_urls=[])
    finally:
        server.shutdown()
        server.server_close()
    assert hits == []
    seen: dict[str, Any] = {}
    monkeypatch.setattr(vlc, "vegalite_to_svg", lambda spec, **kw: seen.update(kw) or "<svg/>")
    render_image({"data": {"name": "rows"}, "mark": "bar"}, [], config=None, fmt="svg")
    assert seen["allowed_base_urls"] == []


def test_kpi_svg_escapes_text() -> None:
    svg = kpi_svg('Revenue <b>&"', "$1,234.50", "+23.5%", tone="up")
    assert svg.startswith(b"<svg")
    root = ElementTree.fromstring(svg)
    words = [el.text for el in root.iter() if el.text]
    assert 'Revenue <b>&"' in words and "$1,234.50" in words and "+23.5%" in words
    assert b"<b>" not in svg
    plain = ElementTree.fromstring(kpi_svg("Orders\x00", "12"))
    assert "Orders" in [el.text for el in plain.iter()]
