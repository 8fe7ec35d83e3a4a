"""The world's language: task families, templated answers, a parser back to claims, and judging.

Every answer is generated together with the *claims* it makes (``Answer.claims``); ``parse`` turns
any text in the world's language back into claims, so an answer written by a model can be compared
with the scene's ground truth. Tests check that ``parse(answer.text) == answer.claims`` for every
template.

Hallucinations are injected by *corrupting the scene along its priors* and answering the same
question about the corrupted scene with the same template choices: the rejected answer then has
the chosen answer's wording and differs only in the facts, like POVID's GPT-4V corruptions.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace

from .world import COLOURS, LETTERS, POSITION_WORDS, SHAPES, SIZES, Scene, SceneObject, WorldSettings

NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
FAMILIES = ["description", "existence", "attribute", "count", "position", "letter", "compositional"]
SHORT_SUFFIX = "answer with one word."  # appended to yes/no questions that want a bare yes or no

DESCRIPTION_PROMPTS = ["describe the image in detail.", "what do you see in the image?", "describe this picture."]
EXISTENCE_PROMPTS = ["is there a {shape} in the image?", "does the image contain a {shape}?"]
ATTRIBUTE_PROMPTS = {"colour": "what colour is the {shape}?", "size": "is the {shape} small or large?"}
COUNT_PROMPTS = ["how many objects are in the image?", "how many shapes can you see?"]
POSITION_PROMPTS = ["where is the {shape}?", "where is the {shape} in the image?"]
LETTER_PROMPTS = ["what letter is on the {shape}?", "which letter is written on the {shape}?"]
COMPOSITIONAL_PROMPTS = ["what colour is the shape at the {pos}?", "what shape is at the {pos}?"]

COUNT_TEMPLATES = [
    "there {be} {n} {noun} in the image.",
    "the image shows {n} {noun}.",
    "i can see {n} {noun}.",
]
OBJECT_TEMPLATES = [
    "a {size} {colour} {shape} is at the {pos}.",
    "there is a {size} {colour} {shape} at the {pos}.",
    "at the {pos} there is a {size} {colour} {shape}.",
]


@dataclass(frozen=True)
class Claim:
    """One checkable statement. Unspecified attributes are None."""

    kind: str  # object | absent | count | letter | answer
    shape: str | None = None
    colour: str | None = None
    size: str | None = None
    position: str | None = None
    letter: str | None = None
    count: int | None = None
    answer: str | None = None


@dataclass(frozen=True)
class Task:
    family: str
    prompt: str
    shape: str | None = None
    position: str | None = None
    attribute: str | None = None
    short: bool = False  # yes/no question that asks for one word


@dataclass(frozen=True)
class Answer:
    text: str
    claims: tuple[Claim, ...]


# ---------------------------------------------------------------------------------------- tasks


def make_task(family: str, scene: Scene, rng: random.Random, short: bool | None = None) -> Task:
    """Draw one question of a family about a scene (existence questions mix present and absent shapes)."""
    objs = scene.objects
    if family == "description":
        return Task(family, rng.choice(DESCRIPTION_PROMPTS))
    if family == "existence":
        shape = (
            rng.choice(objs).shape if rng.random() < 0.5 else rng.choice([s for s in SHAPES if s not in scene.shapes])
        )
        return existence_task(shape, rng, short=rng.random() < 0.5 if short is None else short)
    if family == "attribute":
        attribute = rng.choice(["colour", "colour", "size"])
        shape = rng.choice(objs).shape
        return Task(family, ATTRIBUTE_PROMPTS[attribute].format(shape=shape), shape=shape, attribute=attribute)
    if family == "count":
        return Task(family, rng.choice(COUNT_PROMPTS))
    if family == "position":
        shape = rng.choice(objs).shape
        return Task(family, rng.choice(POSITION_PROMPTS).format(shape=shape), shape=shape)
    if family == "letter":
        with_letter = [o for o in objs if o.letter]
        obj = rng.choice(with_letter) if with_letter and rng.random() < 0.7 else rng.choice(objs)
        return Task(family, rng.choice(LETTER_PROMPTS).format(shape=obj.shape), shape=obj.shape)
    if family == "compositional":
        obj = rng.choice(objs)
        template = rng.choice(COMPOSITIONAL_PROMPTS)
        attribute = "colour" if "colour" in template else "shape"
        return Task(family, template.format(pos=obj.position), position=obj.position, attribute=attribute)
    raise ValueError(f"unknown task family {family!r}; known: {FAMILIES}")


def existence_task(shape: str, rng: random.Random, short: bool) -> Task:
    prompt = rng.choice(EXISTENCE_PROMPTS).format(shape=shape)
    if short:
        prompt = f"{prompt} {SHORT_SUFFIX}"
    return Task("existence", prompt, shape=shape, short=short)


# -------------------------------------------------------------------------------------- answers


def _count_sentence(n: int, template: str) -> str:
    noun = "object" if n == 1 else "objects"
    return template.format(be="is" if n == 1 else "are", n=NUMBER_WORDS[n], noun=noun)


def _object_sentence(obj: SceneObject, template: str) -> str:
    return template.format(size=obj.size, colour=obj.colour, shape=obj.shape, pos=obj.position)


def answer(task: Task, scene: Scene, rng: random.Random) -> Answer:
    """The ground-truth answer to a task about a scene. Template choices come from ``rng`` only,
    so answering the same task about a corrupted scene with an identically seeded rng keeps the wording."""
    f = task.family
    if f == "description":
        count_t = rng.choice(COUNT_TEMPLATES)
        object_ts = [rng.choice(OBJECT_TEMPLATES) for _ in range(len(SHAPES))]
        sentences = [_count_sentence(len(scene.objects), count_t)]
        claims = [Claim("count", count=len(scene.objects))]
        for obj, template in zip(scene.objects, object_ts):
            sentences.append(_object_sentence(obj, template))
            claims.append(Claim("object", obj.shape, obj.colour, obj.size, obj.position))
        for obj in scene.objects:
            if obj.letter:
                sentences.append(f"the {obj.shape} has the letter {obj.letter} on it.")
                claims.append(Claim("letter", obj.shape, letter=obj.letter))
        return Answer(" ".join(sentences), tuple(claims))
    obj = scene.find(task.shape) if task.shape else None
    if f == "existence":
        if task.short:
            word = "yes" if obj else "no"
            return Answer(f"{word}.", (Claim("answer", answer=word),))
        if obj:
            text = f"yes, there is a {obj.colour} {obj.shape} at the {obj.position}."
            return Answer(
                text, (Claim("answer", answer="yes"), Claim("object", obj.shape, obj.colour, position=obj.position))
            )
        text = f"no, there is no {task.shape} in the image."
        return Answer(text, (Claim("answer", answer="no"), Claim("absent", task.shape)))
    if f == "attribute":
        value = obj.colour if task.attribute == "colour" else obj.size
        claim = Claim("object", obj.shape, **{"colour" if task.attribute == "colour" else "size": value})
        return Answer(f"the {obj.shape} is {value}.", (claim,))
    if f == "count":
        template = rng.choice(COUNT_TEMPLATES)
        return Answer(_count_sentence(len(scene.objects), template), (Claim("count", count=len(scene.objects)),))
    if f == "position":
        return Answer(
            f"the {obj.shape} is at the {obj.position}.", (Claim("object", obj.shape, position=obj.position),)
        )
    if f == "letter":
        if obj.letter:
            return Answer(
                f"the {obj.shape} has the letter {obj.letter} on it.", (Claim("letter", obj.shape, letter=obj.letter),)
            )
        return Answer(f"there is no letter on the {obj.shape}.", (Claim("letter", obj.shape, letter="none"),))
    if f == "compositional":
        target = next(o for o in scene.objects if o.position == task.position)
        if task.attribute == "colour":
            text = f"the {target.shape} at the {target.position} is {target.colour}."
            return Answer(text, (Claim("object", target.shape, target.colour, position=target.position),))
        text = f"a {target.colour} {target.shape} is at the {target.position}."
        return Answer(text, (Claim("object", target.shape, target.colour, position=target.position),))
    raise ValueError(f"unknown task family {f!r}")


# ------------------------------------------------------------------------------ hallucinations


def _free_cell(scene: Scene, settings: WorldSettings, rng: random.Random) -> tuple[int, int]:
    taken = {(o.row, o.col) for o in scene.objects}
    return rng.choice(
        [rc for rc in POSITION_WORDS if rc not in taken and rc[0] < settings.grid and rc[1] < settings.grid]
    )


def _with_objects(scene: Scene, objects) -> Scene:
    return replace(scene, objects=tuple(sorted(objects, key=lambda o: (o.row, o.col))))


def _prior_object(shape: str, scene: Scene, settings: WorldSettings, rng: random.Random) -> SceneObject:
    row, col = _free_cell(scene, settings, rng)
    return SceneObject(shape, settings.usual_colours[shape], rng.choice(SIZES), row, col)


def corrupt_scene(task: Task, scene: Scene, settings: WorldSettings, rng: random.Random) -> Scene:
    """A scene that differs from the truth the way a prior-driven model would get it wrong,
    in a fact the task's answer states."""
    objs = list(scene.objects)
    absent_partners = [settings.partners[o.shape] for o in objs if settings.partners[o.shape] not in scene.shapes]
    f = task.family
    if f == "description":
        choices = []
        if absent_partners and len(objs) < 9:
            choices.append("add_partner")
        if any(o.colour != settings.usual_colours[o.shape] for o in objs):
            choices.append("usual_colour")
        if absent_partners:
            choices.append("swap_to_partner")
        kind = rng.choice(choices or ["move"])
        if kind == "add_partner":
            return _with_objects(scene, objs + [_prior_object(rng.choice(absent_partners), scene, settings, rng)])
        if kind == "usual_colour":
            i = rng.choice([i for i, o in enumerate(objs) if o.colour != settings.usual_colours[o.shape]])
            objs[i] = replace(objs[i], colour=settings.usual_colours[objs[i].shape])
            return _with_objects(scene, objs)
        if kind == "swap_to_partner":
            i = rng.choice([i for i, o in enumerate(objs) if settings.partners[o.shape] not in scene.shapes])
            partner = settings.partners[objs[i].shape]
            objs[i] = replace(objs[i], shape=partner, colour=settings.usual_colours[partner], letter=None)
            return _with_objects(scene, objs)
        i = rng.randrange(len(objs))
        row, col = _free_cell(scene, settings, rng)
        objs[i] = replace(objs[i], row=row, col=col)
        return _with_objects(scene, objs)
    if f == "existence":
        obj = scene.find(task.shape)
        if obj:  # deny a present object
            return _with_objects(
                scene,
                [o for o in objs if o.shape != task.shape] or [replace(obj, shape=_other_shape(obj.shape, scene, rng))],
            )
        return _with_objects(scene, objs + [_prior_object(task.shape, scene, settings, rng)])
    if f == "count":
        if len(objs) > 1 and rng.random() < 0.5:
            objs.pop(rng.randrange(len(objs)))
            return _with_objects(scene, objs)
        extra = absent_partners[0] if absent_partners else _other_shape(objs[0].shape, scene, rng)
        return _with_objects(scene, objs + [_prior_object(extra, scene, settings, rng)])
    idx = next(
        i
        for i, o in enumerate(objs)
        if (task.shape and o.shape == task.shape) or (task.position and o.position == task.position)
    )
    obj = objs[idx]
    if f == "attribute" and task.attribute == "size":
        objs[idx] = replace(obj, size="small" if obj.size == "large" else "large")
    elif f in ("attribute", "compositional") and task.attribute == "colour":
        usual = settings.usual_colours[obj.shape]
        objs[idx] = replace(
            obj, colour=usual if obj.colour != usual else rng.choice([c for c in COLOURS if c != usual])
        )
    elif f == "compositional":  # 'what shape is at ...': the partner shape, in its usual colour
        partner = settings.partners[obj.shape]
        new_shape = partner if partner not in scene.shapes else _other_shape(obj.shape, scene, rng)
        objs[idx] = replace(obj, shape=new_shape, colour=settings.usual_colours[new_shape])
    elif f == "position":
        row, col = _free_cell(scene, settings, rng)
        objs[idx] = replace(obj, row=row, col=col)
    elif f == "letter":
        objs[idx] = replace(obj, letter=rng.choice([x for x in LETTERS if x != obj.letter]))
    return _with_objects(scene, objs)


