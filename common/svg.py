"""A small SVG line-chart writer: enough for loss curves, with no plotting library.

    write_line_chart("loss.svg", {"train": [(1, 2.3), (2, 1.9), …], "val": [(0, 2.4), (50, 1.1)]},
                     title="run 20250101-120000", x_label="step", y_label="loss")

Data coordinates map linearly onto the plot box (y grows upwards, SVG's y downwards). Axis ticks are
"nice" numbers: the step between ticks is 1, 2 or 5 × 10^k, the smallest giving at most ~5 intervals.
Each series is a polyline with a dot on every point, so a short series (validation) stays visible.
"""
import html
import math

WIDTH, HEIGHT = 640, 400
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 36, 48  # margins around the plot box, for ticks, labels and title
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")


def nice_ticks(low: float, high: float, intervals: int = 5) -> list:
    """Round-numbered ticks covering [low, high]: the first ≤ low, the last ≥ high."""
    raw = (high - low) / intervals
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    digits = max(0, -math.floor(math.log10(step))) + 3  # enough to print i·step without float dust, never fewer
    return [round(i * step, digits) for i in range(first, last + 1)]


def _range(values) -> tuple:
    low, high = min(values), max(values)
    if high - low < 1e-12 * max(1.0, abs(high)):  # one value, or all equal: open a window around it
        low, high = low - 0.5 * max(1.0, abs(low)), high + 0.5 * max(1.0, abs(high))
    return low, high


def line_chart(series: dict, title: str = "", x_label: str = "", y_label: str = "") -> str:
    """The SVG text for {name: [(x, y), …]}; series with no finite point are left out."""
    series = {name: [(x, y) for x, y in points if math.isfinite(x) and math.isfinite(y)]
              for name, points in series.items()}
    series = {name: points for name, points in series.items() if points}
    points = [p for ps in series.values() for p in ps] or [(0.0, 0.0)]
    x_ticks = nice_ticks(*_range([x for x, _ in points]))
    y_ticks = nice_ticks(*_range([y for _, y in points]))
    box_w, box_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x):
        return LEFT + box_w * (x - x_ticks[0]) / (x_ticks[-1] - x_ticks[0])

    def py(y):
        return TOP + box_h * (1 - (y - y_ticks[0]) / (y_ticks[-1] - y_ticks[0]))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
           f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
           f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
           f'<text x="{WIDTH / 2}" y="20" text-anchor="middle" font-size="14">{html.escape(title)}</text>']
    for x in x_ticks:
        out.append(f'<line x1="{px(x):.1f}" y1="{TOP}" x2="{px(x):.1f}" y2="{TOP + box_h}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{px(x):.1f}" y="{TOP + box_h + 16}" text-anchor="middle">{x:g}</text>')
    for y in y_ticks:
        out.append(f'<line x1="{LEFT}" y1="{py(y):.1f}" x2="{LEFT + box_w}" y2="{py(y):.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{LEFT - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:g}</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{box_w}" height="{box_h}" fill="none" stroke="#444"/>')
    out.append(f'<text x="{LEFT + box_w / 2}" y="{HEIGHT - 10}" text-anchor="middle">{html.escape(x_label)}</text>')
    out.append(f'<text transform="translate(16 {TOP + box_h / 2}) rotate(-90)" text-anchor="middle">'
               f'{html.escape(y_label)}</text>')
    for index, (name, data) in enumerate(series.items()):
        color = COLORS[index % len(COLORS)]
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in data)
        out.append(f'<polyline class="series" data-name="{html.escape(name)}" points="{coords}" fill="none" '
                   f'stroke="{color}" stroke-width="1.5"/>')
        out += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2" fill="{color}"/>' for x, y in data]
        legend_y = TOP + 16 + 18 * index
        out.append(f'<line x1="{LEFT + box_w - 90}" y1="{legend_y - 4}" x2="{LEFT + box_w - 70}" '
                   f'y2="{legend_y - 4}" stroke="{color}" stroke-width="2"/>')
        out.append(f'<text x="{LEFT + box_w - 64}" y="{legend_y}">{html.escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_line_chart(path: str, series: dict, title: str = "", x_label: str = "", y_label: str = "") -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(line_chart(series, title, x_label, y_label))
