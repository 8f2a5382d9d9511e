#!/usr/bin/env python3
"""Charts and tables of a run's world prices, for docs/history.md.

Reads a run's markets.csv (the world clearing price of each market, per tick) and writes a plain
SVG line chart of the refined and ore price of one commodity, with the shock ticks marked; with
--table it also prints a Markdown table of both prices sampled every N ticks, each with an index
against its mean over a base window (the ticks before the shock).

    python3 docs/history/plot.py out/cobalt-2016/markets.csv docs/history/cobalt-2016.svg \
        --title "Cobalt 2016-2019" --mark "36:demand shock" --base 24:35 --table 4 --start 2016-01-04

Standard library only; the same input gives the same bytes out.
"""

import argparse
import csv
import datetime
import sys
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 760, 380
LEFT, RIGHT, TOP, BOTTOM = 72, 24, 48, 48
COLOURS = {"refined": "#1f4e9c", "ore": "#d2691e"}


def read_prices(path, commodity):
    """{stage: [price in US$/kg by tick]} for `commodity` (the only one if None)."""
    rows = list(csv.DictReader(open(path, newline="")))
    commodities = sorted({r["commodity"] for r in rows})
    if commodity is None:
        if len(commodities) != 1:
            sys.exit(f"{path} has several commodities ({', '.join(commodities)}): pass --commodity")
        commodity = commodities[0]
    prices = {}
    for r in rows:
        if r["commodity"] == commodity:
            prices.setdefault(r["stage"], {})[int(r["tick"])] = int(r["price_cents_per_kg"]) / 100.0
    if not prices:
        sys.exit(f"{path} has no rows for commodity {commodity!r}")
    return commodity, {s: [p[t] for t in sorted(p)] for s, p in prices.items()}


def parse_marks(marks):
    out = []
    for m in marks:
        tick, _, label = m.partition(":")
        out.append((int(tick), label))
    return out


def nice_step(span, target=6):
    """A round step (1, 2 or 5 x 10^k) giving about `target` gridlines over `span`."""
    raw = span / target
    k = 1.0
    while k * 10 <= raw:
        k *= 10
    while k > raw:
        k /= 10
    for m in (1, 2, 5, 10):
        if k * m >= raw:
            return k * m
    return k * 10


def fmt(v, step):
    """`v` with as many decimals as the gridline step needs."""
    decimals = 0 if step >= 1 else 1 if step >= 0.1 else 2
    return f"{v:.{decimals}f}"


