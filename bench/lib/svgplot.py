"""A line plot as a standalone SVG document: x linear, y linear or log10, a legend. Stdlib only.

Enough for memory.svg (median RSS against container count, one line per contender) and nothing
more: no layout engine, fixed margins, text sized for a 760 x 460 canvas.
"""
import math
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 760, 460
LEFT, RIGHT, TOP, BOTTOM = 78, 190, 48, 62
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
DASHES = ["", "6,3", "2,3", "8,3,2,3"]


def nice_ticks(lo, hi, count=6):
    """Round linear tick values covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    v = start
    while v <= hi + step * 0.5:
        ticks.append(round(v, 10))
        v += step
    return ticks


def snap125(v, up):
    """The nearest 1-2-5 value at or above (up) or at or below v (> 0)."""
    e = math.floor(math.log10(v))
    cands = [m * 10 ** k for k in (e - 1, e, e + 1) for m in (1, 2, 5)]
    return min(c for c in cands if c >= v / 1.0001) if up else max(c for c in cands if c <= v * 1.0001)


def log_ticks(lo, hi):
    """1-2-5 ticks per decade covering [lo, hi] (lo > 0)."""
    ticks = []
    for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            v = m * 10 ** e
            if lo / 1.0001 <= v <= hi * 1.0001:
                ticks.append(v)
    return ticks


def fmt(v):
    return ("%g" % v) if v >= 0.01 or v == 0 else "%.3g" % v


def marker(i, x, y, color, title):
    """Series i's point marker: circle, square, triangle, diamond, in turn."""
    tip = "<title>%s</title>" % escape(title)
    shape = i % 4
    if shape == 0:
        return '<circle cx="%.1f" cy="%.1f" r="4" fill="%s">%s</circle>' % (x, y, color, tip)
    if shape == 1:
        return '<rect x="%.1f" y="%.1f" width="7" height="7" fill="%s">%s</rect>' % (x - 3.5, y - 3.5, color, tip)
    if shape == 2:
        return '<path d="M%.1f,%.1f l4.5,8 h-9 z" fill="%s">%s</path>' % (x, y - 5, color, tip)
    return '<path d="M%.1f,%.1f l5,5 l-5,5 l-5,-5 z" fill="%s">%s</path>' % (x, y - 5, color, tip)


def plot(series, title, xlabel, ylabel, footnote="", log_y=None, xticks=None):
    """series: [(name, [(x, y), …])]. log_y None picks log when the values span more than 5×;
    xticks: the x values to mark (default: round values from 0 to the largest x)."""
    points = [p for _, pts in series for p in pts]
    w, h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
           'font-family="sans-serif" font-size="12">' % (WIDTH, HEIGHT, WIDTH, HEIGHT),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="26" font-size="15" font-weight="bold">%s</text>' % (LEFT, escape(title))]
    if not points:
        out.append('<text x="%d" y="%d">no successful measurement to plot</text>' % (LEFT, TOP + h // 2))
        out.append("</svg>")
        return "\n".join(out) + "\n"
    xs = [p[0] for p in points]
    ys = [p[1] for p in points if p[1] > 0]
    xt = sorted(set(xticks)) if xticks and len(set(xticks)) > 1 else nice_ticks(0, max(xs) or 1)
    x0, x1 = min(xt[0], min(xs)), max(xt[-1], max(xs))
    if log_y is None:
        log_y = bool(ys) and max(ys) / min(ys) > 5
    if log_y:
        lo, hi = snap125(min(ys), False), snap125(max(ys), True)
        yt = log_ticks(lo, hi)
        y0, y1 = math.log10(lo), math.log10(hi)

        def ty(v):
            return math.log10(max(v, lo))
    else:
        yt = nice_ticks(0, max(ys or [1]))
        y0, y1 = yt[0], yt[-1]

        def ty(v):
            return v

    def sx(x):
        return LEFT + (x - x0) / ((x1 - x0) or 1) * w

    def sy(y):
        return TOP + h - (ty(y) - y0) / ((y1 - y0) or 1) * h

    for v in xt:
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e4e4e4"/>' % (sx(v), TOP, sx(v), TOP + h))
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (sx(v), TOP + h + 18, fmt(v)))
    for v in yt:
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e4e4e4"/>' % (LEFT, sy(v), LEFT + w, sy(v)))
        out.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>' % (LEFT - 8, sy(v) + 4, fmt(v)))
    out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>' % (LEFT, TOP, w, h))
    out.append('<text x="%d" y="%d" text-anchor="middle">%s</text>' % (LEFT + w // 2, HEIGHT - 22, escape(xlabel)))
    out.append('<text transform="translate(18,%d) rotate(-90)" text-anchor="middle">%s%s</text>'
               % (TOP + h // 2, escape(ylabel), ", log scale" if log_y else ""))
    for i, (name, pts) in enumerate(series):
        # Colour, dash and marker all change with the series, so lines that lie on top of each
        # other (two agents at the same RSS) stay distinguishable.
        color, dash = COLORS[i % len(COLORS)], DASHES[i % len(DASHES)]
        pts = sorted(pts)
        path = " ".join("%s%.1f,%.1f" % ("M" if j == 0 else "L", sx(x), sy(y)) for j, (x, y) in enumerate(pts))
        out.append('<path d="%s" fill="none" stroke="%s" stroke-width="2"%s/>'
                   % (path, color, ' stroke-dasharray="%s"' % dash if dash else ""))
        for x, y in pts:
            out.append(marker(i, sx(x), sy(y), color, "%s, N=%s: %s" % (name, fmt(x), fmt(round(y, 2)))))
        ly = TOP + 10 + i * 20
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>'
                   % (LEFT + w + 16, ly, LEFT + w + 40, ly, color, ' stroke-dasharray="%s"' % dash if dash else ""))
        out.append(marker(i, LEFT + w + 28, ly, color, name))
        out.append('<text x="%d" y="%d">%s</text>' % (LEFT + w + 46, ly + 4, escape(name)))
    if footnote:
        for j, line in enumerate(footnote.split("\n")):
            out.append('<text x="%d" y="%d" font-size="10" fill="#555">%s</text>'
                       % (LEFT + w + 16, TOP + 24 + len(series) * 20 + j * 14, escape(line)))
    out.append("</svg>")
    return "\n".join(out) + "\n"
