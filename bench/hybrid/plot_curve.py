"""Draws `edgelm calibrate --curve` CSVs as an SVG: escalation rate (solid), routing accuracy
(dashed) and accuracy of the answers kept local (dotted) against the confidence threshold, with
the threshold calibrate chooses (highest routing accuracy, ties to the lower escalation rate)
marked for each curve. Standard library only (Debian's python3 has no matplotlib).

    plot_curve.py OUT.svg LABEL=curve.csv [LABEL=curve.csv ...] [--metric NAME] [--title TEXT]

Elements carry what they show, for checks: each curve is a <polyline class="escalation_rate|
routing_accuracy|local_accuracy" data-series=LABEL> with one point per CSV row, and the chosen
threshold a <line class="chosen" data-series=LABEL data-threshold=VALUE>.
"""
import argparse
import csv
import math
from xml.sax.saxutils import escape, quoteattr

WIDTH, PLOT_HEIGHT = 760, 300
LEFT, RIGHT, TOP = 64, 24, 48
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
COLUMNS = [  # column, dash pattern, width, legend
    ("escalation_rate", "", 2.0, "escalation rate"),
    ("routing_accuracy", "6 4", 2.0, "routing accuracy"),
    ("local_accuracy", "2 3", 1.2, "accuracy of answers kept local"),
]


def read_curve(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    if not rows:
        raise SystemExit(f"plot_curve: {path}: no rows")
    missing = ({c for c, *_ in COLUMNS} | {"threshold"}) - rows[0].keys()
    if missing:
        raise SystemExit(f"plot_curve: {path}: missing columns {sorted(missing)}")
    return rows


def chosen(rows):
    """The row calibrate_threshold picks: rows rise in threshold, so the first best wins ties."""
    best = rows[0]
    for row in rows[1:]:
        if row["routing_accuracy"] > best["routing_accuracy"]:
            best = row
    return best


def nice_ticks(lo, hi, count=6):
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step) * step
    ticks = []
    value = first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    return ticks


def plot(series, metric, title):
    # calibrate's first threshold lies one unit below every value (escalate nothing): drawn at
    # the left edge, so the axis spans the values themselves.
    values = [r["threshold"] for _, rows in series for r in (rows[1:] or rows)]
    x_lo, x_hi = min(values), max(values)
    if x_hi - x_lo < 1e-9:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    x_lo -= 0.03 * (x_hi - x_lo)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, PLOT_HEIGHT
    legend_y = TOP + plot_h + 58
    height = legend_y + 16 * len(series) + 16

    def x_of(t):
        return LEFT + (max(t, x_lo) - x_lo) / (x_hi - x_lo) * plot_w

    def y_of(v):
        return TOP + (1 - v) * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
           f'<text x="{WIDTH / 2}" y="24" text-anchor="middle" font-size="15">{escape(title)}</text>']
    for v in [i / 5 for i in range(6)]:
        y = y_of(v)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{v:.1f}</text>')
    for t in nice_ticks(x_lo, x_hi):
        x = x_of(t)
        out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + plot_h}" stroke="#eee"/>')
        out.append(f'<text x="{x:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{t:g}</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" '
               f'stroke="#444"/>')
    out.append(f'<text x="{LEFT + plot_w / 2}" y="{TOP + plot_h + 34}" text-anchor="middle">'
               f'confidence threshold ({escape(metric)}; below it a request escalates)</text>')
    out.append(f'<text transform="translate(16 {TOP + plot_h / 2}) rotate(-90)" '
               f'text-anchor="middle">share of requests</text>')

    for i, (label, rows) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        for column, dash, width, _ in COLUMNS:
            points = " ".join(f"{x_of(r['threshold']):.2f},{y_of(r[column]):.2f}" for r in rows)
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            out.append(f'<polyline class="{column}" data-series={quoteattr(label)} fill="none" '
                       f'stroke="{color}" stroke-width="{width}"{dash_attr} points="{points}"/>')
        best = chosen(rows)
        x = x_of(best["threshold"])
        out.append(f'<line class="chosen" data-series={quoteattr(label)} '
                   f'data-threshold="{best["threshold"]!r}" x1="{x:.2f}" y1="{TOP}" x2="{x:.2f}" '
                   f'y2="{TOP + plot_h}" stroke="{color}" stroke-width="1" stroke-dasharray="1 2"/>')
        note = (f'{label} ({len(rows)} thresholds): chosen {best["threshold"]:.3f}, escalation '
                f'{100 * best["escalation_rate"]:.0f} %, routing accuracy '
                f'{100 * best["routing_accuracy"]:.0f} %')
        y = legend_y + 16 * i
        out.append(f'<rect x="{LEFT}" y="{y - 9}" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{LEFT + 16}" y="{y}">{escape(note)}</text>')
    x, y = LEFT, legend_y + 16 * len(series)
    for _, dash, width, legend in COLUMNS:
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<line x1="{x}" y1="{y - 4}" x2="{x + 28}" y2="{y - 4}" stroke="#333" '
                   f'stroke-width="{width}"{dash_attr}/>')
        out.append(f'<text x="{x + 34}" y="{y}">{legend}</text>')
        x += 34 + 7 * len(legend) + 24
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("curves", nargs="+", help="LABEL=curve.csv")
    parser.add_argument("--metric", default="mean_logprob")
    parser.add_argument("--title", default="Hybrid router: escalation vs confidence threshold")
    args = parser.parse_args()
    series = []
    for spec in args.curves:
        label, sep, path = spec.partition("=")
        if not sep:
            raise SystemExit(f"plot_curve: expected LABEL=curve.csv, got '{spec}'")
        series.append((label, read_curve(path)))
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(plot(series, args.metric, args.title))


if __name__ == "__main__":
    main()