def svg_chart(title, prices, marks, ticks):
    top = max(max(v) for v in prices.values()) * 1.08
    step = nice_step(top)
    top = step * (int(top / step) + 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    x = lambda t: LEFT + plot_w * t / max(ticks - 1, 1)
    y = lambda p: TOP + plot_h * (1 - p / top)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{LEFT}" y="22" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    v = 0.0
    while v <= top + 1e-9:
        out.append(f'<line x1="{LEFT}" y1="{y(v):.1f}" x2="{WIDTH - RIGHT}" y2="{y(v):.1f}" stroke="#e4e4e4"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{fmt(v, step)}</text>')
        v += step
    tstep = int(nice_step(ticks, 8)) or 1
    for t in range(0, ticks, tstep):
        out.append(f'<line x1="{x(t):.1f}" y1="{TOP + plot_h}" x2="{x(t):.1f}" y2="{TOP + plot_h + 4}" stroke="#555"/>')
        out.append(f'<text x="{x(t):.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{t}</text>')
    out.append(f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="#555"/>')
    out.append(f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#555"/>')
    out.append(f'<text x="{LEFT + plot_w / 2:.0f}" y="{HEIGHT - 10}" text-anchor="middle">tick (weeks)</text>')
    out.append(
        f'<text x="18" y="{TOP + plot_h / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 18 {TOP + plot_h / 2:.0f})">world price, US$/kg</text>'
    )
    for i, (t, label) in enumerate(marks):
        out.append(
            f'<line x1="{x(t):.1f}" y1="{TOP}" x2="{x(t):.1f}" y2="{TOP + plot_h}" '
            f'stroke="#b22222" stroke-dasharray="4 3"/>'
        )
        if label:
            # Labels right of their line, or left of it near the right edge; staggered in rows.
            right = x(t) > WIDTH - RIGHT - 120
            lx, anchor = (x(t) - 3, "end") if right else (x(t) + 3, "start")
            out.append(
                f'<text x="{lx:.1f}" y="{TOP + 12 + 12 * (i % 3)}" fill="#b22222" '
                f'text-anchor="{anchor}">{escape(label)}</text>'
            )
    for stage in ("refined", "ore"):
        if stage not in prices:
            continue
        points = " ".join(f"{x(t):.1f},{y(p):.1f}" for t, p in enumerate(prices[stage]))
        out.append(f'<polyline fill="none" stroke="{COLOURS[stage]}" stroke-width="1.6" points="{points}"/>')
    # The legend, in the title row at the right.
    for i, stage in enumerate(s for s in ("refined", "ore") if s in prices):
        lx, ly = WIDTH - RIGHT - 150 + 80 * i, 22
        out.append(f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 22}" y2="{ly - 4}" stroke="{COLOURS[stage]}" stroke-width="2"/>')
        out.append(f'<text x="{lx + 28}" y="{ly}">{stage}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def table(prices, marks, every, base, start):
    lo, hi = base
    means = {s: sum(v[lo : hi + 1]) / (hi + 1 - lo) for s, v in prices.items()}
    ticks = len(prices["refined"])
    peaks = [(max(range(ticks), key=lambda t: prices[s][t]), f"{s} peak") for s in ("refined", "ore")]
    rows = sorted(set(range(0, ticks, every)) | {m for m, _ in marks + peaks if m < ticks} | {ticks - 1})
    head = "| tick |" + (" week of |" if start else "") + " refined US$/kg | index | ore US$/kg | index | note |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for t in rows:
        notes = [label for m, label in marks + peaks if m == t]
        date = f" {start + datetime.timedelta(days=7 * t):%d %b %Y} |" if start else ""
        r, o = prices["refined"][t], prices["ore"][t]
        lines.append(
            f"| {t} |{date} {r:.2f} | {r / means['refined']:.2f} | {o:.2f} | {o / means['ore']:.2f} | {'; '.join(notes)} |"
        )
    lines.append("")
    lines.append(
        f"Index: the price over its mean for ticks {lo}-{hi} "
        f"(refined {means['refined']:.2f}, ore {means['ore']:.2f} US$/kg)."
    )
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("markets", help="a run's markets.csv")
    ap.add_argument("svg", help="the chart to write")
    ap.add_argument("--commodity", help="commodity id (default: the only one in the file)")
    ap.add_argument("--title", default="")
    ap.add_argument("--mark", action="append", default=[], metavar="TICK[:LABEL]", help="a shock tick to mark")
    ap.add_argument("--table", type=int, metavar="N", help="also print a Markdown table, every N ticks")
    ap.add_argument("--base", default="0:0", metavar="FROM:TO", help="ticks (inclusive) the index is relative to")
    ap.add_argument("--start", help="date of tick 0 (YYYY-MM-DD, weekly ticks) for the table")
    a = ap.parse_args()
    commodity, prices = read_prices(a.markets, a.commodity)
    marks = parse_marks(a.mark)
    ticks = max(len(v) for v in prices.values())
    with open(a.svg, "w") as f:
        f.write(svg_chart(a.title or commodity, prices, marks, ticks))
    if a.table:
        lo, _, hi = a.base.partition(":")
        start = datetime.date.fromisoformat(a.start) if a.start else None
        sys.stdout.write(table(prices, marks, a.table, (int(lo), int(hi)), start))


if __name__ == "__main__":
    main()
