"""worldmodels/CarRacingFast-v3: gymnasium's CarRacing-v3 with a faster renderer, same pixels.

Stock CarRacing spends ~75% of a step in `_render_road`, which rotates, scales and culls ~800
grass and road polygons one at a time in Python to draw the ~50-80 that are on screen. Here the
transform and the cull run on all polygons at once in numpy, and the score font is created once
instead of every frame. Physics, rewards and the drawing calls themselves are gymnasium's own.

Bit-exact frames need the transform to reproduce `pygame.math.Vector2.rotate_rad`: it reduces the
angle with fmod(angle, 2*pi), adds 2*pi when negative, special-cases multiples of pi/2 within the
vector's epsilon, and computes cos*x - sin*y, sin*x + cos*y in that order, with the C library's
sin and cos (math.sin/math.cos here, not numpy's vectorised ones). Road colours are read live at
each frame, since a tile's colour changes when the car first touches it.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pygame
from gymnasium.envs.box2d import car_racing as cr
from pygame import gfxdraw

from worldmodels.envs import raster

RASTER = True
"""Draw the road with the compiled rasterizer (`raster`); False: with gfxdraw, call by call, as
before it (the same pixels; bench/cmaes_generation.py measures both)."""

ENV_ID = "worldmodels/CarRacingFast-v3"
_TWO_PI = 2.0 * math.pi
_EPS = pygame.math.Vector2().epsilon
_DASHBOARD_ROWS = int(cr.WINDOW_H * 5 / 40)
"""The frame's bottom rows that `_render_indicators` paints black (h = H/40; the bar is 5h tall)."""


def rotate_rad(xy: np.ndarray, angle: float) -> np.ndarray:
    """Rotate points float64 [...,2] by `angle` exactly as pygame.math.Vector2.rotate_rad does."""
    angle = math.fmod(angle, _TWO_PI)
    if angle < 0:
        angle += _TWO_PI
    x, y = xy[..., 0], xy[..., 1]
    if math.fmod(angle + _EPS, math.pi / 2) < 2 * _EPS:
        quarter = int((angle + _EPS) / (math.pi / 2))
        if quarter in (0, 4):
            return xy.copy()
        if quarter == 1:
            return np.stack([-y, x], axis=-1)
        if quarter == 2:
            return np.stack([-x, -y], axis=-1)
        return np.stack([y, -x], axis=-1)
    s, c = math.sin(angle), math.cos(angle)
    return np.stack([c * x - s * y, s * x + c * y], axis=-1)


def to_screen(xy: np.ndarray, zoom: float, translation, angle: float) -> np.ndarray:
    """World points [...,2] -> screen coordinates, bit for bit the stock env's transform (rotate as
    Vector2.rotate_rad, then times zoom plus translation)."""
    pts = rotate_rad(xy, angle)
    return np.stack([pts[..., 0] * zoom + translation[0], pts[..., 1] * zoom + translation[1]], axis=-1)


def _grass_polygons() -> np.ndarray:
    """The 400 grass squares of `_render_road`, in its drawing order: float64 [400,4,2]."""
    g = cr.GRASS_DIM
    polys = [
        [(g * x + g, g * y + 0), (g * x + 0, g * y + 0), (g * x + 0, g * y + g), (g * x + g, g * y + g)]
        for x in range(-20, 20, 2)
        for y in range(-20, 20, 2)
    ]
    return np.asarray(polys, np.float64)


class _Polygons:
    """Quadrilaterals [P,4,2] in world units, with their centres [P,2] and the largest distance from
    a centre to its vertices (for the cull near the car)."""

    def __init__(self, xy: np.ndarray):
        self.xy = xy
        self.centre = xy.mean(axis=1)
        self.radius = float(np.sqrt(((xy - self.centre[:, None]) ** 2).sum(-1)).max())


_SURFACES: dict[str, pygame.Surface] = {}
_RGB_MASKS = (0xFF0000, 0xFF00, 0xFF, 0)