def _other_shape(shape: str, scene: Scene, rng: random.Random) -> str:
    return rng.choice([s for s in SHAPES if s != shape and s not in scene.shapes] or [s for s in SHAPES if s != shape])


def hallucinated_answer(
    task: Task, scene: Scene, settings: WorldSettings, rng: random.Random, template_seed: int
) -> Answer:
    """The answer a prior-driven model would give: same wording as the truth, wrong facts."""
    wrong = corrupt_scene(task, scene, settings, rng)
    return answer(task, wrong, random.Random(template_seed))


# ---------------------------------------------------------------------------------------- parser

_POS_RE = "|".join(sorted(map(re.escape, POSITION_WORDS.values()), key=len, reverse=True))
_SHAPE_RE = "|".join(SHAPES)
_COLOUR_RE = "|".join(COLOURS)
_SIZE_RE = "|".join(SIZES)
_COUNT_RE = re.compile(
    rf"^(?:there (?:is|are)|the image shows|i can see) ({'|'.join(NUMBER_WORDS)}) (?:object|objects)\b"
)
_LETTER_RE = re.compile(rf"\bthe ({_SHAPE_RE}) has the letter (\w+)")
_NO_LETTER_RE = re.compile(rf"\bthere is no letter on the ({_SHAPE_RE})")
_ABSENT_RE = re.compile(rf"\bno ({_SHAPE_RE})\b")
_MENTION_RE = re.compile(rf"\b(?:({_SIZE_RE}) )?(?:({_COLOUR_RE}) )?({_SHAPE_RE})s?\b")
_AT_RE = re.compile(rf"\bat the ({_POS_RE})\b")
_IS_COLOUR_RE = re.compile(rf"\bis ({_COLOUR_RE})\b")
_IS_SIZE_RE = re.compile(rf"\bis ({_SIZE_RE})\b")
_YESNO_RE = re.compile(r"^\W*(yes|no)\b")


