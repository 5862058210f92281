"""Generate the invented-entity question sets: `python -m query_unit.make_dataset`.

Every entity is made up (names built from random syllables), so the model cannot know it:
only its document holds the answer. Two seeds give two disjoint sets, one to train the
learned unit and one to evaluate; controls (questions the model answers unaided, and
questions that define their own words) are written by hand in controls.py.
Output: query_unit/data/{train,eval}.jsonl, one record per document with its questions.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"

ONSETS = [
    "b",
    "br",
    "d",
    "dr",
    "f",
    "g",
    "gr",
    "k",
    "kl",
    "l",
    "m",
    "n",
    "p",
    "pr",
    "r",
    "s",
    "st",
    "t",
    "tr",
    "v",
    "z",
    "th",
    "sh",
    "qu",
]
VOWELS = ["a", "e", "i", "o", "u", "ae", "ei", "ou", "y"]
CODAS = ["", "", "n", "r", "l", "s", "th", "x", "m", "sk", "nd"]
OCCUPATIONS = [
    "marine biologist",
    "glassblower",
    "cartographer",
    "violin maker",
    "astronomer",
    "beekeeper",
    "bridge engineer",
    "botanist",
    "clockmaker",
    "poet",
]
CATEGORIES = [
    "folk instrument",
    "weaving loom",
    "fishing lure",
    "water clock",
    "sailing rig",
    "printing press",
    "garden tool",
]
SPECIALTIES = [
    "smoked eel",
    "blue pottery",
    "salt caves",
    "copper bells",
    "night markets",
    "rope bridges",
    "goat cheese",
]
ANIMALS = ["beetle", "lizard", "songbird", "river fish", "moth", "frog"]
FOODS = ["pine resin", "lichen", "river snails", "fallen figs", "mosquito larvae", "clover seeds"]
PRODUCTS = ["lantern batteries", "wool blankets", "bicycle gears", "water filters", "ceramic tiles", "canvas tents"]
USES = ["mirror coatings", "ship hulls", "guitar strings", "roof tiles", "camera lenses", "cooking pans"]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
ACTIVITIES = [
    "float paper lanterns down the river",
    "race wooden carts",
    "paint their doors green",
    "climb the old bell tower",
    "bake bread in stone ovens",
]


class Names:
    def __init__(self, rng: random.Random, taken: set[str]) -> None:
        self.rng, self.taken = rng, taken

    def word(self, syllables: int) -> str:
        while True:
            w = "".join(self.rng.choice(ONSETS) + self.rng.choice(VOWELS) for _ in range(syllables)) + self.rng.choice(
                CODAS
            )
            if len(w) >= 5 and w not in self.taken:
                self.taken.add(w)
                return w.capitalize()


def person(n: Names, rng: random.Random) -> dict:
    name = f"{n.word(2)} {n.word(3)}"
    city, region = n.word(3), n.word(2)
    year, job = rng.randint(1890, 1995), rng.choice(OCCUPATIONS)
    work = f"the {n.word(2)} {rng.choice(['survey', 'collection', 'method', 'atlas'])}"
    text = (
        f"{name} is a {job} from the region of {region}. {name} was born in {year} in the town of {city}. "
        f"{name.split()[0]} is best known for {work}, which took eleven years to finish."
    )
    return {
        "title": name,
        "text": text,
        "questions": [
            {"question": f"When was {name} born?", "answer": str(year)},
            {"question": f"In which town was {name} born?", "answer": city},
            {"question": f"What is {name}'s profession?", "answer": job},
        ],
    }


def invention(n: Names, rng: random.Random) -> dict:
    thing, inventor, city = (
        f"{n.word(2)} {rng.choice(['harp', 'loom', 'lure', 'clock', 'rig', 'press'])}",
        f"{n.word(2)} {n.word(2)}",
        n.word(2),
    )
    year, category = rng.randint(1500, 1950), rng.choice(CATEGORIES)
    text = f"The {thing} is a {category} invented in {year} by {inventor} of {city}. It is still built by hand today."
    return {
        "title": f"The {thing}",
        "text": text,
        "questions": [
            {"question": f"Who invented the {thing}?", "answer": inventor.split()[-1]},
            {"question": f"In what year was the {thing} invented?", "answer": str(year)},
        ],
    }


def town(n: Names, rng: random.Random) -> dict:
    name, region = n.word(3), n.word(2)
    people, special = rng.randint(1200, 90000), rng.choice(SPECIALTIES)
    text = (
        f"{name} is a town in the province of {region} with a population of {people}. "
        f"{name} is famous for its {special}."
    )
    return {
        "title": name,
        "text": text,
        "questions": [
            {"question": f"What is the town of {name} famous for?", "answer": special},
            {"question": f"In which province is the town of {name}?", "answer": region},
        ],
    }


def species(n: Names, rng: random.Random) -> dict:
    name, place = f"{n.word(2)} {rng.choice(ANIMALS)}", n.word(3)
    food, years = rng.choice(FOODS), rng.randint(2, 40)
    text = (
        f"The {name} is found only on the island of {place}. The {name} feeds on {food} and lives about {years} years."
    )
    return {
        "title": f"The {name}",
        "text": text,
        "questions": [
            {"question": f"What does the {name} feed on?", "answer": food},
            {"question": f"On which island is the {name} found?", "answer": place},
        ],
    }


def treaty(n: Names, rng: random.Random) -> dict:
    name, a, b, city = f"{n.word(2)} Accord", n.word(2), n.word(3), n.word(2)
    year = rng.randint(1600, 1990)
    text = f"The {name} is a trade treaty between {a} and {b}. It was signed in {year} in the city of {city}."
    return {
        "title": f"The {name}",
        "text": text,
        "questions": [
            {"question": f"In what year was the {name} signed?", "answer": str(year)},
            {"question": f"In which city was the {name} signed?", "answer": city},
        ],
    }


def company(n: Names, rng: random.Random) -> dict:
    name, founder, city = (
        f"{n.word(2)} {rng.choice(['Works', 'Industries', 'Company'])}",
        f"{n.word(2)} {n.word(2)}",
        n.word(3),
    )
    year, product = rng.randint(1850, 2015), rng.choice(PRODUCTS)
    text = f"{name} is a company founded in {year} by {founder}. It makes {product} and is based in {city}."
    return {
        "title": name,
        "text": text,
        "questions": [
            {"question": f"Who founded {name}?", "answer": founder.split()[-1]},
            {"question": f"What does {name} make?", "answer": product},
        ],
    }


def material(n: Names, rng: random.Random) -> dict:
    name, degrees, use = n.word(3).lower(), rng.randint(40, 1900), rng.choice(USES)
    text = (
        f"{name.capitalize()} is a rare alloy that melts at {degrees} degrees Celsius. "
        f"{name.capitalize()} is mostly used to make {use}."
    )
    return {
        "title": name.capitalize(),
        "text": text,
        "questions": [
            {"question": f"At what temperature does {name} melt?", "answer": str(degrees)},
            {"question": f"What is {name} used to make?", "answer": use},
        ],
    }


def festival(n: Names, rng: random.Random) -> dict:
    name, place = f"{n.word(2)} Festival", n.word(3)
    month, activity = rng.choice(MONTHS), rng.choice(ACTIVITIES)
    text = f"The {name} is held every {month} in the village of {place}. During the {name}, people {activity}."
    return {
        "title": f"The {name}",
        "text": text,
        "questions": [
            {"question": f"In which month is the {name} held?", "answer": month},
            {"question": f"In which village is the {name} held?", "answer": place},
        ],
    }


KINDS = [person, invention, town, species, treaty, company, material, festival]


def generate(seed: int, count: int, taken: set[str]) -> list[dict]:
    rng = random.Random(seed)
    names = Names(rng, taken)
    docs = []
    for i in range(count):
        doc = KINDS[i % len(KINDS)](names, rng)
        doc["id"] = f"invented-{seed}-{i}"
        docs.append(doc)
    return docs


def main() -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    for name, seed, count in (("eval", 2, 48), ("train", 1, 96)):
        docs = generate(seed, count, taken)  # one pool of names: no entity is in both sets
        with open(DATA / f"{name}.jsonl", "w", encoding="utf-8") as f:
            for doc in docs:
                f.write(json.dumps(doc) + "\n")
        print(f"{name}: {len(docs)} documents, {sum(len(d['questions']) for d in docs)} questions")


if __name__ == "__main__":
    main()
