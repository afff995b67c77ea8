"""Pictures of the demo store's 64 dishes, drawn here with Pillow (no asset from anywhere, nothing to license):
steamers of dumplings, bowls of noodles and soup, plates from the wok, glasses of tea and beer, each seen the way a
menu photo shows it. Written as files named by dish key, ready for `tablebox photo import`:

    python -m appliance.demo.photos /tmp/demo-photos && tablebox photo import /tmp/demo-photos

The same picture every time (each dish's random details are seeded by its key). Small: 480 px a side, a few KB of
JPEG each, so a demo with photos still loads quickly on a phone."""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

from appliance.demo import demo_data

SIDE = 480  # px, the file's size
S = SIDE * 2  # drawn at twice the size and shrunk: smooth edges
QUALITY = 72

Colour = tuple[int, int, int]
Point = tuple[float, float]


def _hex(value: str) -> Colour:
    return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)


def _shade(colour: Colour, factor: float) -> Colour:
    r, g, b = colour
    if factor < 1:
        return int(r * factor), int(g * factor), int(b * factor)
    return tuple(int(c + (255 - c) * (factor - 1)) for c in colour)  # type: ignore[return-value]


def _jitter(rng: random.Random, colour: Colour, amount: int = 14) -> Colour:
    return tuple(max(0, min(255, c + rng.randint(-amount, amount))) for c in colour)  # type: ignore[return-value]


class Scene:
    """One picture: a table top (or a wall and a counter for drinks) and what stands on it."""

    def __init__(self, key: str, background: str = "#b98a5e") -> None:
        self.rng = random.Random(key)
        self.image = Image.new("RGB", (S, S), _hex(background))
        self.draw = ImageDraw.Draw(self.image)
        base = _hex(background)
        for y in range(0, S, 4):  # light from the top left
            self.draw.line([(0, y), (S, y)], fill=_shade(base, 1.08 - 0.2 * y / S), width=4)
        for _ in range(7):  # the wood's planks and grain
            y = self.rng.randint(0, S)
            self.draw.line([(0, y), (S, y + self.rng.randint(-40, 40))], fill=_shade(base, 0.86), width=3)

    def shadow(self, box: Sequence[float], offset: float = 22, blur: int = 18) -> None:
        layer = Image.new("L", (S, S), 0)
        x0, y0, x1, y1 = box
        ImageDraw.Draw(layer).ellipse((x0 + offset, y0 + offset * 1.3, x1 + offset, y1 + offset * 1.3), fill=120)
        layer = layer.filter(ImageFilter.GaussianBlur(blur))
        self.image.paste((40, 25, 15), (0, 0), layer)

    def circle(self, c: Point, r: float, fill: Colour | None, outline: Colour | None = None, width: int = 0) -> None:
        self.draw.ellipse((c[0] - r, c[1] - r, c[0] + r, c[1] + r), fill=fill, outline=outline, width=width)

    def points(self, c: Point, r: float, n: int) -> list[Point]:
        """n spots spread over a disc (a sunflower's spiral, shaken a little)."""
        out = []
        for i in range(n):
            rad = r * math.sqrt((i + 0.5) / n)
            angle = i * 2.39996 + self.rng.uniform(-0.3, 0.3)
            out.append((c[0] + rad * math.cos(angle), c[1] + rad * math.sin(angle)))
        return out

    def save(self, path: Path) -> None:
        self.image.resize((SIDE, SIDE), Image.Resampling.LANCZOS).save(
            path, "JPEG", quality=QUALITY, optimize=True, progressive=True
        )


CENTRE: Point = (S / 2, S / 2)


# -- vessels (seen from above) ---------------------------------------------------------------------------------------
def plate(sc: Scene, colour: str = "#f7f4ee", r: float = 0.43 * S) -> float:
    """A plate; returns the radius food may cover."""
    sc.shadow((S / 2 - r, S / 2 - r, S / 2 + r, S / 2 + r))
    sc.circle(CENTRE, r, _hex(colour), _shade(_hex(colour), 0.85), 4)
    sc.circle(CENTRE, r * 0.74, _shade(_hex(colour), 0.97), _shade(_hex(colour), 0.9), 3)
    return r * 0.68