def sentences(text: str) -> list[str]:
    """Split on sentence ends; keeps each sentence's final punctuation off."""
    return [s.strip() for s in re.split(r"[.!?]+", text.lower()) if s.strip()]


def parse(text: str) -> tuple[Claim, ...]:
    """Claims made by an answer in the world's language. Sentences that match nothing make no claim."""
    claims: list[Claim] = []
    for sent in sentences(text):
        m = _ABSENT_RE.search(sent)  # before the yes/no split: "no square." denies a square
        absent = Claim("absent", m.group(1)) if m else None
        m = _YESNO_RE.match(sent)
        if m:
            claims.append(Claim("answer", answer=m.group(1)))
            sent = sent[m.end() :].lstrip(" ,")
            if not sent:
                continue
        m = _COUNT_RE.match(sent)
        if m:
            claims.append(Claim("count", count=NUMBER_WORDS.index(m.group(1))))
            continue
        m = _NO_LETTER_RE.search(sent)
        if m:
            claims.append(Claim("letter", m.group(1), letter="none"))
            continue
        m = _LETTER_RE.search(sent)
        if m:
            claims.append(Claim("letter", m.group(1), letter=m.group(2)))
            continue
        if absent:
            claims.append(absent)
            continue
        for mention in _MENTION_RE.finditer(sent):
            size, colour, shape = mention.groups()
            pos = _AT_RE.search(sent)
            is_colour = _IS_COLOUR_RE.search(sent)
            is_size = _IS_SIZE_RE.search(sent)
            claims.append(
                Claim(
                    "object",
                    shape,
                    colour or (is_colour.group(1) if is_colour else None),
                    size or (is_size.group(1) if is_size else None),
                    pos.group(1) if pos else None,
                )
            )
    return tuple(claims)


