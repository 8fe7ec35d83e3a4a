"""Small local mirrors of the paper study's dataset downloads, in the layout of the real repositories.

The CPU rehearsal runs ``config/paper.yaml`` unchanged except that every download gets ``mirror: <dir>`` (and sizes
are scaled down). This module writes those dirs: one per ``downloads:`` entry of paper.yaml except the base model
``llava-v1.6-vicuna-7b``, each holding the files the real Hub repo (or local directory) holds, in the same format,
so that the download rule (``mmalign.hub.fetch_snapshot`` with the entry's ``allow_patterns``, then
``extract_archives``) and the project's readers treat them as the real thing.

API:

* ``write_mirrors(root, n=24, seed=0) -> {download name: mirror dir}``: the dirs are ``root/<download name>``
  (rewritten from scratch). Pair sources (povid, vlfeedback, rlhfv) get ``n`` records each; benchmarks get
  ``clamp(n // 2, 6, 12)`` items (POPE: 2 images x 2 questions in each of its 3 categories). Every record is valid:
  the readers keep every row. VLFeedback's chosen model follows the cycle gpt-4v, llava-v1.5-7b, gpt-4v,
  llava-v1.5-7b, another model, and its even-numbered records reuse a POVID prompt: with n = 24 the pair sets that
  filter on ``chosen_model: [gpt-4v]``, ``[llava-v1.5-7b]`` and ``prompts_from: povid`` keep 10, 10 and at least 12.
  Also writes ``root/corpus.txt`` (``CORPUS_FILE``): every text of the mirrors (prompts, answers, questions,
  captions, references, rationales), one per line, deduplicated in first-seen order, for training a tokenizer.
* ``all_texts(root) -> list[str]``: the lines of ``root/corpus.txt``.
* ``mirrored_downloads(downloads, mirrors) -> dict``: a copy of paper.yaml's ``downloads`` with ``mirror`` set for
  every mirrored entry (a mirror needs no pin: its revision is left as it is).

Content: every image (JPEG or PNG, several sizes and aspect ratios: ``SIZES``) is a plain background with one to
three simple coloured objects drawn as shapes (a ball, a kite, a clock, a book, a stop sign, a cup, an umbrella, a
frisbee; the text benchmarks show a sign with a word or a number). Every text is a short English sentence that is
true of its image (chosen answers, references) or false in one detail (rejected answers), at most 40 words. The
object names are COCO categories, so Object HalBench's truth and CHAIR work on them. Output is a function of
(n, seed): the same bytes on every run.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import random
import re
import shutil
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw, ImageFont

CORPUS_FILE = "corpus.txt"
BASE_MODEL_DOWNLOAD = "llava-v1.6-vicuna-7b"  # built by someone else; not mirrored here
DOWNLOADS = (
    "povid",
    "coco-train2014",
    "vlfeedback",
    "rlhfv",
    "pope",
    "mmhal-bench",
    "llava-bench-in-the-wild",
    "mmvet",
    "textvqa",
    "gqa",
    "object-halbench",
    "coco-annotations-2014",
)
SIZES = ((64, 48), (48, 64), (96, 32), (56, 56), (80, 60), (40, 72))
MAX_WORDS = 40

# ------------------------------------------------------------------------------------------- the scenes

# object -> (COCO category, Open Images label as in MMHal-Bench's image_content, what it is used for)
OBJECTS = {
    "ball": ("sports ball", "Ball", "playing catch"),
    "kite": ("kite", "Kite", "flying on a windy day"),
    "clock": ("clock", "Clock", "telling the time"),
    "book": ("book", "Book", "reading"),
    "stop sign": ("stop sign", "Stop sign", "telling drivers to stop"),
    "cup": ("cup", "Mug", "holding a drink"),
    "umbrella": ("umbrella", "Umbrella", "keeping dry in the rain"),
    "frisbee": ("frisbee", "Flying disc", "throwing in a park"),
}
SIGN = "sign"  # the text benchmarks' object: a sign with a word or number on it (no COCO category)
COLOURS = {
    "red": (200, 40, 40),
    "green": (50, 150, 70),
    "blue": (50, 80, 200),
    "yellow": (235, 205, 50),
    "purple": (130, 60, 170),
    "pink": (235, 130, 175),
    "white": (245, 245, 245),
    "black": (25, 25, 25),
    "brown": (125, 85, 45),
}
BACKGROUNDS = {
    "grey": (150, 150, 150),
    "beige": (225, 210, 180),
    "light blue": (170, 205, 235),
    "dark grey": (80, 80, 85),
    "sand": (210, 190, 140),
}
PLACES = {
    "left": "on the left",
    "middle": "in the middle",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
    "top left": "in the top left corner",
    "top right": "in the top right corner",
    "bottom left": "in the bottom left corner",
    "bottom right": "in the bottom right corner",
}
WORDS = ("open", "sale", "exit", "cafe", "park", "hotel", "shop", "bank", "mail", "cinema")
NUMBERS = ("7", "12", "25", "3", "40", "99", "18", "64")
NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}


@dataclass(frozen=True)
class Thing:
    kind: str
    colour: str
    place: str
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class Scene:
    size: tuple[int, int]
    background: str
    things: tuple[Thing, ...]
    label: str = ""  # the word or number on the sign (text scenes only)

    def kinds(self) -> set[str]:
        return {t.kind for t in self.things}


def _slots(width: int, height: int) -> dict[str, tuple[int, int, int, int]]:
    """Where objects can sit in an image of this shape: a row, a column or a 2 x 2 grid of cells."""
    if width >= 2 * height:
        names, cols, rows = ["left", "middle", "right"], 3, 1
    elif height >= 1.3 * width:
        names, cols, rows = ["top", "middle", "bottom"], 1, 3
    else:
        names, cols, rows = ["top left", "top right", "bottom left", "bottom right"], 2, 2
    cells = {}
    for i, name in enumerate(names):
        col, row = (i % cols, i // cols)
        x0, y0 = col * width // cols, row * height // rows
        x1, y1 = (col + 1) * width // cols, (row + 1) * height // rows
        side = int(min(x1 - x0, y1 - y0) * 0.8)
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        cells[name] = (cx - side // 2, cy - side // 2, cx - side // 2 + side, cy - side // 2 + side)
    return cells


def _colour_for(kind: str, background: str, rng: random.Random, avoid: str = "") -> str:
    if kind == "stop sign":
        return "red"
    choices = [c for c in COLOURS if c != avoid and not (background == "dark grey" and c == "black")]
    return rng.choice(choices)


def random_scene(rng: random.Random, size: tuple[int, int] | None = None, max_things: int = 3) -> Scene:
    size = size or rng.choice(SIZES)
    background = rng.choice(list(BACKGROUNDS))
    slots = _slots(*size)
    k = min(rng.choice([1, 2, 2, 3]), max_things, len(slots))
    kinds = rng.sample(list(OBJECTS), k)
    places = sorted(rng.sample(list(slots), k), key=list(slots).index)
    things = tuple(
        Thing(kind, _colour_for(kind, background, rng), place, slots[place]) for kind, place in zip(kinds, places)
    )
    return Scene(size, background, things)


def sign_scene(rng: random.Random, label: str) -> Scene:
    """A sign with a word or number on it, alone on a plain background (TextVQA, MM-Vet's OCR questions)."""
    width, height = size = rng.choice(SIZES)
    background = rng.choice(list(BACKGROUNDS))
    box = (width // 10, height // 6, width - width // 10, height // 6 + max(14, height // 2))
    colour = rng.choice(["white", "yellow", "blue", "green", "red"])
    return Scene(size, background, (Thing(SIGN, colour, "middle", box),), label)


def _darker(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    return tuple(max(0, int(v * 0.6)) for v in rgb)


def _font(draw: ImageDraw.ImageDraw, text: str, width: int) -> ImageFont.ImageFont:
    for size in range(13, 5, -1):
        font = ImageFont.load_default(size=size)
        if draw.textlength(text, font=font) <= width:
            return font
    return font


def _draw_thing(draw: ImageDraw.ImageDraw, thing: Thing, label: str) -> None:
    x0, y0, x1, y1 = thing.box
    w, h = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    fill = COLOURS[thing.colour]
    edge = _darker(fill) if thing.colour != "black" else (90, 90, 90)
    if thing.kind == "ball":
        draw.ellipse(thing.box, fill=fill, outline=edge)
    elif thing.kind == "kite":
        top = y1 - h // 4
        draw.polygon([(cx, y0), (x1, (y0 + top) // 2), (cx, top), (x0, (y0 + top) // 2)], fill=fill, outline=edge)
        draw.line([(cx, top), (cx - w // 6, y1), (cx + w // 6, y1)], fill=edge)
    elif thing.kind == "clock":
        draw.ellipse(thing.box, fill=fill, outline=(0, 0, 0))
        hand = (0, 0, 0) if thing.colour != "black" else (240, 240, 240)
        draw.line([(cx, cy), (cx, y0 + h // 5)], fill=hand)
        draw.line([(cx, cy), (x1 - w // 4, cy)], fill=hand)
    elif thing.kind == "book":
        draw.rectangle((x0 + w // 8, y0, x1 - w // 8, y1), fill=fill, outline=edge)
        draw.rectangle((x0 + w // 8, y0, x0 + w // 8 + max(2, w // 6), y1), fill=edge)
    elif thing.kind == "stop sign":
        draw.regular_polygon((cx, cy, w // 2), 8, rotation=22.5, fill=fill, outline=(245, 245, 245))
        draw.line([(x0 + w // 4, cy), (x1 - w // 4, cy)], fill=(245, 245, 245), width=max(1, h // 8))
    elif thing.kind == "cup":
        draw.rectangle((x0 + w // 8, y0 + h // 4, x1 - w // 3, y1), fill=fill, outline=edge)
        draw.ellipse((x1 - w // 2, y0 + h // 3, x1 - w // 10, y1 - h // 6), outline=fill, width=max(1, w // 10))
    elif thing.kind == "umbrella":
        draw.pieslice((x0, y0, x1, y0 + h), 180, 360, fill=fill, outline=edge)
        draw.line([(cx, cy), (cx, y1 - 2)], fill=edge, width=max(1, w // 12))
        draw.arc((cx - w // 6, y1 - w // 4, cx, y1), 0, 180, fill=edge)
    elif thing.kind == "frisbee":
        draw.ellipse((x0, cy - h // 5, x1, cy + h // 5), fill=fill, outline=edge)
        draw.ellipse((x0 + w // 4, cy - h // 12, x1 - w // 4, cy + h // 12), outline=edge)
    elif thing.kind == SIGN:
        draw.line([(cx, y1), (cx, y1 + h)], fill=(90, 70, 50), width=max(1, w // 10))
        draw.rectangle(thing.box, fill=fill, outline=edge)
        ink = (0, 0, 0) if sum(fill) > 380 else (255, 255, 255)
        font = _font(draw, label, w - 4)
        draw.text((cx, cy), label, fill=ink, font=font, anchor="mm")
    else:
        raise ValueError(thing.kind)


def render(scene: Scene, fmt: str = "JPEG") -> bytes:
    """The scene's picture, encoded (JPEG quality 90, or PNG)."""
    image = Image.new("RGB", scene.size, BACKGROUNDS[scene.background])
    draw = ImageDraw.Draw(image)
    for thing in scene.things:
        _draw_thing(draw, thing, scene.label)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------- the texts


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def plural(kind: str) -> str:
    return kind + ("es" if kind.endswith("ch") else "s")


def named(thing: Thing) -> str:
    """'a red ball'."""
    return f"{article(thing.colour)} {thing.colour} {thing.kind}"


def listing(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def cap(text: str) -> str:
    return text[0].upper() + text[1:]


def describe(scene: Scene, style: int) -> str:
    parts = [f"{named(t)} {PLACES[t.place]}" for t in scene.things]
    bg = scene.background
    templates = (
        f"The image shows {listing(parts)}. The background is plain {bg}.",
        f"This is a simple drawing of {listing(parts)} on a plain {bg} background.",
        f"In this picture there {'is' if len(parts) == 1 else 'are'} {listing(parts)}, against a plain {bg} background.",
    )
    return templates[style % len(templates)]


def brief(scene: Scene) -> str:
    return cap(listing([named(t) for t in scene.things])) + "."


def _absent(scene: Scene, rng: random.Random) -> str:
    return rng.choice(sorted(set(OBJECTS) - scene.kinds()))


def _free_place(scene: Scene, rng: random.Random) -> str:
    slots = _slots(*scene.size)
    free = [p for p in slots if p not in {t.place for t in scene.things}]
    return rng.choice(free) if free else scene.things[0].place


def recoloured(scene: Scene, rng: random.Random) -> Scene:
    """The scene with one object in another colour (stop signs stay red: another object is picked if any)."""
    candidates = [i for i, t in enumerate(scene.things) if t.kind != "stop sign"] or [0]
    i = rng.choice(candidates)
    thing = scene.things[i]
    colour = _colour_for("ball", scene.background, rng, avoid=thing.colour)
    things = list(scene.things)
    things[i] = replace(thing, colour=colour)
    return replace(scene, things=tuple(things))


def with_extra(scene: Scene, rng: random.Random) -> Scene:
    """The scene with one more object that is not in the picture (with three objects already: one of them turned
    into an object that is not there, which keeps descriptions short)."""
    kind = _absent(scene, rng)
    if len(scene.things) >= 3:
        last = scene.things[-1]
        return replace(
            scene,
            things=(*scene.things[:-1], replace(last, kind=kind, colour=_colour_for(kind, scene.background, rng))),
        )
    place = _free_place(scene, rng)
    extra = Thing(kind, _colour_for(kind, scene.background, rng), place, (0, 0, 0, 0))
    return replace(scene, things=(*scene.things, extra))


@dataclass(frozen=True)
class QA:
    """A question about a scene with its true answer, a short true answer (a word, for GQA, MM-Vet and VQA-style
    benchmarks), a terse true answer, and three false answers from mild to bad."""

    kind: str
    question: str
    answer: str
    short: str
    terse: str
    wrong: tuple[str, str, str]

    def __post_init__(self):
        texts = [self.answer, self.terse, *self.wrong]
        if len(set(texts)) != len(texts):
            raise AssertionError(f"answers of {self.question!r} repeat: {texts}")
        too_long = [t for t in [self.question, *texts] if len(t.split()) > MAX_WORDS]
        if too_long:
            raise AssertionError(f"over {MAX_WORDS} words: {too_long}")


DETAIL_PROMPTS = (  # LLaVA-Instruct's detailed-description prompts (POVID's prompts; some VLFeedback prompts too)
    "Describe this image in detail.",
    "What do you see happening in this image?",
    "Explain the visual content of the image in great detail.",
    "Can you elaborate on the elements of the picture provided?",
    "What is this photo about?",
    "Write a detailed description of the given image.",
)


def qa_detail(scene: Scene, rng: random.Random, prompt: str | None = None) -> QA:
    style = rng.randrange(3)
    moved = replace(scene, things=(*scene.things[:-1], replace(scene.things[-1], place=_free_place(scene, rng))))
    if moved == scene:  # every slot taken: say it is bigger than it is instead
        moved = replace(scene, background=rng.choice([b for b in BACKGROUNDS if b != scene.background]))
    return QA(
        "detail",
        prompt or rng.choice(DETAIL_PROMPTS),
        describe(scene, style),
        "",
        brief(scene),
        (describe(recoloured(scene, rng), style), describe(with_extra(scene, rng), style), describe(moved, style + 1)),
    )


def qa_colour(scene: Scene, rng: random.Random) -> QA:
    t = rng.choice(scene.things)
    other = _colour_for("ball", scene.background, rng, avoid=t.colour)
    third = rng.choice([c for c in COLOURS if c not in (t.colour, other)])
    return QA(
        "colour",
        rng.choice([f"What colour is the {t.kind}?", f"What color is the {t.kind} in the image?"]),
        f"The {t.kind} {PLACES[t.place]} is {t.colour}.",
        t.colour,
        f"It is {t.colour}.",
        (f"The {t.kind} is {other}.", f"The {t.kind} is {third} with {other} stripes.", f"There is no {t.kind} here."),
    )


def qa_place(scene: Scene, rng: random.Random) -> QA:
    t = rng.choice(scene.things)
    wrong_place = rng.choice([p for p in _slots(*scene.size) if p != t.place])
    absent = _absent(scene, rng)
    return QA(
        "place",
        f"Where is the {t.kind} in the image?",
        f"The {t.kind} is {PLACES[t.place]} of the image.",
        t.place,
        cap(PLACES[t.place]) + ".",
        (
            f"The {t.kind} is {PLACES[wrong_place]} of the image.",
            f"The {t.kind} is {PLACES[wrong_place]}, next to {article(absent)} {absent}.",
            f"The {t.kind} fills the whole image.",
        ),
    )


def qa_count(scene: Scene, rng: random.Random) -> QA:
    k = len(scene.things)
    names = [named(t) for t in scene.things]
    extra = with_extra(scene, rng).things[-1]
    fewer = f"There is only one object, {names[0]}." if k > 1 else f"There are two objects: {names[0]} and a ball."
    if k == 1 and scene.things[0].kind == "ball":
        fewer = f"There are two objects: {names[0]} and a kite."
    return QA(
        "count",
        rng.choice(["How many objects are there in the image?", "How many objects can you see in this picture?"]),
        f"There {'is' if k == 1 else 'are'} {NUMBER_WORDS[k]} object{'s' if k > 1 else ''}: {listing(names)}."
        if k > 1
        else f"There is one object: {names[0]}.",
        str(k),
        f"{cap(NUMBER_WORDS[k])}.",
        (
            f"There are {NUMBER_WORDS[k + 1]} objects: {listing([*names, named(extra)])}.",
            fewer,
            "I cannot count the objects in this image.",
        ),
    )


def qa_exists(scene: Scene, rng: random.Random) -> QA:
    t = rng.choice(scene.things)
    other = rng.choice([p for p in _slots(*scene.size) if p != t.place])
    return QA(
        "exists",
        f"Is there {article(t.kind)} {t.kind} in the image?",
        f"Yes, there is {named(t)} {PLACES[t.place]}.",
        "yes",
        "Yes.",
        (
            f"Yes, there is {article(t.kind)} {t.kind} {PLACES[other]}.",
            f"No, there is no {t.kind} in the image.",
            "No, the image only shows the background.",
        ),
    )


def qa_absent(scene: Scene, rng: random.Random) -> QA:
    kind = _absent(scene, rng)
    colour = _colour_for(kind, scene.background, rng)
    place = rng.choice(list(_slots(*scene.size)))
    names = listing([named(t) for t in scene.things])
    return QA(
        "absent",
        f"Is there {article(kind)} {kind} in the image?",
        f"No, there is no {kind} in the image. It shows {names}.",
        "no",
        "No.",
        (
            f"Yes, there is {article(colour)} {colour} {kind} {PLACES[place]}.",
            f"Yes, {article(kind)} {kind} is partly hidden {PLACES[place]}.",
            f"Yes, there are two {plural(kind)} in the image.",
        ),
    )


def qa_background(scene: Scene, rng: random.Random) -> QA:
    other, third = rng.sample([b for b in BACKGROUNDS if b != scene.background], 2)
    return QA(
        "background",
        rng.choice(["What colour is the background?", "What does the background of the image look like?"]),
        f"The background is plain {scene.background}.",
        scene.background,
        f"{cap(scene.background)}.",
        (
            f"The background is plain {other}.",
            f"The background is {third} with white clouds.",
            "The objects stand on a wooden floor.",
        ),
    )


def qa_what_at(scene: Scene, rng: random.Random) -> QA:
    t = rng.choice(scene.things)
    absent = _absent(scene, rng)
    return QA(
        "what_at",
        f"What object is {PLACES[t.place]} of the image?",
        f"{cap(named(t))} is {PLACES[t.place]} of the image.",
        t.kind,
        f"{cap(article(t.kind))} {t.kind}.",
        (
            f"{cap(article(absent))} {absent} is {PLACES[t.place]} of the image.",
            f"There is nothing {PLACES[t.place]}.",
            f"Two {plural(absent)} are {PLACES[t.place]} of the image.",
        ),
    )


def qa_uses(scene: Scene, rng: random.Random) -> QA:
    things = scene.things[:2]
    uses = [f"the {t.kind} for {OBJECTS[t.kind][2]}" for t in things]
    wrong = [f"the {t.kind} for {OBJECTS[_absent(scene, rng)][2]}" for t in things]
    return QA(
        "uses",
        rng.choice(
            ["What could the objects in this picture be used for?", "What might someone do with these objects?"]
        ),
        f"Someone could use {listing(uses)}.",
        OBJECTS[things[0].kind][2],
        cap(OBJECTS[things[0].kind][2]) + ".",
        (
            f"Someone could use {listing(wrong)}.",
            "These objects are parts of a car engine.",
            "They have no use at all.",
        ),
    )


def qa_compare(scene: Scene, rng: random.Random) -> QA:
    if len(scene.things) < 2:
        return qa_colour(scene, rng)
    a, b = rng.sample(scene.things[:3], 2)
    same = a.colour == b.colour
    truth = (
        f"Yes, the {a.kind} and the {b.kind} are both {a.colour}."
        if same
        else f"No, the {a.kind} is {a.colour} and the {b.kind} is {b.colour}."
    )
    false_colour = _colour_for("ball", scene.background, rng, avoid=a.colour)
    return QA(
        "compare",
        f"Are the {a.kind} and the {b.kind} the same colour?",
        truth,
        "yes" if same else "no",
        "Yes." if same else "No.",
        (
            f"No, the {a.kind} is {false_colour} and the {b.kind} is {a.colour}."
            if same
            else f"Yes, the {a.kind} and the {b.kind} are both {a.colour}.",
            f"The {a.kind} and the {b.kind} are both {false_colour}.",
            f"There is no {b.kind} in the image.",
        ),
    )


CONVERSATION = (qa_colour, qa_place, qa_count, qa_exists, qa_absent, qa_background, qa_what_at, qa_uses)


def qa_sign(scene: Scene, rng: random.Random) -> QA:
    label = scene.label
    number = label.isdigit()
    wrong = rng.choice([w for w in (NUMBERS if number else WORDS) if w != label])
    question = (
        rng.choice(["What number is written on the sign?", "What number is shown on the sign?"])
        if number
        else rng.choice(["What word is written on the sign?", "What does the sign say?"])
    )
    return QA(
        "sign",
        question,
        f'The sign says "{label}".',
        label,
        f"{label}.",
        (f'The sign says "{wrong}".', "The sign is blank.", "There is no sign in the image."),
    )


# ------------------------------------------------------------------------------------------- file writers

IMAGE_FEATURE = {"_type": "Image"}
IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def _value(dtype: str) -> dict:
    return {"dtype": dtype, "_type": "Value"}


def _features(schema: pa.Schema, images: set[str]) -> dict:
    """The ``datasets`` features of an arrow schema (as the Hub's parquet files carry them in their metadata)."""

    def of(name: str, typ: pa.DataType):
        if name in images:
            return IMAGE_FEATURE
        if pa.types.is_struct(typ):
            return {typ.field(i).name: of("", typ.field(i).type) for i in range(typ.num_fields)}
        if pa.types.is_list(typ):
            return {"feature": of("", typ.value_type), "_type": "Sequence"}
        names = {pa.string(): "string", pa.int64(): "int64", pa.bool_(): "bool", pa.int32(): "int32"}
        return _value(names[typ])

    return {f.name: of(f.name, f.type) for f in schema}


def write_parquet(path: Path, fields: list[tuple[str, pa.DataType]], rows: list[dict]) -> None:
    """A parquet file as ``datasets`` writes it to the Hub: image columns are struct<bytes, path> and the schema
    metadata holds the features."""
    images = {name for name, typ in fields if typ == IMAGE_TYPE}
    schema = pa.schema(fields)
    meta = {"info": {"features": _features(schema, images)}}
    schema = schema.with_metadata({"huggingface": json.dumps(meta)})
    table = pa.Table.from_pylist(rows, schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def image_cell(data: bytes, name: str | None = None) -> dict:
    return {"bytes": data, "path": name}


def write_zip(path: Path, members: dict[str, bytes]) -> None:
    """A zip archive with fixed member dates (the same bytes every time)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=(2023, 12, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            archive.writestr(info, members[name])


def write_json(path: Path, value, indent: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=indent, ensure_ascii=False) + "\n", encoding="utf-8")


def card(path: Path, title: str, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"---\nlicense: cc-by-4.0\npretty_name: {title}\n---\n# {title} (rehearsal mirror)\n\n{body}\n"
        "Synthetic stand-in written by tests/rehearsal/mirrors.py in the layout of the real repository.\n",
        encoding="utf-8",
    )


class Corpus:
    """Every text the mirrors hold, in first-seen order, each once."""

    def __init__(self):
        self.texts: dict[str, None] = {}

    def add(self, *texts: str) -> None:
        for text in texts:
            text = " ".join(str(text).split())
            if text:
                self.texts.setdefault(text, None)

    def add_qa(self, qa: QA) -> None:
        self.add(qa.question, qa.answer, qa.terse, *qa.wrong)

    def write(self, path: Path) -> None:
        path.write_text("".join(f"{t}\n" for t in self.texts), encoding="utf-8")


# ----------------------------------------------------------------------------------------- the pair sources


def _coco_name(split: str, image_id: int) -> str:
    return f"COCO_{split}_{image_id:012d}"


def _human(prompt: str, rng: random.Random) -> str:
    return f"<image>\n{prompt}" if rng.random() < 0.7 else f"{prompt}\n<image>"


def write_povid(out: Path, images_out: Path, rng: random.Random, n: int, corpus: Corpus) -> list[str]:
    """POVID's JSON array (LLaVA conversation format) and the COCO train2014 images it names; ~3/4 of the images
    have one question, the rest two (as LLaVA-Instruct asks several questions about one image). Returns the detailed-
    description prompts it used (VLFeedback reuses them)."""
    m = max(1, (3 * n + 3) // 4)
    scenes = [random_scene(rng) for _ in range(m)]
    image_ids = sorted(rng.sample(range(9, 581_930), m))
    records, asked, detail_prompts = [], {}, []
    for i in range(n):
        j = i if i < m else (i - m) % m
        scene, name = scenes[j], _coco_name("train2014", image_ids[j])
        if i < m and i % 2 == 0:
            qa = qa_detail(scene, rng, DETAIL_PROMPTS[(i // 2) % len(DETAIL_PROMPTS)])
            detail_prompts.append(qa.question)
        else:
            makers = [f for f in CONVERSATION if f.__name__ not in asked.get(j, ())]
            maker = makers[rng.randrange(len(makers))]
            qa = maker(scene, rng)
            asked.setdefault(j, set()).add(maker.__name__)
        asked.setdefault(j, set()).add(qa.kind)
        human = _human(qa.question, rng)
        records.append(
            {
                "id": name,
                "image": f"{name}.jpg",
                "conversations": [{"from": "human", "value": human}, {"from": "gpt", "value": qa.answer}],
                "rejected_conversations": [{"from": "human", "value": human}, {"from": "gpt", "value": qa.wrong[0]}],
            }
        )
        corpus.add(qa.question, qa.answer, qa.wrong[0])
    write_json(out / "POVID_preference_data_for_VLLMs.json", records, indent=2)
    card(
        out / "README.md",
        "POVID preference data for VLLMs",
        "Preference data in LLaVA's conversation format: `conversations` holds the chosen answer, "
        "`rejected_conversations` the dispreferred one. Images: COCO 2014 train.",
    )
    images_out.mkdir(parents=True, exist_ok=True)
    for scene, image_id in zip(scenes, image_ids):
        (images_out / f"{_coco_name('train2014', image_id)}.jpg").write_bytes(render(scene))
    return list(dict.fromkeys(detail_prompts))


VLF_MODELS = (
    "gpt-4v",
    "llava-v1.5-7b",
    "llava-v1.5-13b",
    "qwen-vl-chat",
    "instructblip-vicuna-7b",
    "instructblip-vicuna-13b",
    "idefics-9b-instruct",
    "fuyu-8b",
    "llava-rlhf-13b-v1.5-336",
)
VLF_CHOSEN = ("gpt-4v", "llava-v1.5-7b", "gpt-4v", "llava-v1.5-7b", None)  # None: one of the other models
VLF_SOURCES = ("LLaVA-detail", "svit-conversation", "LLaVA-conversation", "m3it-coco", "lrv-instruction", "comvint")
# (Helpfulness, Ethical Considerations, Visual Faithfulness) by rank: means strictly decrease, no ties
VLF_RATINGS = (((5, 5, 5), (5, 5, 4)), ((4, 5, 4),), ((3, 5, 2), (2, 5, 3)), ((1, 5, 1), (2, 4, 1)))
VLF_RATIONALES = {
    "Helpfulness": (
        "The response answers the question fully and clearly.",
        "The response is correct but very brief.",
        "The response answers the question but gets one detail wrong.",
        "The response does not answer the question correctly.",
    ),
    "Ethical Considerations": (
        "The response is harmless and respectful.",
        "The response raises no ethical concerns.",
        "The response is harmless.",
        "The response is harmless, though it is wrong.",
    ),
    "Visual Faithfulness": (
        "Every detail in the response matches the image.",
        "What it says matches the image, but it leaves out details.",
        "It mentions something that does not match the image.",
        "Most of what it describes is not in the image.",
    ),
}


def write_vlfeedback(out: Path, rng: random.Random, n: int, povid_prompts: list[str], corpus: Corpus) -> None:
    """vlfeedback_80k.jsonl (4 rated completions per prompt) and merged_images.zip (merged_images/<id>.jpg)."""
    lines, members, numbers = [], {}, sorted(rng.sample(range(1, 99_999), n))
    for i in range(n):
        scene = random_scene(rng)
        if i % 2 == 0 and povid_prompts:
            source = "LLaVA-detail"
            qa = qa_detail(scene, rng, povid_prompts[(i // 2) % len(povid_prompts)])
        else:
            source = VLF_SOURCES[1 + rng.randrange(len(VLF_SOURCES) - 1)]
            qa = CONVERSATION[rng.randrange(len(CONVERSATION))](scene, rng)
        record_id = f"{source}-{numbers[i]}"
        chosen = VLF_CHOSEN[i % len(VLF_CHOSEN)] or rng.choice(VLF_MODELS[2:])
        models = [chosen, *rng.sample([m for m in VLF_MODELS if m != chosen], 3)]
        responses = [qa.answer, qa.terse, qa.wrong[0], qa.wrong[rng.choice([1, 2])]]
        order = list(range(4))
        rng.shuffle(order)
        completions = []
        for rank in order:
            ratings = rng.choice(VLF_RATINGS[rank])
            annotations = {
                aspect: {"Rating": str(rating), "Rationale": VLF_RATIONALES[aspect][rank]}
                for aspect, rating in zip(VLF_RATIONALES, ratings)
            }
            completions.append({"annotations": annotations, "model": models[rank], "response": responses[rank]})
            corpus.add(responses[rank], *(a["Rationale"] for a in annotations.values()))
        record = {"id": record_id, "prompt": qa.question, "models": [c["model"] for c in completions]}
        record["completions"] = completions
        lines.append(json.dumps(record, ensure_ascii=False))
        members[f"merged_images/{record_id}.jpg"] = render(scene)
        corpus.add(qa.question)
    out.mkdir(parents=True, exist_ok=True)
    (out / "vlfeedback_80k.jsonl").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    write_zip(out / "merged_images.zip", members)
    card(
        out / "README.md",
        "VLFeedback",
        "Each prompt has 4 responses from different models, each rated for Helpfulness, Ethical Considerations and "
        "Visual Faithfulness. Images: merged_images.zip, merged_images/<id>.jpg.",
    )


def write_rlhfv(out: Path, rng: random.Random, n: int, corpus: Corpus) -> None:
    """RLHF-V-Dataset.parquet: human-corrected (chosen) vs original (rejected) answers, images inside."""
    rows = []
    origins = ("VQAv2", "UniMM-Chat", "COCO", "OK-VQA")
    for i in range(n):
        scene = random_scene(rng)
        detailed = i % 3 == 0
        qa = qa_detail(scene, rng) if detailed else CONVERSATION[rng.randrange(len(CONVERSATION))](scene, rng)
        rejected = qa.wrong[1] if detailed else qa.wrong[0]
        origin = origins[i % len(origins)]
        split = {"model": "muffin", "type": "detailed_description" if detailed else "question_answering"}
        rows.append(
            {
                "ds_name": "RLHF-V",
                "image": image_cell(render(scene)),
                "text": json.dumps({"question": qa.question, "chosen": qa.answer, "rejected": rejected}),
                "origin_dataset": origin,
                "origin_split": base64.b64encode(json.dumps(split).encode()).decode(),
                "idx": i,
                "image_path": f"{origin}/{i:06d}.jpg",
            }
        )
        corpus.add(qa.question, qa.answer, rejected)
    fields = [
        ("ds_name", pa.string()),
        ("image", IMAGE_TYPE),
        ("text", pa.string()),
        ("origin_dataset", pa.string()),
        ("origin_split", pa.string()),
        ("idx", pa.int64()),
        ("image_path", pa.string()),
    ]
    write_parquet(out / "RLHF-V-Dataset.parquet", fields, rows)
    card(
        out / "README.md",
        "RLHF-V-Dataset",
        'text: preference data. Each data item contains a dict with the keys "question", "chosen", and "rejected".',
    )


# ----------------------------------------------------------------------------------------- the benchmarks


def write_pope(out: Path, rng: random.Random, images: int, corpus: Corpus) -> None:
    """data/test-00000-of-00001.parquet: yes/no questions in the random, popular and adversarial categories; the
    same COCO val2014 images in each category, one present and one absent object asked about per image."""
    scenes = [random_scene(rng) for _ in range(images)]
    ids = sorted(rng.sample(range(42, 581_900), images))
    rows = []
    for category in ("adversarial", "popular", "random"):
        question_id = 0
        for scene, image_id in zip(scenes, ids):
            present = rng.choice(scene.things).kind
            absent = _absent(scene, rng)
            data = render(scene)
            for kind, answer in ((present, "yes"), (absent, "no")):
                question_id += 1
                question = f"Is there {article(kind)} {kind} in the image?"
                rows.append(
                    {
                        "id": str(len(rows)),
                        "question_id": str(question_id),
                        "question": question,
                        "answer": answer,
                        "image_source": _coco_name("val2014", image_id),
                        "image": image_cell(data),
                        "category": category,
                    }
                )
                corpus.add(question, answer)
    fields = [
        ("id", pa.string()),
        ("question_id", pa.string()),
        ("question", pa.string()),
        ("answer", pa.string()),
        ("image_source", pa.string()),
        ("image", IMAGE_TYPE),
        ("category", pa.string()),
    ]
    write_parquet(out / "data" / "test-00000-of-00001.parquet", fields, rows)
    card(out / "README.md", "POPE", "Polling-based object probing: yes/no questions on COCO val2014 images.")


MMHAL_TYPES = {  # MMHal-Bench's question types -> the question asked
    "attribute": qa_colour,
    "adversarial": qa_absent,
    "comparison": qa_compare,
    "counting": qa_count,
    "relation": qa_what_at,
    "environment": qa_background,
    "holistic": qa_detail,
    "other": qa_uses,
}


def write_mmhal(out: Path, rng: random.Random, b: int, corpus: Corpus) -> None:
    """response_template.json (MMHal-Bench's records) and test_data.zip (the images, named after image_src)."""
    records, members = [], {}
    types = list(MMHAL_TYPES)
    for i in range(b):
        scene = random_scene(rng)
        qtype = types[i % len(types)]
        qa = MMHAL_TYPES[qtype](scene, rng)
        image_id = f"{rng.getrandbits(64):016x}"
        src = f"https://c{rng.randint(1, 8)}.staticflickr.com/{rng.randint(1, 9)}/{rng.randint(1000, 9999)}/"
        name = f"{rng.randint(10**9, 10**10 - 1)}_{rng.getrandbits(40):010x}_o.jpg"
        records.append(
            {
                "question_type": qtype,
                "question_topic": rng.choice(["toys", "signs", "household objects"]),
                "image_id": image_id,
                "image_src": src + name,
                "image_content": [OBJECTS[t.kind][1] for t in scene.things],
                "question": qa.question,
                "gt_answer": qa.answer,
                "model_answer": "",
            }
        )
        members[f"test_data/images/{name}"] = render(scene)
        corpus.add(qa.question, qa.answer)
    write_json(out / "response_template.json", records, indent=4)
    write_zip(out / "test_data.zip", members)
    card(
        out / "README.md",
        "MMHal-Bench",
        "96 image-question pairs with ground-truth answers and image contents: see `response_template.json`; "
        "images in `test_data.zip`.",
    )


def write_llavaw(out: Path, rng: random.Random, b: int, corpus: Corpus) -> None:
    """data/train-00000-of-00001.parquet: questions in three categories, GPT-4 answers and a caption per image."""
    rows = []
    categories = (("conv", None), ("detail", qa_detail), ("complex", qa_uses))
    scene = None
    for i in range(b):
        if i % 2 == 0:
            scene = random_scene(rng)
        category, maker = categories[i % len(categories)]
        qa = (maker or CONVERSATION[rng.randrange(len(CONVERSATION))])(scene, rng)
        caption = describe(scene, 2)
        rows.append(
            {
                "question_id": i,
                "question": qa.question,
                "image": image_cell(render(scene)),
                "caption": caption,
                "gpt_answer": qa.answer,
                "category": category,
                "image_id": f"{i // 2 + 1:03d}",
            }
        )
        corpus.add(qa.question, qa.answer, caption)
    fields = [
        ("question_id", pa.int64()),
        ("question", pa.string()),
        ("image", IMAGE_TYPE),
        ("caption", pa.string()),
        ("gpt_answer", pa.string()),
        ("category", pa.string()),
        ("image_id", pa.string()),
    ]
    write_parquet(out / "data" / "train-00000-of-00001.parquet", fields, rows)
    card(out / "README.md", "LLaVA-Bench (In-the-Wild)", "Questions with GPT-4 reference answers and image captions.")


MMVET_QUESTIONS = (  # (question maker, capabilities, answer alternatives)
    (qa_colour, "rec", lambda qa: qa.short),
    (qa_count, "rec,math", lambda qa: f"{qa.short} <OR> {NUMBER_WORDS[int(qa.short)]}"),
    (qa_what_at, "rec,spat", lambda qa: qa.short),
    (qa_sign, "ocr", lambda qa: qa.short),
    (qa_uses, "rec,know,gen", lambda qa: qa.answer),
    (qa_compare, "rec,spat", lambda qa: qa.short),
)


def write_mmvet(out: Path, rng: random.Random, b: int, corpus: Corpus) -> None:
    """data/test-00000-of-00001.parquet: questions, ground-truth answers (with <OR>) and capabilities, PNG images."""
    rows = []
    for i in range(b):
        maker, capability, truth = MMVET_QUESTIONS[i % len(MMVET_QUESTIONS)]
        scene = sign_scene(rng, rng.choice(WORDS + NUMBERS)) if maker is qa_sign else random_scene(rng)
        qa = maker(scene, rng)
        if maker is qa_compare and qa.kind == "colour":  # one object: a colour question instead
            capability = "rec"
        answer = truth(qa)
        rows.append(
            {
                "question_id": f"v1_{i}",
                "image": image_cell(render(scene, "PNG")),
                "question": qa.question,
                "answer": answer,
                "image_source": f"v1_{i}.png",
                "capability": capability,
            }
        )
        corpus.add(qa.question, qa.answer, *answer.split(" <OR> "))
    fields = [
        ("question_id", pa.string()),
        ("image", IMAGE_TYPE),
        ("question", pa.string()),
        ("answer", pa.string()),
        ("image_source", pa.string()),
        ("capability", pa.string()),
    ]
    write_parquet(out / "data" / "test-00000-of-00001.parquet", fields, rows)
    card(
        out / "README.md", "MM-Vet", "Integrated capabilities: recognition, OCR, knowledge, generation, spatial, math."
    )


def write_textvqa(out: Path, rng: random.Random, b: int, corpus: Corpus) -> None:
    """data/validation-00000-of-00001.parquet: questions about the text on a sign, 10 human answers each."""
    rows = []
    for i in range(b):
        label = (WORDS + NUMBERS)[(i * 5 + rng.randrange(3)) % len(WORDS + NUMBERS)]
        scene = sign_scene(rng, label)
        qa = qa_sign(scene, rng)
        variants = [f"{label} sign", f"the {label}", label.upper()] if not label.isdigit() else [f"number {label}"]
        answers = [label] * 7 + [rng.choice(variants) for _ in range(3)]
        rng.shuffle(answers)
        image_id = f"{rng.getrandbits(64):016x}"
        width, height = scene.size
        rows.append(
            {
                "image_id": image_id,
                "question_id": 34602 + i,
                "question": qa.question.lower(),
                "question_tokens": re.findall(r"[a-z]+", qa.question.lower()),
                "image": image_cell(render(scene)),
                "image_width": width,
                "image_height": height,
                "flickr_original_url": f"https://farm1.staticflickr.com/{image_id}_o.jpg",
                "flickr_300k_url": f"https://c1.staticflickr.com/{image_id}_z.jpg",
                "answers": answers,
                "image_classes": ["Sign"],
                "set_name": "val",
                "ocr_tokens": [label],
            }
        )
        corpus.add(qa.question.lower(), qa.answer, *answers)
    fields = [
        ("image_id", pa.string()),
        ("question_id", pa.int64()),
        ("question", pa.string()),
        ("question_tokens", pa.list_(pa.string())),
        ("image", IMAGE_TYPE),
        ("image_width", pa.int64()),
        ("image_height", pa.int64()),
        ("flickr_original_url", pa.string()),
        ("flickr_300k_url", pa.string()),
        ("answers", pa.list_(pa.string())),
        ("image_classes", pa.list_(pa.string())),
        ("set_name", pa.string()),
        ("ocr_tokens", pa.list_(pa.string())),
    ]
    write_parquet(out / "data" / "validation-00000-of-00001.parquet", fields, rows)
    card(out / "README.md", "TextVQA", "Questions that need reading the text in the image; 10 answers per question.")


def _gqa_question(scene: Scene, rng: random.Random, k: int) -> tuple[str, str, str, dict]:
    """(question, answer, full answer, types) of GQA's kinds: query, verify, choose, logical."""
    t = rng.choice(scene.things)
    if k == 0:
        return (
            f"What color is the {t.kind}?",
            t.colour,
            f"The {t.kind} is {t.colour}.",
            {"structural": "query", "semantic": "attr", "detailed": "color"},
        )
    if k == 1:
        kind = _absent(scene, rng) if rng.random() < 0.5 else t.kind
        yes = kind in scene.kinds()
        full = f"Yes, there is {article(kind)} {kind}." if yes else f"No, there is no {kind}."
        return (
            f"Is there {article(kind)} {kind} in the picture?",
            "yes" if yes else "no",
            full,
            {"structural": "verify", "semantic": "obj", "detailed": "exist"},
        )
    if k == 2:
        other = _colour_for("ball", scene.background, rng, avoid=t.colour)
        pair = [t.colour, other] if rng.random() < 0.5 else [other, t.colour]
        return (
            f"Is the {t.kind} {pair[0]} or {pair[1]}?",
            t.colour,
            f"The {t.kind} is {t.colour}.",
            {"structural": "choose", "semantic": "attr", "detailed": "chooseAttr"},
        )
    return (
        f"What is the object {PLACES[t.place]}?",
        t.kind,
        f"The object is {article(t.kind)} {t.kind}.",
        {"structural": "query", "semantic": "obj", "detailed": "place"},
    )


def write_gqa(out: Path, rng: random.Random, b: int, corpus: Corpus) -> None:
    """testdev_balanced_instructions/ (questions) and testdev_balanced_images/ (images by id) parquet files."""
    questions, images = [], []
    question_ids = sorted(rng.sample(range(20_000_000, 30_000_000), b))
    for i in range(b):
        if i % 2 == 0:
            scene = random_scene(rng)
            image_id = f"n{rng.randint(10**5, 10**6 - 1)}"
            images.append({"id": image_id, "image": image_cell(render(scene))})
        question, answer, full, types = _gqa_question(scene, rng, i % 4)
        questions.append(
            {
                "id": str(question_ids[i]),
                "imageId": image_id,
                "question": question,
                "answer": answer,
                "fullAnswer": full,
                "isBalanced": True,
                "groups": {"global": types["detailed"], "local": f"{types['structural']}-{types['semantic']}"},
                "types": types,
                "semanticStr": f"select: {answer}",
            }
        )
        corpus.add(question, answer, full)
    struct = pa.struct([("structural", pa.string()), ("semantic", pa.string()), ("detailed", pa.string())])
    fields = [
        ("id", pa.string()),
        ("imageId", pa.string()),
        ("question", pa.string()),
        ("answer", pa.string()),
        ("fullAnswer", pa.string()),
        ("isBalanced", pa.bool_()),
        ("groups", pa.struct([("global", pa.string()), ("local", pa.string())])),
        ("types", struct),
        ("semanticStr", pa.string()),
    ]
    write_parquet(out / "testdev_balanced_instructions" / "testdev-00000-of-00001.parquet", fields, questions)
    write_parquet(
        out / "testdev_balanced_images" / "testdev-00000-of-00001.parquet",
        [("id", pa.string()), ("image", IMAGE_TYPE)],
        images,
    )
    card(out / "README.md", "GQA", "testdev-balanced: compositional questions (instructions) and their images.")


# COCO 2014's 80 instance categories: supercategory -> "id name, id name, ..."
COCO_SUPERCATEGORIES = {
    "person": "1 person",
    "vehicle": "2 bicycle, 3 car, 4 motorcycle, 5 airplane, 6 bus, 7 train, 8 truck, 9 boat",
    "outdoor": "10 traffic light, 11 fire hydrant, 13 stop sign, 14 parking meter, 15 bench",
    "animal": "16 bird, 17 cat, 18 dog, 19 horse, 20 sheep, 21 cow, 22 elephant, 23 bear, 24 zebra, 25 giraffe",
    "accessory": "27 backpack, 28 umbrella, 31 handbag, 32 tie, 33 suitcase",
    "sports": "34 frisbee, 35 skis, 36 snowboard, 37 sports ball, 38 kite, 39 baseball bat, 40 baseball glove, "
    "41 skateboard, 42 surfboard, 43 tennis racket",
    "kitchen": "44 bottle, 46 wine glass, 47 cup, 48 fork, 49 knife, 50 spoon, 51 bowl",
    "food": "52 banana, 53 apple, 54 sandwich, 55 orange, 56 broccoli, 57 carrot, 58 hot dog, 59 pizza, 60 donut, "
    "61 cake",
    "furniture": "62 chair, 63 couch, 64 potted plant, 65 bed, 67 dining table, 70 toilet",
    "electronic": "72 tv, 73 laptop, 74 mouse, 75 remote, 76 keyboard, 77 cell phone",
    "appliance": "78 microwave, 79 oven, 80 toaster, 81 sink, 82 refrigerator",
    "indoor": "84 book, 85 clock, 86 vase, 87 scissors, 88 teddy bear, 89 hair drier, 90 toothbrush",
}
COCO_CATEGORIES = sorted(
    (int(entry.split(" ", 1)[0]), entry.split(" ", 1)[1], supercategory)
    for supercategory, entries in COCO_SUPERCATEGORIES.items()
    for entry in entries.split(", ")
)  # (id, name, supercategory)
OBJHAL_PROMPTS = (  # Object HalBench's detailed-description prompts
    "What is this photo about? Please answer in great detail.",
    "Provide a thorough description of the given picture.",
    "Describe this image in detail.",
    "Please provide a detailed description of the image.",
)


def coco_captions(scene: Scene) -> list[str]:
    """Five COCO-style captions, naming only objects that are in the picture."""
    names = [named(t) for t in scene.things]
    first = scene.things[0]
    return [
        f"{cap(listing(names))} on a plain {scene.background} background.",
        f"A simple drawing of {listing([f'{article(t.kind)} {t.kind}' for t in scene.things])}.",
        f"{cap(named(first))} sits {PLACES[first.place]} of the picture.",
        f"A picture with {listing(names)}.",
        f"Simple shapes drawn on a {scene.background} background.",
    ]


def write_objhal(out: Path, annotations_out: Path, rng: random.Random, b: int, corpus: Corpus) -> None:
    """obj_halbench_300_with_image.jsonl (COCO val2014 image id, base64 image, prompt) and the COCO 2014
    annotations of those images: instances_val2014.json and captions_val2014.json (CHAIR's ground truth)."""
    ids = sorted(rng.sample(range(42, 581_900), b))
    lines, images, instances, captions = [], [], [], []
    for i, image_id in enumerate(ids):
        scene = random_scene(rng)
        data = render(scene)
        prompt = OBJHAL_PROMPTS[i % len(OBJHAL_PROMPTS)]
        lines.append(json.dumps({"image_id": image_id, "image": base64.b64encode(data).decode(), "question": prompt}))
        width, height = scene.size
        images.append(
            {
                "license": 3,
                "file_name": f"{_coco_name('val2014', image_id)}.jpg",
                "coco_url": f"http://images.cocodataset.org/val2014/{_coco_name('val2014', image_id)}.jpg",
                "height": height,
                "width": width,
                "date_captured": "2013-11-14 16:28:13",
                "id": image_id,
            }
        )
        category = {name: cid for cid, name, _ in COCO_CATEGORIES}
        for t in scene.things:
            x0, y0, x1, y1 = t.box
            instances.append(
                {
                    "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]],
                    "area": float((x1 - x0) * (y1 - y0)),
                    "iscrowd": 0,
                    "image_id": image_id,
                    "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                    "category_id": category[OBJECTS[t.kind][0]],
                    "id": 100_000 + len(instances),
                }
            )
        for text in coco_captions(scene):
            captions.append({"image_id": image_id, "id": 200_000 + len(captions), "caption": text})
            corpus.add(text)
        corpus.add(prompt)
    out.mkdir(parents=True, exist_ok=True)
    (out / "obj_halbench_300_with_image.jsonl").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    info = {
        "description": "COCO 2014 Dataset (rehearsal mirror)",
        "url": "http://cocodataset.org",
        "version": "1.0",
        "year": 2014,
        "contributor": "COCO Consortium",
        "date_created": "2017/09/01",
    }
    licenses = [{"url": "http://creativecommons.org/licenses/by-nc-sa/2.0/", "id": 3, "name": "CC BY-NC-SA 2.0"}]
    categories = [{"supercategory": s, "id": cid, "name": name} for cid, name, s in COCO_CATEGORIES]
    write_json(
        annotations_out / "instances_val2014.json",
        {"info": info, "images": images, "licenses": licenses, "annotations": instances, "categories": categories},
    )
    write_json(
        annotations_out / "captions_val2014.json",
        {"info": info, "images": images, "licenses": licenses, "annotations": captions},
    )


# ------------------------------------------------------------------------------------------------- API


def benchmark_size(n: int) -> int:
    """Items per benchmark (POPE aside) for pair sources of n records."""
    return max(6, min(12, n // 2))


def write_mirrors(root: Path, *, n: int = 24, seed: int = 0) -> dict[str, Path]:
    """Write every mirror under root (root/<download name>, each rewritten from scratch) and root/corpus.txt;
    return {download name: mirror dir}. See the module docstring for what each holds."""
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n}")
    root = Path(root)
    dirs = {name: root / name for name in DOWNLOADS}
    for path in dirs.values():
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
    corpus = Corpus()
    b = benchmark_size(n)

    def rng(name: str) -> random.Random:  # one stream per mirror: changing one leaves the others as they were
        return random.Random(f"mmalign-rehearsal:{seed}:{name}")

    povid_prompts = write_povid(dirs["povid"], dirs["coco-train2014"], rng("povid"), n, corpus)
    write_vlfeedback(dirs["vlfeedback"], rng("vlfeedback"), n, povid_prompts, corpus)
    write_rlhfv(dirs["rlhfv"], rng("rlhfv"), n, corpus)
    write_pope(dirs["pope"], rng("pope"), 2 if n >= 8 else 1, corpus)
    write_mmhal(dirs["mmhal-bench"], rng("mmhal-bench"), b, corpus)
    write_llavaw(dirs["llava-bench-in-the-wild"], rng("llava-bench-in-the-wild"), b, corpus)
    write_mmvet(dirs["mmvet"], rng("mmvet"), b, corpus)
    write_textvqa(dirs["textvqa"], rng("textvqa"), b, corpus)
    write_gqa(dirs["gqa"], rng("gqa"), b, corpus)
    write_objhal(dirs["object-halbench"], dirs["coco-annotations-2014"], rng("object-halbench"), b, corpus)
    corpus.write(root / CORPUS_FILE)
    return dirs


def all_texts(root: Path) -> list[str]:
    """Every text of the mirrors written under root (the lines of root/corpus.txt), for training a tokenizer."""
    return (Path(root) / CORPUS_FILE).read_text(encoding="utf-8").splitlines()


def mirrored_downloads(downloads: dict, mirrors: dict[str, Path]) -> dict:
    """A copy of a config's ``downloads`` with ``mirror`` set for every mirrored entry; the others are left as
    they are."""
    out = copy.deepcopy(downloads)
    for name, path in mirrors.items():
        out[name]["mirror"] = str(path)
    return out
