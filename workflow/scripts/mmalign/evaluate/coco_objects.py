"""COCO object mentions in free text, for CHAIR and the Object HalBench recall on real captions.

The table follows CHAIR's idea (Rohrbach et al. 2018, ``synonyms.txt``): each of the 80 COCO categories with
words and two-word phrases that name it. Two-word phrases are matched first ("hot dog" is food, not a dog;
"teddy bear" is not a bear), and words are singularized with a small rule set (CHAIR uses NLTK's WordNet
lemmatizer; NLTK is not a dependency here). The list is ours, written after CHAIR's; differences in coverage
shift CHAIR values slightly, so compare CHAIR only within this implementation.
"""

from __future__ import annotations

import re

SYNONYMS = {
    "person": "person girl boy man woman kid child chef baker people adult rider baby worker passenger biker "
    "policeman cop officer lady cowboy bride groom guy traveler mother father gentleman pitcher player "
    "skier snowboarder skater skateboarder surfer teenager student driver shopper soldier doctor "
    "tourist catcher batter umpire",
    "bicycle": "bicycle bike unicycle minibike trike",
    "car": "car automobile van minivan sedan suv hatchback cab jeep coupe taxicab limo taxi",
    "motorcycle": "motorcycle scooter motorbike moped|motor bike|motor cycle|dirt bike",
    "airplane": "airplane jetliner plane aircraft jet airbus biplane seaplane airliner|air plane",
    "bus": "bus minibus trolley",
    "train": "train locomotive tramway caboose",
    "truck": "truck pickup lorry firetruck|pickup truck|fire truck",
    "boat": "boat ship sailboat motorboat dinghy speedboat canoe yacht kayak catamaran ferry vessel rowboat "
    "tugboat barge",
    "traffic light": "streetlight stoplight|traffic light|street light|traffic signal|stop light",
    "fire hydrant": "hydrant|fire hydrant",
    "stop sign": "|stop sign",
    "parking meter": "|parking meter",
    "bench": "bench pew",
    "bird": "bird ostrich owl seagull goose duck parakeet falcon robin pelican heron hummingbird pigeon sparrow "
    "gull swan flamingo parrot rooster crow raven turkey peacock",
    "cat": "cat kitten feline kitty",
    "dog": "dog puppy pup beagle chihuahua dachshund terrier poodle labrador bulldog collie retriever husky hound",
    "horse": "horse colt pony stallion mare foal",
    "sheep": "sheep lamb ram ewe",
    "cow": "cow cattle ox calf bull heifer buffalo bison",
    "elephant": "elephant",
    "bear": "bear grizzly|polar bear|brown bear",
    "zebra": "zebra",
    "giraffe": "giraffe",
    "backpack": "backpack knapsack",
    "umbrella": "umbrella parasol",
    "handbag": "handbag purse wallet briefcase|hand bag",
    "tie": "tie necktie|bow tie",
    "suitcase": "suitcase luggage|suit case",
    "frisbee": "frisbee",
    "skis": "ski skis",
    "snowboard": "snowboard",
    "sports ball": "ball football soccer basketball volleyball|sports ball|tennis ball|soccer ball|baseball ball",
    "kite": "kite",
    "baseball bat": "|baseball bat",
    "baseball glove": "mitt|baseball glove|baseball mitt",
    "skateboard": "skateboard",
    "surfboard": "surfboard longboard wakeboard|surf board",
    "tennis racket": "racket racquet|tennis racket",
    "bottle": "bottle",
    "wine glass": "|wine glass",
    "cup": "cup mug",
    "fork": "fork",
    "knife": "knife",
    "spoon": "spoon",
    "bowl": "bowl",
    "banana": "banana",
    "apple": "apple",
    "sandwich": "sandwich burger sub cheeseburger hamburger",
    "orange": "orange",
    "broccoli": "broccoli",
    "carrot": "carrot",
    "hot dog": "hotdog|hot dog",
    "pizza": "pizza",
    "donut": "donut doughnut bagel",
    "cake": "cake cupcake cheesecake",
    "chair": "chair stool|high chair",
    "couch": "couch sofa recliner futon loveseat settee",
    "potted plant": "houseplant|potted plant|house plant",
    "bed": "bed",
    "dining table": "table desk|dining table",
    "toilet": "toilet urinal commode|toilet seat",
    "tv": "tv television monitor",
    "laptop": "laptop computer notebook macbook",
    "mouse": "mouse",
    "remote": "remote|remote control",
    "keyboard": "keyboard",
    "cell phone": "phone cellphone smartphone iphone telephone|cell phone|mobile phone",
    "microwave": "microwave",
    "oven": "oven stove stovetop",
    "toaster": "toaster",
    "sink": "sink",
    "refrigerator": "refrigerator fridge freezer",
    "book": "book novel",
    "clock": "clock",
    "vase": "vase",
    "scissors": "scissors",
    "teddy bear": "teddybear|teddy bear",
    "hair drier": "hairdryer|hair drier|hair dryer|blow dryer",
    "toothbrush": "toothbrush|tooth brush",
}

IRREGULAR = {
    "people": "person",
    "men": "man",
    "women": "woman",
    "children": "child",
    "knives": "knife",
    "mice": "mouse",
    "geese": "goose",
    "oxen": "ox",
    "calves": "calf",
    "wolves": "wolf",
    "skis": "ski",
    "buses": "bus",
    "glasses": "glass",
    "benches": "bench",
    "sandwiches": "sandwich",
    "boxes": "box",
    "couches": "couch",
    "toothbrushes": "toothbrush",
    "scissors": "scissors",
}


def _table() -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    words: dict[str, str] = {}
    phrases: dict[tuple[str, str], str] = {}
    for category, spec in SYNONYMS.items():
        single, *multi = spec.split("|")
        for word in single.split():
            words.setdefault(word, category)
        for phrase in multi:
            phrases[tuple(phrase.split())] = category
    return words, phrases


WORDS, PHRASES = _table()


def singular(word: str) -> str:
    if word in IRREGULAR:
        return IRREGULAR[word]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def mentioned_objects(text: str) -> list[str]:
    """COCO categories named in the text, one entry per mention (CHAIR_i counts repeats)."""
    tokens = [singular(t) for t in re.findall(r"[a-z]+", text.lower())]
    found, i = [], 0
    while i < len(tokens):
        pair = tuple(tokens[i : i + 2])
        if len(pair) == 2 and pair in PHRASES:
            found.append(PHRASES[pair])
            i += 2
            continue
        if tokens[i] in WORDS:
            found.append(WORDS[tokens[i]])
        i += 1
    return found