def check_claim(claim: Claim, scene: Scene) -> bool | None:
    """True if the claim holds in the scene, False if it does not, None if it cannot be judged alone."""
    if claim.kind == "object":
        obj = scene.find(claim.shape)
        if obj is None:
            return False
        return all(
            want is None or want == have
            for want, have in ((claim.colour, obj.colour), (claim.size, obj.size), (claim.position, obj.position))
        )
    if claim.kind == "absent":
        return claim.shape not in scene.shapes
    if claim.kind == "count":
        return claim.count == len(scene.objects)
    if claim.kind == "letter":
        obj = scene.find(claim.shape)
        return obj is not None and (obj.letter or "none") == claim.letter
    return None


_EXISTENCE_QUESTION_RE = re.compile(rf"\b(?:is there an?|does the image contain an?) ({_SHAPE_RE})\b")


# How many true claims one false claim cancels in a pairwise verdict (Assessment.net_score).
HALLUCINATION_WEIGHT = 2


@dataclass(frozen=True)
class Assessment:
    """What the world says about one response: claims that hold, claims that do not, claims it cannot judge."""

    true: int
    false: int
    unjudged: int
    covered: int = 0  # claims of a reference answer the response states (exact judge, when it has a reference)

    @property
    def silent(self) -> bool:
        """Says nothing the parser can read: empty, punctuation, a lone article, garbled words."""
        return self.true + self.false + self.unjudged == 0

    @property
    def net_score(self) -> int:
        """Correct content minus hallucination, one false claim cancelling HALLUCINATION_WEIGHT true ones; a
        claim of the reference answer stated counts once more (what the question asked for)."""
        return self.true + self.covered - HALLUCINATION_WEIGHT * self.false

    @property
    def rank_key(self) -> tuple[bool, int, int]:
        """Sort ascending to put the best response first: anything said before silence, then the highest net
        score, then the fewest false claims.

        The paper's annotator asks for "less hallucination and more helpful" content (Table 14). Ranking by
        "fewest false claims first" alone let an empty answer beat every informative one, and Online-DPO on the
        tiny model collapsed to empty answers under it (NOTES.md, 2026-11-22): an LLM annotator would rank an empty
        or garbled answer last, so silence loses to any answer that says something."""
        return (self.silent, -self.net_score, self.false)


