"""Hand-made SVG charts for the quarterly report (no plotting dependency): stacked bars by decision.

Pure string building; every label is escaped.
"""

from __future__ import annotations

from html import escape

from gateway.audit.report import Count

COLORS = {"allow": "#2e7d32", "redact": "#e0a100", "deny": "#c62828"}
LABELS = {"allow": "allowed", "redact": "redacted", "deny": "denied"}
FONT = "font-family='Helvetica, Arial, sans-serif'"


def legend(x: int, y: int) -> str:
    parts = []
    for decision, color in COLORS.items():
        parts.append(
            f"<rect x='{x}' y='{y - 9}' width='10' height='10' rx='2' fill='{color}'/>"
            f"<text x='{x + 14}' y='{y}' font-size='11' fill='#333' {FONT}>{LABELS[decision]}</text>"
        )
        x += 80
    return "".join(parts)


def horizontal_bars(counts: tuple[Count, ...], *, width: int = 660, label_width: int = 230, limit: int = 14) -> str:
    """One stacked horizontal bar per key (allowed / redacted / denied), the total at its end."""
    shown = counts[:limit]
    if not shown:
        return "<p class='empty'>No requests.</p>"
    row, top = 22, 26
    height = top + row * len(shown) + 8
    scale = max(c.total for c in shown) or 1
    bar_width = width - label_width - 50
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' viewBox='0 0 {width} {height}' "
        f"role='img'>",
        legend(label_width, 12),
    ]
    for i, count in enumerate(shown):
        y = top + i * row
        room = int((label_width - 12) / 6.6)  # about 6.6 px a character at 12 px
        label = count.key if len(count.key) <= room else count.key[: room - 1] + "…"
        parts.append(
            f"<text x='{label_width - 8}' y='{y + 14}' font-size='12' text-anchor='end' fill='#222' {FONT}>"
            f"<title>{escape(count.key)}</title>{escape(label)}</text>"
        )
        x = float(label_width)
        for decision in ("allow", "redact", "deny"):
            value = getattr(count, decision)
            if value:
                w = max(1.0, bar_width * value / scale)
                parts.append(
                    f"<rect x='{x:.1f}' y='{y + 3}' width='{w:.1f}' height='15' fill='{COLORS[decision]}'>"
                    f"<title>{LABELS[decision]}: {value}</title></rect>"
                )
                x += w
        parts.append(f"<text x='{x + 6:.1f}' y='{y + 15}' font-size='11' fill='#444' {FONT}>{count.total}</text>")
    if len(counts) > limit:
        parts.append(
            f"<text x='{label_width}' y='{height - 1}' font-size='10' fill='#777' {FONT}>"
            f"and {len(counts) - limit} more (see the tables)</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def weekly_columns(weeks: tuple[Count, ...], *, width: int = 660, height: int = 190) -> str:
    """Requests per week as stacked columns, with the week's Monday under every other column."""
    if not weeks:
        return "<p class='empty'>No requests.</p>"
    left, bottom, top = 40, 34, 24
    plot_h = height - bottom - top
    scale = max(c.total for c in weeks) or 1
    step = (width - left - 10) / len(weeks)
    bar = max(4.0, step * 0.7)
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' viewBox='0 0 {width} {height}' "
        "role='img'>",
        legend(left, 12),
        f"<line x1='{left}' y1='{top + plot_h}' x2='{width - 10}' y2='{top + plot_h}' stroke='#999'/>",
        f"<text x='{left - 6}' y='{top + 8}' font-size='10' text-anchor='end' fill='#666' {FONT}>{scale}</text>",
        f"<text x='{left - 6}' y='{top + plot_h}' font-size='10' text-anchor='end' fill='#666' {FONT}>0</text>",
    ]
    for i, week in enumerate(weeks):
        x = left + i * step + (step - bar) / 2
        y = float(top + plot_h)
        for decision in ("allow", "redact", "deny"):
            value = getattr(week, decision)
            if value:
                h = plot_h * value / scale
                y -= h
                parts.append(
                    f"<rect x='{x:.1f}' y='{y:.1f}' width='{bar:.1f}' height='{h:.1f}' fill='{COLORS[decision]}'>"
                    f"<title>week of {escape(week.key)}, {LABELS[decision]}: {value}</title></rect>"
                )
        if i % 2 == 0 or len(weeks) <= 7:
            parts.append(
                f"<text x='{x + bar / 2:.1f}' y='{top + plot_h + 14}' font-size='10' text-anchor='middle' "
                f"fill='#555' {FONT}>{escape(week.key[5:])}</text>"
            )
    parts.append(
        f"<text x='{left}' y='{height - 4}' font-size='10' fill='#777' {FONT}>week starting (month-day), UTC</text>"
    )
    parts.append("</svg>")
    return "".join(parts)
