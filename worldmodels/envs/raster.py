"""A compiled rasterizer that draws CarRacing's road and grass exactly as pygame's gfxdraw does.

The stock env draws each of its ~60-130 visible polygons with two calls, `gfxdraw.aapolygon` (an
anti-aliased outline) then `gfxdraw.filled_polygon`, onto a 1000x800 32-bit surface. Those calls are
most of the fast renderer's step (`docs/speed.md`): each one converts its points from Python,
walks its edges pixel by pixel through several layers of functions, and clips every pixel. Here all
polygons of a frame are drawn in one compiled call (numba), written into the surface's pixels.

The pixels are those of pygame-ce's bundled SDL_gfx (2.0.x, as pygame-ce 2.5 ships it), written
from its algorithms:
- vertices are truncated to integers (Python's int(), then 16 bits);
- an outline is one anti-aliased line per edge, without its end point: Cohen-Sutherland clipping
  against the surface with a single-precision slope; horizontal and vertical edges are plain spans;
  otherwise the first clipped point is plotted in full and Wu's algorithm (a 32-bit fixed-point
  error accumulator, the top 8 bits as weight) blends a pair of pixels per step in between;
- a blend with weight w uses alpha (255 * w) >> 8 and moves each channel by
  floor((source - dest) * alpha / 256);
- a fill is a scanline fill: per row, the crossings of the edges that span it (a row at the
  polygon's last y counts the edges ending there) in 16.16 fixed point, sorted, paired, each pair
  rounded inwards to a span.
`tests/test_envs.py` checks whole episodes pixel for pixel against the stock env.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_LEFT, _RIGHT, _BOTTOM, _TOP = 1, 2, 4, 8


@njit(cache=True, inline="always")
def _code(x, y, right, bottom):
    c = 0
    if x < 0:
        c |= _LEFT
    elif x > right:
        c |= _RIGHT
    if y < 0:
        c |= _TOP
    elif y > bottom:
        c |= _BOTTOM
    return c


@njit(cache=True)
def _clip_line(x1, y1, x2, y2, right, bottom):
    """Cohen-Sutherland against [0, right] x [0, bottom]; the slope in single precision. Returns
    (draw, x1, y1, x2, y2); the two points may come back swapped, as SDL_gfx leaves them."""
    while True:
        c1 = _code(x1, y1, right, bottom)
        c2 = _code(x2, y2, right, bottom)
        if (c1 | c2) == 0:
            return True, x1, y1, x2, y2
        if (c1 & c2) != 0:
            return False, x1, y1, x2, y2
        if c1 == 0:
            x1, x2 = x2, x1
            y1, y2 = y2, y1
            c1, c2 = c2, c1
        if x2 != x1:
            m = np.float32(y2 - y1) / np.float32(x2 - x1)
        else:
            m = np.float32(1.0)
        if c1 & _LEFT:
            y1 += int(np.float32(0 - x1) * m)
            x1 = 0
        elif c1 & _RIGHT:
            y1 += int(np.float32(right - x1) * m)
            x1 = right
        elif c1 & _BOTTOM:
            if x2 != x1:
                x1 += int(np.float32(bottom - y1) / m)
            y1 = bottom
        elif c1 & _TOP:
            if x2 != x1:
                x1 += int(np.float32(0 - y1) / m)
            y1 = 0


@njit(cache=True, inline="always")
def _put(px, x, y, color):
    if 0 <= x < px.shape[1] and 0 <= y < px.shape[0]:
        px[y, x] = color


@njit(cache=True, inline="always")
def _blend(px, x, y, color, weight):
    if 0 <= x < px.shape[1] and 0 <= y < px.shape[0]:
        alpha = (255 * weight) >> 8
        d = np.int64(px[y, x])
        out = 0
        for shift in (16, 8, 0):
            dc = (d >> shift) & 255
            sc = (color >> shift) & 255
            out |= ((dc + (((sc - dc) * alpha) >> 8)) & 255) << shift
        px[y, x] = out


@njit(cache=True)
def _hline(px, x1, x2, y, color):
    if x1 > x2:
        x1, x2 = x2, x1
    right = px.shape[1] - 1
    if x2 < 0 or x1 > right or y < 0 or y > px.shape[0] - 1:
        return
    if x1 < 0:
        x1 = 0
    if x2 > right:
        x2 = right
    px[y, x1 : x2 + 1] = color


@njit(cache=True)
def _vline(px, x, y1, y2, color):
    if y1 > y2:
        y1, y2 = y2, y1
    bottom = px.shape[0] - 1
    if x < 0 or x > px.shape[1] - 1 or y2 < 0 or y1 > bottom:
        return
    if y1 < 0:
        y1 = 0
    if y2 > bottom:
        y2 = bottom
    px[y1 : y2 + 1, x] = color


@njit(cache=True)
def _aa_edge(px, x1, y1, x2, y2, color):
    """One outline edge, without its end point (SDL_gfx's anti-aliased line, draw_endpoint 0)."""
    draw, x1, y1, x2, y2 = _clip_line(x1, y1, x2, y2, px.shape[1] - 1, px.shape[0] - 1)
    if not draw:
        return
    xx0, yy0, xx1, yy1 = x1, y1, x2, y2
    if yy0 > yy1:
        xx0, xx1 = xx1, xx0
        yy0, yy1 = yy1, yy0
    dx = xx1 - xx0
    dy = yy1 - yy0
    if dx == 0:
        if dy > 0:
            _vline(px, x1, yy0, yy0 + dy, color)
        else:
            _put(px, x1, y1, color)
        return
    if dy == 0:
        _hline(px, xx0, xx0 + dx, y1, color)
        return
    xdir = 1
    if dx < 0:
        xdir = -1
        dx = -dx
    _put(px, x1, y1, color)
    erracc = 0  # a 32-bit unsigned accumulator, kept in int64 and wrapped by hand
    if dy > dx:
        erradj = (((dx << 16) // dy) << 16) & 0xFFFFFFFF
        x0pxdir = xx0 + xdir
        for _ in range(dy - 1):
            before = erracc
            erracc = (erracc + erradj) & 0xFFFFFFFF
            if erracc <= before:
                xx0 = x0pxdir
                x0pxdir += xdir
            yy0 += 1
            wgt = (erracc >> 24) & 255
            _blend(px, xx0, yy0, color, 255 - wgt)
            _blend(px, x0pxdir, yy0, color, wgt)
    else:
        erradj = (((dy << 16) // dx) << 16) & 0xFFFFFFFF
        y0p1 = yy0 + 1
        for _ in range(dx - 1):
            before = erracc
            erracc = (erracc + erradj) & 0xFFFFFFFF
            if erracc <= before:
                yy0 = y0p1
                y0p1 += 1
            xx0 += xdir
            wgt = (erracc >> 24) & 255
            _blend(px, xx0, yy0, color, 255 - wgt)
            _blend(px, xx0, y0p1, color, wgt)


@njit(cache=True)
def _fill(px, vx, vy, color, crossings):
    n = vx.shape[0]
    miny = vy.min()
    maxy = vy.max()
    # Rows off the surface draw nothing (each span is clipped away); skip them.
    for y in range(max(miny, 0), min(maxy, px.shape[0] - 1) + 1):
        k = 0
        for i in range(n):
            j = n - 1 if i == 0 else i - 1
            ya, yb = vy[j], vy[i]
            if ya < yb:
                xa, xb = vx[j], vx[i]
            elif ya > yb:
                ya, yb = vy[i], vy[j]
                xa, xb = vx[i], vx[j]
            else:
                continue
            if (ya <= y < yb) or (y == maxy and ya < y <= yb):
                crossings[k] = ((65536 * (y - ya)) // (yb - ya)) * (xb - xa) + 65536 * xa
                k += 1
        for i in range(1, k):  # insertion sort: a row crosses a handful of edges
            v = crossings[i]
            j = i - 1
            while j >= 0 and crossings[j] > v:
                crossings[j + 1] = crossings[j]
                j -= 1
            crossings[j + 1] = v
        for i in range(0, k - 1, 2):
            a = crossings[i] + 1
            a = (a >> 16) + ((a & 32768) >> 15)
            b = crossings[i + 1] - 1
            b = (b >> 16) + ((b & 32768) >> 15)
            _hline(px, a, b, y, color)


@njit(cache=True)
def draw_polygons(px, polys, colors, background=-1):
    """Draw each polygon (outline, then fill) in order onto px, the surface's pixels [H, W] as
    uint32 0x00RRGGBB. polys: int64 [P, N, 2] truncated screen coordinates; colors: int64 [P].
    background >= 0: first set every pixel to it (what Surface.fill does; done here, the frame
    stays in the cache for the polygons, which made fill + draw 2-3x faster than a separate fill)."""
    if background >= 0:
        px[:, :] = background
    crossings = np.empty(polys.shape[1], np.int64)
    for p in range(polys.shape[0]):
        vx = polys[p, :, 0]
        vy = polys[p, :, 1]
        c = colors[p]
        n = vx.shape[0]
        for i in range(1, n):
            _aa_edge(px, vx[i - 1], vy[i - 1], vx[i], vy[i], c)
        _aa_edge(px, vx[n - 1], vy[n - 1], vx[0], vy[0], c)
        _fill(px, vx, vy, c, crossings)


def to_vertices(screen: np.ndarray) -> np.ndarray:
    """Float screen coordinates -> the integers gfxdraw draws (int() truncation, then 16 bits)."""
    return np.trunc(screen).astype(np.int64).astype(np.int16).astype(np.int64)