def asked_shape(prompt: str) -> str | None:
    """The shape an existence question asks about ("is there a circle ...?"), else None."""
    asked = _EXISTENCE_QUESTION_RE.search(prompt.lower())
    return asked.group(1) if asked else None


def claim_verdicts(prompt: str, response: str, scene: Scene) -> list[tuple[Claim, bool | None]]:
    """Every claim of a response with its verdict in the scene. A bare yes/no is checked against the
    existence question it answers; every other claim against the scene (check_claim)."""
    asked = asked_shape(prompt)
    verdicts = []
    for claim in parse(response):
        if claim.kind == "answer":
            verdicts.append((claim, None if asked is None else (asked in scene.shapes) == (claim.answer == "yes")))
        else:
            verdicts.append((claim, check_claim(claim, scene)))
    return verdicts


def assess(prompt: str, response: str, scene: Scene) -> Assessment:
    """The exact judge's reading of a response to a prompt about a scene (counts of claim_verdicts)."""
    verdicts = [v for _, v in claim_verdicts(prompt, response, scene)]
    return Assessment(verdicts.count(True), verdicts.count(False), verdicts.count(None))


def mentioned_shapes(text: str) -> list[str]:
    """Every shape the text claims is present, one entry per mention (CHAIR counts repeats)."""
    return [c.shape for c in parse(text) if c.kind in ("object", "letter") and c.shape]
