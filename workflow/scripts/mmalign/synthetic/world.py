"""The synthetic world of the default study: seeded scenes with priors, rendered with Pillow.

A scene is a few objects (shape, colour, size, grid cell, optional letter) on a plain background.
The sampler has strong, configurable priors so that a model which leans on them hallucinates
for the same reason real MLLMs do:

* co-occurrence: the second object is usually the first one's *partner* shape;
* attribute: each shape usually has its *usual colour*;
* frequency: some shapes are much more common than others.

Scenes are plain data (``Scene``), stored as JSON lines; the renderer draws each object inside
its own grid cell so that, with a patch size equal to the cell size, one image token sees one cell.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from mmalign.seeding import stable_seed

# The world's vocabulary. Changing these lists changes the language; the parser derives from them.
SHAPES = ["circle", "square", "triangle", "diamond", "star", "cross"]
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 200, 30),
    "purple": (150, 60, 190),
    "orange": (245, 130, 20),
}
SIZES = ["small", "large"]
LETTERS = ["a", "e", "k", "x"]
POSITION_WORDS = {  # (row, col) on a 3x3 grid -> phrase
    (0, 0): "top left",
    (0, 1): "top",
    (0, 2): "top right",
    (1, 0): "left",
    (1, 1): "center",
    (1, 2): "right",
    (2, 0): "bottom left",
    (2, 1): "bottom",
    (2, 2): "bottom right",
}
SPLITS = ["eval", "preference", "sft"]  # generation order: eval first, so it is never a duplicate


@dataclass(frozen=True)
class WorldSettings:
    """Everything that defines the world; comes from config ``world:``."""

    seed: int = 0
    image_size: int = 48
    grid: int = 3
    max_objects: int = 3
    object_count_weights: tuple[float, ...] = (0.3, 0.45, 0.25)  # P(1), P(2), P(3) objects
    shape_weights: tuple[float, ...] = (0.30, 0.22, 0.16, 0.13, 0.11, 0.08)  # frequency prior
    partners: dict = field(
        default_factory=lambda: {
            "circle": "square",
            "square": "triangle",
            "triangle": "circle",
            "diamond": "star",
            "star": "cross",
            "cross": "diamond",
        }
    )
    partner_prob: float = 0.8
    usual_colours: dict = field(
        default_factory=lambda: {
            "circle": "red",
            "square": "blue",
            "triangle": "green",
            "diamond": "purple",
            "star": "yellow",
            "cross": "orange",
        }
    )
    usual_colour_prob: float = 0.7
    letter_prob: float = 0.25
    small_scale: float = 0.3  # object radius / cell size; small objects are weaker visual evidence
    large_scale: float = 0.45
    background: tuple[int, int, int] = (235, 235, 235)
    split_sizes: dict = field(default_factory=lambda: {"sft": 3000, "preference": 1000, "eval": 300})

    def __post_init__(self):
        if len(self.shape_weights) != len(SHAPES):
            raise ValueError(f"world.shape_weights needs {len(SHAPES)} weights, one per shape {SHAPES}")
        if len(self.object_count_weights) != self.max_objects:
            raise ValueError("world.object_count_weights needs one weight per object count 1..max_objects")
        if self.max_objects > self.grid * self.grid or self.max_objects > len(SHAPES):
            raise ValueError("world.max_objects exceeds the grid cells or the number of shapes")
        if self.image_size % self.grid:
            raise ValueError("world.image_size must be a multiple of world.grid")
        for name, table in (("partners", self.partners), ("usual_colours", self.usual_colours)):
            if set(table) != set(SHAPES):
                raise ValueError(f"world.{name} must map every shape {SHAPES}")
        if set(self.partners.values()) - set(SHAPES) or set(self.usual_colours.values()) - set(COLOURS):
            raise ValueError("world.partners / world.usual_colours name an unknown shape or colour")

    @classmethod
    def from_config(cls, cfg: dict) -> WorldSettings:
        cfg = dict(cfg)
        for key in ("object_count_weights", "shape_weights", "background"):
            if key in cfg:
                cfg[key] = tuple(cfg[key])
        return cls(**cfg)

    @property
    def cell(self) -> int:
        return self.image_size // self.grid


@dataclass(frozen=True)
class SceneObject:
    shape: str
    colour: str
    size: str
    row: int
    col: int
    letter: str | None = None

    @property
    def position(self) -> str:
        return POSITION_WORDS[(self.row, self.col)]


@dataclass(frozen=True)
class Scene:
    id: str
    split: str
    objects: tuple[SceneObject, ...]

    @property
    def shapes(self) -> set[str]:
        return {o.shape for o in self.objects}

    def find(self, shape: str) -> SceneObject | None:
        return next((o for o in self.objects if o.shape == shape), None)

    def key(self) -> str:
        """Content key: two scenes with the same key look identical."""
        return json.dumps(sorted(json.dumps(asdict(o), sort_keys=True) for o in self.objects))

    def to_dict(self) -> dict:
        return {"id": self.id, "split": self.split, "objects": [asdict(o) for o in self.objects]}

    @classmethod
    def from_dict(cls, d: dict) -> Scene:
        return cls(d["id"], d["split"], tuple(SceneObject(**o) for o in d["objects"]))


def split_rng(seed: int, split: str) -> random.Random:
    """An independent, reproducible random stream per (seed, split)."""
    return random.Random(stable_seed(seed, split, bits=64))


def sample_objects(settings: WorldSettings, rng: random.Random) -> tuple[SceneObject, ...]:
    """Draw one scene's objects from the priors (distinct shapes, distinct cells)."""
    n = rng.choices(range(1, settings.max_objects + 1), weights=settings.object_count_weights)[0]
    shapes = [rng.choices(SHAPES, weights=settings.shape_weights)[0]]
    while len(shapes) < n:
        partner = settings.partners[shapes[-1]]
        if partner not in shapes and rng.random() < settings.partner_prob:
            shapes.append(partner)
        else:
            others = [s for s in SHAPES if s not in shapes]
            weights = [settings.shape_weights[SHAPES.index(s)] for s in others]
            shapes.append(rng.choices(others, weights=weights)[0])
    cells = rng.sample([(r, c) for r in range(settings.grid) for c in range(settings.grid)], n)
    objects = []
    for shape, (row, col) in zip(shapes, cells):
        usual = settings.usual_colours[shape]
        if rng.random() < settings.usual_colour_prob:
            colour = usual
        else:
            colour = rng.choice([c for c in COLOURS if c != usual])
        letter = rng.choice(LETTERS) if rng.random() < settings.letter_prob else None
        objects.append(SceneObject(shape, colour, rng.choice(SIZES), row, col, letter))
    # Reading order (top-left to bottom-right) so descriptions are deterministic given the scene.
    return tuple(sorted(objects, key=lambda o: (o.row, o.col)))