def bowl(sc: Scene, inside: str, rim: str = "#f4f1ea", r: float = 0.41 * S, pattern: str | None = "#3b5f9a") -> float:
    """A bowl filled with `inside` (broth, sauce); returns the radius of its surface."""
    sc.shadow((S / 2 - r, S / 2 - r, S / 2 + r, S / 2 + r))
    sc.circle(CENTRE, r, _hex(rim), _shade(_hex(rim), 0.8), 4)
    if pattern:
        sc.circle(CENTRE, r * 0.95, _hex(rim), _hex(pattern), 6)
    surface = r * 0.84
    sc.circle(CENTRE, surface, _hex(inside))
    sc.circle((S / 2 - surface * 0.25, S / 2 - surface * 0.3), surface * 0.35, _shade(_hex(inside), 1.1))
    sc.circle(CENTRE, surface, None, _shade(_hex(inside), 0.8), 6)
    return surface * 0.92


def steamer(sc: Scene) -> float:
    r = 0.44 * S
    sc.shadow((S / 2 - r, S / 2 - r, S / 2 + r, S / 2 + r))
    bamboo = _hex("#c99a5b")
    sc.circle(CENTRE, r, bamboo, _shade(bamboo, 0.7), 5)
    for k in (0.97, 0.92):
        sc.circle(CENTRE, r * k, None, _shade(bamboo, 0.78), 4)
    paper = _hex("#efe6cf")
    sc.circle(CENTRE, r * 0.86, paper)
    for p in sc.points(CENTRE, r * 0.8, 40):
        sc.circle(p, 5, _shade(paper, 0.9))
    return r * 0.62


# -- food ------------------------------------------------------------------------------------------------------------
def pieces(sc: Scene, r: float, colour: str, n: int, size: float, shape: str = "blob", spread: float = 1.0) -> None:
    """n bits of something (cubes, slices, sticks, round bits), each with its own shade and a darker side."""
    base = _hex(colour)
    for x, y in sc.points(CENTRE, r * spread, n) if n > 1 else [CENTRE]:
        fill = _jitter(sc.rng, base)
        s = size * sc.rng.uniform(0.75, 1.2)
        a = sc.rng.uniform(0, math.pi)
        if shape == "cube":
            box = [(x - s, y - s), (x + s, y - s), (x + s, y + s), (x - s, y + s)]
            sc.draw.polygon(
                _turn([(px + s * 0.25, py + s * 0.25) for px, py in box], (x, y), a * 0.3), fill=_shade(fill, 0.7)
            )
            sc.draw.polygon(_turn(box, (x, y), a * 0.3), fill=fill)
            sc.draw.polygon(
                _turn([(x - s, y - s), (x + s * 0.2, y - s), (x - s, y + s * 0.2)], (x, y), a * 0.3),
                fill=_shade(fill, 1.15),
            )
        elif shape == "slice":
            sc.draw.polygon(
                _turn(
                    [
                        (x - s * 1.6, y - s * 0.5),
                        (x + s * 1.6, y - s * 0.7),
                        (x + s * 1.4, y + s * 0.6),
                        (x - s * 1.5, y + s * 0.5),
                    ],
                    (x, y),
                    a,
                ),
                fill=fill,
                outline=_shade(fill, 0.75),
            )
        elif shape == "stick":
            dx, dy = math.cos(a) * s * 2.2, math.sin(a) * s * 2.2
            sc.draw.line([(x - dx, y - dy), (x + dx, y + dy)], fill=_shade(fill, 0.75), width=int(s * 0.9) + 4)
            sc.draw.line([(x - dx, y - dy), (x + dx, y + dy)], fill=fill, width=int(s * 0.9))
        else:
            sc.circle((x + s * 0.2, y + s * 0.2), s, _shade(fill, 0.72))
            sc.draw.ellipse((x - s, y - s * 0.85, x + s, y + s * 0.85), fill=fill)
            sc.circle((x - s * 0.3, y - s * 0.3), s * 0.3, _shade(fill, 1.25))


