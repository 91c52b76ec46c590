"""The loss-curve SVG writer: well-formed SVG, round ticks, one polyline per series, data to pixels."""
import xml.etree.ElementTree as ET

import pytest

from common.svg import HEIGHT, LEFT, TOP, WIDTH, line_chart, nice_ticks, write_line_chart

NS = {"svg": "http://www.w3.org/2000/svg"}


@pytest.mark.parametrize("low, high, ticks", [
    (0.13, 2.2, [0, 0.5, 1, 1.5, 2, 2.5]),
    (0.13, 2.7, [0, 1, 2, 3]),
    (1, 263, [0, 100, 200, 300]),
    (0, 9, [0, 2, 4, 6, 8, 10]),
    (0.0123, 0.0391, [0.01, 0.02, 0.03, 0.04]),
    (0.3e-12, 1.3e-12, [0.2e-12, 0.4e-12, 0.6e-12, 0.8e-12, 1.0e-12, 1.2e-12, 1.4e-12]),  # once cut at 1e-12
])
def test_ticks_are_round_numbers_covering_the_range(low, high, ticks):
    assert nice_ticks(low, high) == pytest.approx(ticks, rel=1e-9, abs=0)


def polylines(svg_text):
    root = ET.fromstring(svg_text)
    return {line.get("data-name"): [tuple(map(float, p.split(","))) for p in line.get("points").split()]
            for line in root.iterfind(".//svg:polyline", NS)}


def test_each_series_is_a_polyline_through_its_points():
    lines = polylines(line_chart({"train": [(1, 2.0), (2, 1.5), (3, 1.0)], "val": [(0, 2.5), (3, 1.2)]}))
    assert [len(points) for points in lines.values()] == [3, 2]
    xs, ys = zip(*lines["train"])
    assert xs[0] < xs[1] < xs[2] and ys[0] < ys[1] < ys[2]  # a falling loss goes down the page: SVG y grows down
    assert all(LEFT <= x <= WIDTH and TOP <= y <= HEIGHT for points in lines.values() for x, y in points)


def test_non_finite_points_and_empty_series_are_left_out():
    lines = polylines(line_chart({"train": [(1, 2.0), (2, float("nan")), (3, 1.0)], "val": []}))
    assert list(lines) == ["train"] and len(lines["train"]) == 2


def test_a_single_point_and_markup_in_labels_still_give_valid_svg(tmp_path):
    path = tmp_path / "loss.svg"
    write_line_chart(str(path), {"val <b>": [(0, 2.3)]}, title="run & <1>", x_label="step", y_label="loss")
    root = ET.parse(path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert "run & <1>" in [t.text for t in root.iterfind(".//svg:text", NS)]
