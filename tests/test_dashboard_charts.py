"""The dashboard's pure parts: the SVG charts (axes, scaling, empty and odd series, escaping), the
number formats, the session table (idle and absolute lifetime, bound), the sign-in throttle, the
form number parser and the id patterns the dashboard shares with the API."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from lsp_node.admin import api_lsp, api_node, patterns
from lsp_node.dashboard import actions, charts, forms, render, views
from lsp_node.dashboard.sessions import LoginLimiter, Sessions, client_key

SVG = "{http://www.w3.org/2000/svg}"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def points_of(root: ET.Element) -> list[list[tuple[float, float]]]:
    out = []
    for pl in root.iter(f"{SVG}polyline"):
        out.append([(float(x), float(y)) for x, y in (p.split(",") for p in pl.attrib["points"].split())])
    return out


def tick_labels(root: ET.Element, axis: str) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text") if t.get("class") == f"tick {axis}"]


@pytest.mark.parametrize(
    ("lo", "hi", "want"),
    [
        (0, 10, (0, 10, 2.5)),
        (0, 7, (0, 8, 2)),
        (0, 100, (0, 100, 25)),
        (0, 1_234_567, (0, 1_500_000, 500_000)),
        (3, 3, (0, 3, 1)),  # constant data: the axis still starts at zero and has height
        (0, 0, (0, 1, 0.25)),  # all zero: a unit axis, not a division by zero
        (-5, 5, (-5, 5, 2.5)),
        (0, 0.3, (0, 0.3, 0.1)),
    ],
)
def test_nice_range(lo: float, hi: float, want: tuple[float, float, float]) -> None:
    bottom, top, step = charts.nice_range(lo, hi)
    assert bottom <= min(lo, 0) and top >= hi and top > bottom
    assert (bottom, top, step) == pytest.approx(want)
    assert round((top - bottom) / step) <= 8


@pytest.mark.parametrize(
    ("v", "want"),
    [(0, "0"), (950, "950"), (1500, "1.5k"), (2_000_000, "2M"), (3e9, "3G"), (-1200, "-1.2k"), (0.25, "0.25")],
)
def test_short_number(v: float, want: str) -> None:
    assert charts.short_number(v) == want


def test_an_empty_chart_says_so_and_draws_no_line() -> None:
    root = parse(charts.line_chart("Held HTLCs", [charts.Line("held", []), charts.Line("other", [])]))
    assert root.tag == f"{SVG}svg"
    assert points_of(root) == []
    assert any(t.text == "no samples yet" for t in root.iter(f"{SVG}text"))
    assert root.find(f"{SVG}title") is not None and root.find(f"{SVG}title").text == "Held HTLCs"  # type: ignore[union-attr]


def test_a_line_is_scaled_into_the_plot_with_time_left_to_right_and_values_upward() -> None:
    data = [(100.0, 0.0), (200.0, 50.0), (300.0, 100.0)]
    svg = charts.line_chart("Balance", [charts.Line("on-chain", data)], unit="sat", width=400, height=200)
    root = parse(svg)
    [line] = points_of(root)
    xs = [x for x, _ in line]
    ys = [y for _, y in line]
    # The first point at the plot's left edge, the last at its right edge.
    assert xs[0] == pytest.approx(charts.LEFT) and xs[-1] == pytest.approx(400 - charts.RIGHT)
    assert xs == sorted(xs)
    # Zero on the bottom edge; 100 at the top (the axis runs 0..100 in steps of 25).
    assert ys[0] == pytest.approx(200 - charts.BOTTOM)
    assert ys[-1] == pytest.approx(charts.TOP)
    assert ys[1] == pytest.approx((ys[0] + ys[2]) / 2)
    assert tick_labels(root, "y") == ["0", "25", "50", "75", "100"]
    assert len(tick_labels(root, "x")) == 3
    assert "Balance (sat)" in svg
    assert "on-chain 100" in svg  # the legend shows the latest value


def test_a_fixed_window_places_points_by_time_and_drops_those_outside() -> None:
    now = 10_000.0
    data = [(now - 7200, 5.0), (now - 1800, 10.0), (now, 20.0)]  # the first is outside a 1 h window
    root = parse(charts.line_chart("x", [charts.Line("a", data)], width=456, height=100, now=now, window=3600))
    [line] = points_of(root)
    assert len(line) == 2
    plot_w = 456 - charts.LEFT - charts.RIGHT
    assert line[0][0] == pytest.approx(charts.LEFT + plot_w / 2)
    assert line[1][0] == pytest.approx(charts.LEFT + plot_w)


def test_data_younger_than_the_window_fills_the_chart_up_to_now() -> None:
    now = 10_000.0
    data = [(now - 600, 1.0), (now - 300, 2.0)]
    root = parse(charts.line_chart("x", [charts.Line("a", data)], width=456, height=100, now=now, window=3600))
    [line] = points_of(root)
    plot_w = 456 - charts.LEFT - charts.RIGHT
    assert line[0][0] == pytest.approx(charts.LEFT)  # the first sample starts the axis
    assert line[1][0] == pytest.approx(charts.LEFT + plot_w / 2)  # the axis still ends now


def test_a_single_point_is_a_dot_and_odd_values_are_ignored() -> None:
    root = parse(charts.line_chart("x", [charts.Line("a", [(5.0, 3.0), (6.0, float("nan")), (float("inf"), 1.0)])]))
    assert points_of(root) == []
    [dot] = list(root.iter(f"{SVG}circle"))
    assert float(dot.attrib["cx"]) > charts.LEFT


def test_two_series_share_one_axis_and_get_their_own_colour() -> None:
    root = parse(
        charts.line_chart("Pushes", [charts.Line("sent", [(1, 1), (2, 40)]), charts.Line("failed", [(1, 0), (2, 2)])])
    )
    lines = list(root.iter(f"{SVG}polyline"))
    assert [pl.get("class") for pl in lines] == ["series s0", "series s1"]
    assert tick_labels(root, "y")[-1] == "40"


def test_long_series_are_thinned_keeping_both_ends() -> None:
    data = [(float(i), float(i % 7)) for i in range(10_000)]
    root = parse(charts.line_chart("x", [charts.Line("a", data)]))
    [line] = points_of(root)
    assert len(line) == charts.MAX_POINTS
    assert line[0][0] == pytest.approx(charts.LEFT)


def test_labels_are_escaped() -> None:
    svg = charts.line_chart('<script>alert("x")</script>', [charts.Line("<b>&", [(1, 1), (2, 2)])])
    assert "<script>" not in svg and "<b>" not in svg
    parse(svg)  # still well-formed XML


def test_capacity_bar_splits_by_side() -> None:
    root = parse(charts.capacity_bar(750_000_000, 250_000_000, width=200))
    rects = {r.get("class"): r for r in root.iter(f"{SVG}rect")}
    assert float(rects["cap-out"].attrib["width"]) == pytest.approx(150)
    assert float(rects["cap-in"].attrib["x"]) == pytest.approx(150)
    assert "outbound 750,000 sat, inbound 250,000 sat" in str(charts.capacity_bar(750_000_000, 250_000_000))
    empty = parse(charts.capacity_bar(0, 0))
    assert [r.get("class") for r in empty.iter(f"{SVG}rect")] == ["cap-none"]


def test_formats() -> None:
    assert render.sat(1_234_567) == "1,234,567 sat"
    assert render.msat(20_000_000) == "20,000 sat"
    assert render.msat(1_500) == "1.500 sat"
    assert render.msat(None) == render.NONE == "\u2013"
    assert render.num(1234) == "1,234"
    assert render.short("02" + "ab" * 32) == "02ababab…ababab"
    assert str(render.badge("held")) == '<span class="badge warn">held</span>'
    assert str(render.badge("<x>")) == '<span class="badge muted">&lt;x&gt;</span>'
    assert re.fullmatch(r"\d+ s ago", render.ago(__import__("time").time() - 5))


def test_sessions_end_when_idle_or_old_and_are_bounded() -> None:
    clock = Clock()
    s = Sessions(ttl_secs=100, idle_secs=30, max_sessions=3, clock=clock)
    a = s.create()
    assert len(a.id) >= 40 and len(a.csrf) >= 40 and a.id != a.csrf
    clock.t += 20
    assert s.get(a.id) is a  # used: its idle time starts again
    clock.t += 20
    assert s.get(a.id) is a
    clock.t += 31
    assert s.get(a.id) is None  # idle too long
    b = s.create()
    for _ in range(4):
        clock.t += 20
        assert s.get(b.id) is b
    clock.t += 20
    assert s.get(b.id) is None  # never idle, but past its absolute lifetime
    first, *_ = [s.create() for _ in range(4)]
    assert len(s) == 3 and s.get(first.id) is None  # the least recently used went first
    assert s.get("") is None and s.get(None) is None and s.get("x" * 43) is None
    c = s.create()
    s.delete(c.id)
    assert s.get(c.id) is None


def test_flashes_are_shown_once_and_bounded() -> None:
    s = Sessions(ttl_secs=100, idle_secs=30, max_sessions=3).create()
    for i in range(10):
        s.flash("ok", f"message {i}" + "x" * 1000)
    taken = s.take_flashes()
    assert len(taken) == 5 and all(len(t) <= 300 for _, t in taken)
    assert s.take_flashes() == []


def test_login_limiter_throttles_failures_per_address_and_refills() -> None:
    clock = Clock()
    lim = LoginLimiter(burst=3, refill_secs=60, clock=clock)
    for _ in range(3):
        assert lim.retry_after("10.0.0.1") == 0
        lim.failed("10.0.0.1")
    assert lim.retry_after("10.0.0.1") == pytest.approx(60)
    assert lim.retry_after("10.0.0.2") == 0  # another address is not affected
    clock.t += 30
    assert lim.retry_after("10.0.0.1") == pytest.approx(30)
    clock.t += 30
    assert lim.retry_after("10.0.0.1") == 0
    lim.failed("10.0.0.1")
    assert lim.retry_after("10.0.0.1") > 0


def test_login_limiter_throttles_each_address_alone_and_bounds_its_memory() -> None:
    clock = Clock()
    lim = LoginLimiter(burst=2, refill_secs=60, max_addresses=50, clock=clock)
    for i in range(40):  # many addresses, each out of tries
        lim.failed(f"10.0.{i}.1")
        lim.failed(f"10.0.{i}.1")
    assert lim.retry_after("10.0.3.1") > 0
    # No shared bucket: guessers elsewhere cannot lock the operator out.
    assert lim.retry_after("192.0.2.7") == 0
    assert len(lim._buckets) <= 50
    clock.t += 3600
    for i in range(200):
        lim.failed(f"10.1.{i}.1")
        clock.t += 60
    assert len(lim._buckets) <= 50


def test_login_limiter_counts_an_ipv6_slash_64_as_one_address() -> None:
    lim = LoginLimiter(burst=2, refill_secs=60, clock=Clock())
    lim.failed("2001:db8:1:2::1")
    lim.failed("2001:db8:1:2:ffff::9")
    assert lim.retry_after("2001:db8:1:2::77") > 0  # a fresh address in the same /64
    assert lim.retry_after("2001:db8:1:3::1") == 0
    assert client_key("::ffff:192.0.2.1") == client_key("192.0.2.1") == "192.0.2.1"
    assert client_key("unknown") == "unknown"


@pytest.mark.parametrize(
    ("v", "want"),
    [("0", 0), ("7", 7), ("1000000", 1_000_000), ("1000001", None), ("-1", None), ("", None), (" 1", None),
     ("\u00b2", None), ("\u0663", None), ("\uff11", None), ("1" * 19, None), ("1e3", None), ("0x10", None)],
)  # fmt: skip
def test_numbers_are_ascii_digits_within_bounds(v: str, want: int | None) -> None:
    assert forms.number(v, 0, 1_000_000) == want


def test_ids_and_addresses_have_one_definition() -> None:
    assert actions.NODE_ID_RE is patterns.NODE_ID_RE and views.HOLD_ID_RE is patterns.HOLD_ID_RE
    assert actions.HOLD_ID_RE is patterns.HOLD_ID_RE and actions.PEER_ADDRESS_RE is patterns.PEER_ADDRESS_RE
    # The API's models check the same patterns, anchored.
    for model, name, pattern in [
        (api_node.ConnectBody, "node_id", patterns.NODE_ID),
        (api_node.ConnectBody, "address", patterns.PEER_ADDRESS),
        (api_lsp.HoldPath, "hold_id", patterns.HEX16),
    ]:
        schema = model.model_json_schema()["properties"][name]
        assert schema["pattern"] == patterns.anchored(pattern), (model, name)


def test_timeline_amounts_read_like_the_rest_of_the_page() -> None:
    assert views.amounts_for_people("25001000 msat in") == "25,001 sat in"
    assert views.amounts_for_people("1500 msat in") == "1.500 sat in"
    assert views.amounts_for_people("at height 120") == "at height 120"


def test_counts_get_whole_ticks_and_a_line_keeps_its_colour() -> None:
    root = parse(charts.line_chart("Held", [charts.Line("held", [(1, 0), (2, 1)], colour=3)], whole=True))
    assert tick_labels(root, "y") == ["0", "1"]  # not 0, 0.25, 0.5 ...
    assert [pl.get("class") for pl in root.iter(f"{SVG}polyline")] == ["series s3"]
    assert [r.get("class") for r in root.iter(f"{SVG}rect") if "key" in (r.get("class") or "")] == ["key s3"]
    title = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "chart-title"]
    assert title == ["Held"]