def mound(sc: Scene, r: float, colour: str) -> None:
    """Sauce or a heap of food: an uneven round patch, lighter where the light falls."""
    base = _hex(colour)
    outline = []
    for k in range(36):
        a = 2 * math.pi * k / 36
        rad = r * sc.rng.uniform(0.9, 1.0)
        outline.append((S / 2 + rad * math.cos(a), S / 2 + rad * math.sin(a)))
    sc.draw.polygon(outline, fill=base)
    sc.circle((S / 2 - r * 0.25, S / 2 - r * 0.3), r * 0.4, _shade(base, 1.08))


def _turn(points: list[Point], c: Point, a: float) -> list[Point]:
    ca, sa = math.cos(a), math.sin(a)
    return [(c[0] + (x - c[0]) * ca - (y - c[1]) * sa, c[1] + (x - c[0]) * sa + (y - c[1]) * ca) for x, y in points]


def noodles(sc: Scene, r: float, colour: str = "#f1d99a", n: int = 26, width: int = 11) -> None:
    base = _hex(colour)
    for _ in range(n):
        a0 = sc.rng.uniform(0, 2 * math.pi)
        rad = sc.rng.uniform(0.15, 0.8) * r
        line = []
        for k in range(24):
            a = a0 + k * 0.13
            wobble = math.sin(k * 0.9 + a0 * 3) * r * 0.06
            line.append((S / 2 + (rad + wobble) * math.cos(a), S / 2 + (rad + wobble) * math.sin(a)))
        fill = _jitter(sc.rng, base, 10)
        sc.draw.line(line, fill=_shade(fill, 0.8), width=width + 4, joint="curve")
        sc.draw.line(line, fill=fill, width=width, joint="curve")


def rice(sc: Scene, r: float, colour: str = "#fbf8f0", n: int = 420) -> None:
    sc.circle(CENTRE, r * 1.02, _shade(_hex(colour), 0.93))
    for x, y in sc.points(CENTRE, r, n):
        a = sc.rng.uniform(0, math.pi)
        dx, dy = math.cos(a) * 9, math.sin(a) * 9
        sc.draw.line([(x - dx, y - dy), (x + dx, y + dy)], fill=_jitter(sc.rng, _hex(colour), 6), width=9)


def garnish(sc: Scene, r: float, colour: str = "#4f9a3a", n: int = 22, size: float = 9) -> None:
    """Chopped scallion (green rings), or chilli, or sesame: small bright bits on top."""
    for p in sc.points(CENTRE, r, n):
        q = (p[0] + sc.rng.uniform(-20, 20), p[1] + sc.rng.uniform(-20, 20))
        sc.circle(q, size, _jitter(sc.rng, _hex(colour), 10), _shade(_hex(colour), 0.7), 2)


def dumplings(sc: Scene, r: float, skin: str, n: int = 6, size: float = 0.3, pleats: str = "top") -> None:
    base = _hex(skin)
    ring = [
        (S / 2 + r * 0.62 * math.cos(2 * math.pi * k / (n - 1)), S / 2 + r * 0.62 * math.sin(2 * math.pi * k / (n - 1)))
        for k in range(n - 1)
    ] + [CENTRE]
    for x, y in ring:
        s = r * size
        sc.circle((x + 8, y + 10), s, _shade(base, 0.7))
        if pleats == "crescent":
            sc.draw.ellipse((x - s * 1.15, y - s * 0.8, x + s * 1.15, y + s * 0.8), fill=base)
            for k in range(6):
                px = x - s * 0.8 + k * s * 0.32
                sc.draw.line([(px, y - s * 0.75), (px + s * 0.1, y - s * 0.35)], fill=_shade(base, 0.82), width=5)
        else:
            sc.circle((x, y), s, base)
            for k in range(12):  # the pleats meeting at the top knot
                a = 2 * math.pi * k / 12
                sc.draw.line(
                    [(x + s * 0.9 * math.cos(a), y + s * 0.9 * math.sin(a)), (x, y)], fill=_shade(base, 0.86), width=4
                )
            sc.circle((x, y), s * 0.16, _shade(base, 0.8))
        sc.circle((x - s * 0.35, y - s * 0.35), s * 0.22, _shade(base, 1.3))