def generate_scenes(settings: WorldSettings) -> list[Scene]:
    """All splits, seeded and content-disjoint: a scene that looks like one already drawn is redrawn."""
    seen: set[str] = set()
    scenes: list[Scene] = []
    for split in SPLITS:
        rng = split_rng(settings.seed, split)
        count, attempts = 0, 0
        while count < settings.split_sizes.get(split, 0):
            attempts += 1
            if attempts > 50 * settings.split_sizes[split] + 1000:
                raise RuntimeError(f"world too small to draw {settings.split_sizes[split]} distinct {split} scenes")
            scene = Scene(f"{split}-{count:05d}", split, sample_objects(settings, rng))
            if scene.key() in seen:
                continue
            seen.add(scene.key())
            scenes.append(scene)
            count += 1
    return scenes


# ----------------------------------------------------------------------------------------- render


def _shape_polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]] | None:
    if shape == "triangle":
        return [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
    if shape == "star":
        import math

        pts = []
        for i in range(10):
            rad = r if i % 2 == 0 else r * 0.45
            ang = -math.pi / 2 + i * math.pi / 5
            pts.append((cx + rad * math.cos(ang), cy + rad * math.sin(ang)))
        return pts
    if shape == "cross":
        w = r * 0.4
        return [
            (cx - w, cy - r), (cx + w, cy - r), (cx + w, cy - w), (cx + r, cy - w), (cx + r, cy + w),
            (cx + w, cy + w), (cx + w, cy + r), (cx - w, cy + r), (cx - w, cy + w), (cx - r, cy + w),
            (cx - r, cy - w), (cx - w, cy - w),
        ]  # fmt: skip
    return None


def render_scene(scene: Scene, settings: WorldSettings) -> Image.Image:
    """Draw a scene: each object centred in its own grid cell."""
    img = Image.new("RGB", (settings.image_size, settings.image_size), settings.background)
    draw = ImageDraw.Draw(img)
    cell = settings.cell
    font = ImageFont.load_default()
    for obj in scene.objects:
        cx, cy = (obj.col + 0.5) * cell, (obj.row + 0.5) * cell
        r = cell * (settings.large_scale if obj.size == "large" else settings.small_scale)
        fill = COLOURS[obj.colour]
        poly = _shape_polygon(obj.shape, cx, cy, r)
        if obj.shape == "circle":
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
        elif obj.shape == "square":
            draw.rectangle([cx - r * 0.85, cy - r * 0.85, cx + r * 0.85, cy + r * 0.85], fill=fill)
        else:
            draw.polygon(poly, fill=fill)
        if obj.letter:
            draw.text((cx, cy), obj.letter, fill=(0, 0, 0), font=font, anchor="mm")
    return img


def write_world(settings: WorldSettings, scenes_path: str | Path, images_dir: str | Path) -> dict:
    """Generate, render and store every scene; returns per-split counts."""
    from tqdm import tqdm

    images_dir = Path(images_dir)
    images_dir.mkdir(parents=True, exist_ok=True)
    scenes = generate_scenes(settings)
    with open(scenes_path, "w") as fh:
        for scene in tqdm(scenes, desc="render scenes", mininterval=5):
            render_scene(scene, settings).save(images_dir / f"{scene.id}.png")
            fh.write(json.dumps(scene.to_dict()) + "\n")
    counts: dict[str, int] = {}
    for s in scenes:
        counts[s.split] = counts.get(s.split, 0) + 1
    return counts


def load_scenes(path: str | Path, split: str | None = None) -> list[Scene]:
    with open(path) as fh:
        scenes = [Scene.from_dict(json.loads(line)) for line in fh if line.strip()]
    return [s for s in scenes if split is None or s.split == split]


def image_path(images_dir: str | Path, scene_id: str) -> str:
    return str(Path(images_dir) / f"{scene_id}.png")