def _compiled_raster(surface: pygame.Surface) -> bool:
    """True if `raster` can draw on `surface`: 32-bit pixels laid out 0x00RRGGBB, rows contiguous
    (the canvas below is; any other surface takes gfxdraw's own calls)."""
    return (
        RASTER
        and surface.get_bytesize() == 4
        and surface.get_masks() == _RGB_MASKS
        and surface.get_pitch() == 4 * surface.get_width()
    )


def _surfaces() -> dict[str, pygame.Surface]:
    """The drawing surfaces, one set per process, shared by its envs (every frame redraws what it
    reads of them, and a worker stepping K envs then holds 6 MB of them, not 6 MB per env). `canvas`:
    the frame, drawn unflipped; `panel`: the dashboard, drawn alone (its rows above the dashboard stay
    black); `narrow`: the frame's rows shrunk to 96 wide and flipped, the dashboard's rows below."""
    if not _SURFACES:
        _SURFACES.update(
            canvas=pygame.Surface((cr.WINDOW_W, cr.WINDOW_H)),
            panel=pygame.Surface((cr.WINDOW_W, cr.WINDOW_H)),
            narrow=pygame.Surface((cr.STATE_W, cr.WINDOW_H)),
        )
    return _SURFACES


class CarRacingFast(cr.CarRacing):
    """CarRacing-v3, same constructor, physics, rewards and pixels; a vectorised road renderer."""

    _GRASS = _grass_polygons()
    _N_GRASS = len(_GRASS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._font = None
        self._scene_polys: _Polygons | None = None
        self._road_poly_ref = None

    def _scene(self) -> _Polygons:
        """The 400 grass squares, then the road's tiles, in the stock drawing order (world units).
        road_poly is rebuilt (a new list) on every reset; the vertices are cached per episode."""
        n = self._N_GRASS + len(self.road_poly)
        if self._road_poly_ref is not self.road_poly or len(self._scene_polys.xy) != n:
            self._road_poly_ref = self.road_poly
            road = np.asarray([poly for poly, _ in self.road_poly], np.float64).reshape(-1, 4, 2)
            self._scene_polys = _Polygons(np.concatenate([self._GRASS, road]))
        return self._scene_polys

    def _drawn(self, polys: _Polygons, zoom: float, translation, angle: float) -> tuple[np.ndarray, np.ndarray]:
        """Which of the polygons (world units) can change a pixel of the frame, in drawing
        order, and their screen coordinates [D,4,2].

        The stock env draws every polygon with a vertex inside a margin box of MAX_SHAPE_DIM (~380 px)
        around the screen: about half of them lie wholly off screen and draw nothing (SDL_gfx clips
        every line and span to the surface, and an anti-aliased edge strays at most a pixel from the
        polygon). Also skipped: polygons wholly in the bottom 100 rows of the frame (the first 100
        before the flip), which the dashboard then paints black, and which the frame is never read from.
        Only polygons near the car are transformed at all: the transform keeps distances (times zoom)
        and puts the car at (W/2, H/4), so a polygon whose centre is further from the car than the
        margin box's far corner, plus its own radius, cannot have a vertex in the box.
        """
        m = cr.MAX_SHAPE_DIM
        reach = math.hypot(cr.WINDOW_W / 2 + m, cr.WINDOW_H * 3 / 4 + m) / zoom + polys.radius + 1.0
        car = np.array(tuple(self.car.hull.position), np.float64)
        near = np.flatnonzero(((polys.centre - car) ** 2).sum(axis=1) <= reach * reach)
        screen = to_screen(polys.xy[near], zoom, translation, angle)
        sx, sy = screen[..., 0], screen[..., 1]
        inside = ((-m <= sx) & (sx <= cr.WINDOW_W + m) & (-m <= sy) & (sy <= cr.WINDOW_H + m)).any(axis=1)
        slack = 3  # pixels: an edge's anti-aliasing and the float -> int conversion of the vertices
        draws = (
            (sx.max(axis=1) >= -slack)
            & (sx.min(axis=1) <= cr.WINDOW_W + slack)
            & (sy.max(axis=1) >= _DASHBOARD_ROWS - slack)
            & (sy.min(axis=1) <= cr.WINDOW_H + slack)
        )
        keep = inside & draws
        return near[keep], screen[keep]

    @staticmethod
    def _covers_screen(poly: np.ndarray, zoom: float, translation, angle: float, margin: float = 4.0) -> bool:
        """True if the convex polygon [4,2] (world units), once on screen, contains the whole screen
        with `margin` pixels to spare (so anti-aliased edges stay off screen too). Plain floats: a
        few ulps of the rotation cannot move an edge by the margin."""
        c, s = math.cos(angle), math.sin(angle)
        tx, ty = translation
        pts = [((c * x - s * y) * zoom + tx, (s * x + c * y) * zoom + ty) for x, y in poly.tolist()]
        corners = [
            (-margin, -margin),
            (cr.WINDOW_W + margin, -margin),
            (cr.WINDOW_W + margin, cr.WINDOW_H + margin),
            (-margin, cr.WINDOW_H + margin),
        ]
        signs = set()
        for (ax, ay), (bx, by) in zip(pts, pts[1:] + pts[:1]):
            for px, py in corners:
                # Each screen corner must lie on the inner side of every edge (one sign of the cross product).
                cross = (bx - ax) * (py - ay) - (by - ay) * (px - ax)
                signs.add(cross > 0 if cross != 0 else None)
        return signs == {True} or signs == {False}

    def _raster(self, screen: np.ndarray, colors: list, background) -> None:
        """Fill self.surf with `background` (a colour, as Surface.fill takes it), then draw polygons
        (float screen coordinates [P,N,2]) in their colours with `raster`, as gfxdraw.aapolygon then
        gfxdraw.filled_polygon would, one after the other."""
        rgb = np.trunc(np.asarray(colors, np.float64).reshape(-1, 3)).astype(np.int64)
        packed = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
        fill = self.surf.map_rgb(background)  # the colour exactly as Surface.fill maps it
        pixels = pygame.surfarray.pixels2d(self.surf).T
        raster.draw_polygons(pixels, raster.to_vertices(screen.reshape(-1, 4, 2)), packed, fill)
        del pixels  # unlocks the surface

    def _render_road(self, zoom, translation, angle):
        b = cr.PLAYFIELD
        field = [(b, b), (b, -b), (-b, -b), (-b, b)]
        # If the field polygon covers every pixel (its edges off screen), a plain fill in its colour
        # draws the same pixels; otherwise the stock env draws it on a new (black) surface.
        covers = self._covers_screen(np.asarray(field, np.float64), zoom, translation, angle)
        drawn, screen = self._drawn(self._scene(), zoom, translation, angle)
        colors = [
            self.grass_color if i < self._N_GRASS else self.road_poly[i - self._N_GRASS][1] for i in drawn.tolist()
        ]
        if _compiled_raster(self.surf):
            # One compiled call fills and draws every polygon, pixel for pixel as the calls below.
            if not covers:
                corners = to_screen(np.asarray(field, np.float64), zoom, translation, angle)
                screen, colors = np.concatenate([corners[None], screen]), [self.bg_color, *colors]
            self._raster(screen, colors, self.bg_color if covers else (0, 0, 0))
            return
        if covers:
            self.surf.fill(self.bg_color)
        else:
            self.surf.fill((0, 0, 0))
            self._draw_colored_polygon(self.surf, field, self.bg_color, zoom, translation, angle, clip=False)
        for poly, color in zip(screen.tolist(), colors):
            color = [int(c) for c in color]
            poly = [tuple(p) for p in poly]
            gfxdraw.aapolygon(self.surf, poly, color)
            gfxdraw.filled_polygon(self.surf, poly, color)

    def _render(self, mode: str):
        # The stock _render, with the score font created once rather than every frame, one surface
        # reused, and for state_pixels (the observation) the flip of the whole frame avoided.
        if self._font is None:
            pygame.font.init()
            self._font = pygame.font.Font(pygame.font.get_default_font(), 42)
        if mode == "human" or "t" not in self.__dict__:
            return super()._render(mode)
        if self.clock is None:
            self.clock = pygame.time.Clock()
        self.surf = _surfaces()["canvas"]
        angle = -self.car.hull.angle
        zoom = 0.1 * cr.SCALE * max(1 - self.t, 0) + cr.ZOOM * cr.SCALE * min(self.t, 1)
        scroll_x = -(self.car.hull.position[0]) * zoom
        scroll_y = -(self.car.hull.position[1]) * zoom
        trans = pygame.math.Vector2((scroll_x, scroll_y)).rotate_rad(angle)
        trans = (cr.WINDOW_W / 2 + trans[0], cr.WINDOW_H / 4 + trans[1])
        self._render_road(zoom, trans, angle)
        self.car.draw(self.surf, zoom, trans, angle, mode not in ["state_pixels_list", "state_pixels"])
        if mode == "state_pixels":
            frame = self._state_pixels()
            if frame is not None:
                return frame
        self.surf = pygame.transform.flip(self.surf, False, True)
        self._draw_dashboard(self.surf)
        if mode == "rgb_array":
            return self._create_image_array(self.surf, (cr.VIDEO_W, cr.VIDEO_H))
        if mode == "state_pixels":
            return self._create_image_array(self.surf, (cr.STATE_W, cr.STATE_H))
        return self.isopen

    def _draw_dashboard(self, surface: pygame.Surface) -> None:
        """The stock dashboard (gauges and score) onto `surface`, a flipped frame."""
        self.surf = surface
        self._render_indicators(cr.WINDOW_W, cr.WINDOW_H)
        text = self._font.render(f"{self.reward:04.0f}", True, (255, 255, 255), (0, 0, 0))
        text_rect = text.get_rect()
        text_rect.center = (60, cr.WINDOW_H - cr.WINDOW_H * 2.5 / 40.0)
        surface.blit(text, text_rect)

    def _state_pixels(self) -> np.ndarray | None:
        """The 96x96 observation of the unflipped frame on self.surf, pixel for pixel the stock
        smoothscale(flip(frame + dashboard)), without flipping the 1000x800 frame.

        pygame's smoothscale shrinks each row first (X), then each column (Y). Rows do not mix in the
        X pass, so it commutes with the flip: shrink the frame's rows to 96 wide, flip that (96x800),
        put the dashboard's rows (drawn on a panel of their own, then shrunk alike) at the bottom, and
        let a second smoothscale do the Y pass. None (the caller takes the stock path) if a gauge
        reached above the dashboard into the picture (a car past ~200 km/h, wheels spinning wildly).
        """
        W, H, d = cr.WINDOW_W, cr.WINDOW_H, _DASHBOARD_ROWS
        frame, panel, narrow = self.surf, _surfaces()["panel"], _surfaces()["narrow"]
        self._draw_dashboard(panel)
        self.surf = frame
        pixels = pygame.surfarray.pixels2d(panel)
        overflow = bool(pixels[:, H - d - 1].any())
        del pixels  # unlocks the surface
        if overflow:
            panel.fill((0, 0, 0), (0, 0, W, H - d))
            return None
        picture = pygame.transform.smoothscale(frame.subsurface((0, d, W, H - d)), (cr.STATE_W, H - d))
        narrow.blit(pygame.transform.flip(picture, False, True), (0, 0))
        dashboard = pygame.transform.smoothscale(panel.subsurface((0, H - d, W, d)), (cr.STATE_W, d))
        narrow.blit(dashboard, (0, H - d))
        return self._create_image_array(narrow, (cr.STATE_W, cr.STATE_H))


if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point=CarRacingFast, max_episode_steps=1000, reward_threshold=900)