# -- drinks (seen from the side) -------------------------------------------------------------------------------------
def glass(
    sc: Scene,
    liquid: str,
    *,
    fill: float = 0.8,
    shape: str = "tumbler",
    foam: str | None = None,
    ice: bool = False,
    pearls: bool = False,
    straw: str | None = None,
    garnish_colour: str | None = None,
) -> None:
    counter(sc)
    bottom: float = S * 0.8
    top: float = S * (0.18 if shape != "cup" else 0.4)
    half_top, half_bottom = {
        "tumbler": (0.2, 0.16),
        "pint": (0.22, 0.15),
        "cup": (0.17, 0.13),
        "bottle": (0.12, 0.12),
        "wine": (0.16, 0.03),
    }[shape]
    sc.shadow((S * (0.5 - half_top), bottom - 30, S * (0.5 + half_top) + 40, bottom + 30), offset=10, blur=14)
    x0t, x1t, x0b, x1b = S * (0.5 - half_top), S * (0.5 + half_top), S * (0.5 - half_bottom), S * (0.5 + half_bottom)
    if shape == "wine":
        sc.draw.line([(S / 2, S * 0.5), (S / 2, bottom)], fill=_hex("#d8dde0"), width=12)
        sc.draw.ellipse((S * 0.38, bottom - 16, S * 0.62, bottom + 16), fill=_hex("#d8dde0"))
        bottom = S * 0.5
    level = bottom - (bottom - top) * fill

    def x_at(y: float, left: bool) -> float:
        t = (y - top) / (bottom - top)
        return (x0t + (x0b - x0t) * t) if left else (x1t + (x1b - x1t) * t)

    sc.draw.polygon([(x0t, top), (x1t, top), (x1b, bottom), (x0b, bottom)], fill=_hex("#e8eef0"))
    sc.draw.polygon(
        [(x_at(level, True), level), (x_at(level, False), level), (x1b, bottom), (x0b, bottom)], fill=_hex(liquid)
    )
    if pearls:
        for k in range(22):
            y = bottom - 18 - (k // 6) * 30
            x = x0b + 22 + (k % 6) * (x1b - x0b - 44) / 5 + sc.rng.uniform(-6, 6)
            sc.circle((x, y), 14, _hex("#2d1a12"))
    if ice:
        for k in range(4):
            y = level + 20 + k * 58
            x = S / 2 + sc.rng.uniform(-60, 60)
            sc.draw.rounded_rectangle(
                (x - 42, y, x + 42, y + 50),
                radius=10,
                fill=_shade(_hex(liquid), 1.45),
                outline=(255, 255, 255),
                width=3,
            )
    if garnish_colour:
        sc.circle((S / 2 + 30, level + 40), 46, _hex(garnish_colour), _shade(_hex(garnish_colour), 0.7), 6)
    if foam:
        sc.draw.rounded_rectangle(
            (x_at(level, True), level - 50, x_at(level, False), level + 18), radius=24, fill=_hex(foam)
        )
    if straw:
        sc.draw.line([(S * 0.56, level + 60), (S * 0.63, top - 90)], fill=_hex(straw), width=26)
    sc.draw.line([(x0t + 26, top + 30), (x0b + 22, bottom - 30)], fill=(255, 255, 255), width=10)  # the shine
    sc.draw.polygon([(x0t, top), (x1t, top), (x1b, bottom), (x0b, bottom)], outline=_hex("#b9c4c8"), width=5)


def counter(sc: Scene) -> None:
    sc.draw.rectangle((0, int(S * 0.72), S, S), fill=_hex("#8d6440"))
    for y in range(0, int(S * 0.72), 4):
        sc.draw.line([(0, y), (S, y)], fill=_shade(_hex("#e9dfd1"), 1.0 - 0.12 * y / S), width=4)


def bottle(sc: Scene, colour: str, label: str) -> None:
    counter(sc)
    sc.shadow((S * 0.4, S * 0.78, S * 0.64, S * 0.84), offset=10, blur=14)
    sc.draw.rounded_rectangle((S * 0.4, S * 0.3, S * 0.6, S * 0.8), radius=30, fill=_hex(colour))
    sc.draw.rectangle((S * 0.46, S * 0.12, S * 0.54, S * 0.32), fill=_hex(colour))
    sc.draw.rectangle((S * 0.455, S * 0.1, S * 0.545, S * 0.15), fill=_hex("#c23b22"))
    sc.draw.rectangle((S * 0.4, S * 0.48, S * 0.6, S * 0.66), fill=_hex(label))


# -- the 64 dishes ---------------------------------------------------------------------------------------------------
def _plate_of(
    *layers: tuple[str, int, float, str], sauce: str | None = None, colour: str = "#f7f4ee", top: str | None = None
) -> Callable[[Scene], None]:
    def paint(sc: Scene) -> None:
        r = plate(sc, colour)
        if sauce:
            mound(sc, r * 0.95, sauce)
        for col, n, size, shape in layers:
            many = n if n <= 3 else int(n * 1.8)
            pieces(sc, r * 0.8, col, many, size * (1.0 if n <= 3 else 1.3), shape)
        if top:
            garnish(sc, r * 0.8, top, 14, 8)

    return paint


def _bowl_of(
    inside: str,
    *layers: tuple[str, int, float, str],
    noodle: str | None = None,
    grains: bool = False,
    top: str | None = "#4f9a3a",
    rim: str = "#f4f1ea",
) -> Callable[[Scene], None]:
    def paint(sc: Scene) -> None:
        r = bowl(sc, inside, rim)
        if grains:
            rice(sc, r * 0.95)
        if noodle:
            noodles(sc, r, noodle)
        for col, n, size, shape in layers:
            pieces(sc, r * 0.7, col, n, size, shape)
        if top:
            garnish(sc, r * 0.75, top)

    return paint


def _steamer_of(skin: str, pleats: str = "top", n: int = 6) -> Callable[[Scene], None]:
    return lambda sc: dumplings(sc, steamer(sc), skin, n, pleats=pleats)


DISHES: dict[str, Callable[[Scene], None]] = {
    # cold
    "smashed_cucumber": _plate_of(("#5b9b45", 16, 30, "blob"), ("#f4eed8", 10, 8, "blob"), top="#c8321e"),
    "fuqi_feipian": _plate_of(
        ("#8a4a32", 12, 34, "slice"), ("#d9c49b", 6, 30, "slice"), sauce="#b8321c", top="#5aa040"
    ),
    "drunken_chicken": _plate_of(("#f1dcb0", 10, 40, "slice"), sauce="#c9984a"),
    "jellyfish_vinegar": _plate_of(("#ead9ad", 22, 18, "stick"), sauce="#4a2a18", top="#5aa040"),
    "wood_ear_salad": _plate_of(("#2b2220", 20, 28, "blob"), ("#c8321e", 10, 8, "stick"), top="#5aa040"),
    "shanghai_smoked_fish": _plate_of(("#7a3318", 8, 44, "slice")),
    "century_egg_tofu": _plate_of(
        ("#fbf7ec", 1, 120, "cube"), ("#2f3a22", 4, 30, "blob"), sauce="#5a3a20", top="#5aa040"
    ),
    # dumplings
    "xiaolongbao": _steamer_of("#f6efe0"),
    "crab_xiaolongbao": _steamer_of("#f7e6c8"),
    "pork_cabbage_dumplings": _plate_of(("#f4ecd9", 10, 42, "blob")),
    "chili_oil_wontons": _bowl_of("#b5301a", ("#f0e6d2", 9, 38, "blob"), top="#4f9a3a"),
    "shengjian_bao": _plate_of(("#f3e7cf", 8, 52, "blob"), top="#3c2a1a", colour="#2e2a28"),
    "har_gow": _steamer_of("#f2e3dc", pleats="crescent", n=5),
    "scallion_pancake": _plate_of(("#d9a44a", 1, 150, "blob"), top="#4f9a3a"),
    # noodles
    "scallion_oil_noodles": _bowl_of("#6b4324", noodle="#e8c680", top="#3b7d2a"),
    "dan_dan_noodles": _bowl_of("#a8381e", ("#6b3a22", 16, 12, "blob"), noodle="#f0d595", top="#4f9a3a"),
    "braised_beef_noodle_soup": _bowl_of("#8c4a22", ("#6a3520", 6, 34, "cube"), noodle="#f1dca4"),
    "pork_chop_noodles": _bowl_of("#b98a55", ("#b5652e", 1, 90, "slice"), noodle="#f1dca4"),
    "yellow_croaker_noodles": _bowl_of("#efe4cf", ("#f6efe0", 4, 36, "slice"), noodle="#f1dca4", top="#3f6b2a"),
    "oil_splashed_noodles": _bowl_of("#f4ecdc", ("#c8321e", 14, 14, "blob"), noodle="#f3dfb0", top="#4f9a3a"),
    # rice
    "yangzhou_fried_rice": _plate_of(
        ("#f0d57a", 160, 9, "blob"),
        ("#e08a3a", 14, 10, "cube"),
        ("#6fae4a", 14, 9, "blob"),
        ("#e5a5a0", 10, 11, "cube"),
    ),
    "braised_pork_rice": _bowl_of(
        "#fbf8f0", ("#7a3a1a", 10, 24, "cube"), ("#c9a56a", 1, 40, "blob"), grains=True, top="#4f9a3a"
    ),
    "tomato_brisket_rice": _bowl_of(
        "#fbf8f0", ("#c4401f", 10, 28, "blob"), ("#7a3a1a", 6, 26, "cube"), grains=True, top=None
    ),
    "claypot_rice": _bowl_of(
        "#f6efe0", ("#9a2d22", 10, 26, "slice"), ("#5c7a2f", 8, 18, "blob"), grains=True, top=None, rim="#3e2a1e"
    ),
    "cifantuan": _plate_of(("#f7f3ea", 3, 80, "blob"), ("#c28a4a", 6, 14, "stick")),
    # wok
    "kung_pao_chicken": _plate_of(
        ("#e0b67a", 18, 24, "cube"), ("#b3261b", 12, 12, "stick"), ("#c99552", 16, 10, "blob"), sauce="#8a3a1a"
    ),
    "mapo_tofu": _bowl_of("#b8321c", ("#f6efdf", 14, 30, "cube"), ("#5a2a18", 18, 8, "blob"), top="#4f9a3a"),
    "sweet_sour_pork": _plate_of(("#d9662a", 14, 30, "blob"), top="#f4eed8"),
    "red_braised_pork": _plate_of(("#7a2e16", 9, 40, "cube"), sauce="#5a1e0e", top="#4f9a3a"),
    "squirrel_fish": _plate_of(("#e07a2a", 24, 22, "cube"), sauce="#c24a1e", colour="#f4efe2"),
    "seasonal_greens": _plate_of(("#3e8a35", 20, 28, "slice"), ("#f4eed8", 8, 7, "blob")),
    "dry_fried_green_beans": _plate_of(("#4f8a34", 26, 12, "stick"), ("#6b3a22", 12, 8, "blob")),
    "yuxiang_pork": _plate_of(
        ("#d9a070", 24, 10, "stick"), ("#2b2220", 10, 9, "stick"), sauce="#a8381e", top="#5aa040"
    ),
    "tomato_scrambled_eggs": _plate_of(("#f3cf4a", 12, 32, "blob"), ("#d6331e", 10, 26, "blob")),
    "spicy_crayfish": _bowl_of("#9a2414", ("#c73a1e", 14, 30, "blob"), top="#e8d9a0", rim="#2e2a28"),
    "oil_fried_shrimp": _plate_of(("#c85a22", 30, 14, "blob")),
    "chef_special_duck": _plate_of(("#6a2a14", 10, 38, "slice"), sauce="#3e1a0c", top="#4f9a3a"),
    # soups
    "hot_sour_soup": _bowl_of("#7a4a22", ("#e9d9b0", 16, 9, "stick"), ("#2b2220", 10, 8, "stick")),
    "tomato_egg_soup": _bowl_of("#e5713a", ("#f6d65a", 12, 22, "blob"), ("#d6331e", 6, 18, "blob")),
    "corn_rib_soup": _bowl_of("#f2e4c2", ("#f2c53a", 6, 30, "cube"), ("#b5845a", 5, 28, "blob"), top=None),
    "yanduxian": _bowl_of("#f1e8d6", ("#e8d4a0", 8, 26, "slice"), ("#e7b8a8", 6, 26, "slice"), top=None),
    "seaweed_shrimp_soup": _bowl_of("#e7dcc0", ("#1f3a24", 14, 22, "slice"), ("#e8a07a", 14, 6, "blob")),
    "salty_soy_milk": _bowl_of("#f1ebdc", ("#c8321e", 12, 8, "blob"), ("#d9a44a", 8, 14, "slice")),
    # drinks
    "lemon_tea": lambda sc: glass(sc, "#c8782a", ice=True, garnish_colour="#f2d64a", straw="#2f7a4a"),
    "bubble_milk_tea": lambda sc: glass(sc, "#d9b48a", pearls=True, straw="#3a3a3a"),
    "longjing_tea": lambda sc: glass(sc, "#c9d27a", fill=0.7, shape="cup"),
    "chrysanthemum_tea": lambda sc: glass(sc, "#e8cf6a", fill=0.75, shape="cup", garnish_colour="#f2c230"),
    "sour_plum_drink": lambda sc: glass(sc, "#5a2418", ice=True),
    "watermelon_juice": lambda sc: glass(sc, "#e8423a", straw="#2f7a4a"),
    "coconut_water": lambda sc: glass(sc, "#f1efe4", ice=True),
    "cola": lambda sc: glass(sc, "#3a1a10", ice=True, foam="#c9a27a", fill=0.75),
    "mineral_water": lambda sc: bottle(sc, "#bcd8e6", "#2a6fb0"),
    # desserts
    "black_sesame_tangyuan": _bowl_of("#f2e6d0", ("#fbfaf6", 6, 40, "blob"), top=None),
    "mango_pomelo_sago": _bowl_of("#f6c64a", ("#f3a72a", 10, 22, "cube"), ("#fbf3e0", 30, 6, "blob"), top=None),
    "osmanthus_lotus_root": _plate_of(("#e9cfa6", 8, 36, "blob"), sauce="#b8642a", top="#f2c230"),
    "red_bean_pancake": _plate_of(("#e2b060", 6, 44, "slice"), ("#6a2a22", 6, 14, "slice")),
    "eight_treasure_rice": _plate_of(
        ("#f5ecd6", 1, 150, "blob"), ("#c8321e", 10, 14, "blob"), ("#5a8a3a", 8, 12, "blob"), sauce="#c9a04a"
    ),
    "almond_tofu": _bowl_of("#f7f3ea", ("#fbfaf6", 9, 30, "cube"), ("#e8423a", 4, 12, "blob"), top=None),
    # alcohol
    "tsingtao_draft": lambda sc: glass(sc, "#e9a72a", shape="pint", foam="#fbf6e6", fill=0.82),
    "craft_ipa": lambda sc: glass(sc, "#c7751c", shape="pint", foam="#f6ecd2", fill=0.8),
    "shaoxing_huadiao": lambda sc: glass(sc, "#a8561e", fill=0.7, shape="cup"),
    "erguotou": lambda sc: bottle(sc, "#e6eef0", "#c23b22"),
    "green_plum_wine": lambda sc: glass(sc, "#b8c24a", fill=0.6, shape="cup", garnish_colour="#8aa83a"),
    "house_red_wine": lambda sc: glass(sc, "#6a0f1e", fill=0.5, shape="wine"),
}


def demo_dish_keys() -> list[str]:
    return [item["key"] for category in demo_data()["categories"] for item in category["items"]]


def draw_demo_photos(folder: Path, keys: Sequence[str] | None = None) -> list[Path]:
    """Draw the demo dishes' pictures into `folder` as KEY.jpg (every demo dish, or `keys`); returns the files."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for key in keys if keys is not None else demo_dish_keys():
        scene = Scene(key, "#3a5a66" if key in _DARK_TABLE else "#b98a5e")
        DISHES[key](scene)
        path = folder / f"{key}.jpg"
        scene.save(path)
        written.append(path)
    return written


_DARK_TABLE = frozenset({"shengjian_bao", "spicy_crayfish", "red_braised_pork"})


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m appliance.demo.photos FOLDER   (then: tablebox photo import FOLDER)", file=sys.stderr)
        return 2
    files = draw_demo_photos(Path(args[0]))
    size = sum(p.stat().st_size for p in files)
    print(
        f"drew {len(files)} demo dish photos into {args[0]} ({size // 1024} KB); now: tablebox photo import {args[0]}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
