"""Texts for the synthetic speech: sentences from word lists and a small template grammar.

Sources, both licence-clean and installable on a fresh machine:

- the curated lists below (written for this project; MIT like the rest of the code);
- Debian's ``wamerican`` word list (``/usr/share/dict/words``, SCOWL: "permission to use, copy, modify, distribute
  and sell ... for any purpose"), from which suffix rules pick extra adjectives (-ous, -ful, -ive, ...), abstract
  nouns (-tion, -ment, -ness, ...), adverbs (-ously, -fully, ...), past-tense verbs (-ated, -ized, ...) and proper
  names (capitalised words). Without it the curated lists alone are used (and the manifest says so).

The sentences are grammatical in shape and mostly nonsense in meaning ("The brittle lantern questioned a wooden
harbour."): what matters for enhancement is phonetic and prosodic variety (statements, questions, exclamations,
lists, numbers), not sense.

Held-out rule: every content word (noun, adjective, verb, adverb, name) belongs to exactly one split, by a stable
hash (:func:`word_split`: CRC-32 of the lower-cased word, 1 in 10 to ``test``). Function words and numbers are
shared (``FUNCTION_WORDS`` never serve as content words). So a test sentence never shares a content word with any
training sentence, and no test text can equal a training text.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

WORDS_FILE = Path("/usr/share/dict/words")
#: 1 in TEST_MODULUS content words is reserved for the test split.
TEST_MODULUS = 10
#: Speaking rate used to turn a target duration into a word count (words per second at rate 1.0).
WORDS_PER_SECOND = 2.6

NOUNS = """
apple anchor arrow attic badge bakery balcony ballet banner barrel basket beacon beetle bell bench bicycle blanket
boat bottle bracelet bridge bucket buffalo butter button cabin cable camera candle canoe canyon carpet castle
cathedral cellar chair chimney circus clock cloud coat compass cottage county cradle crane crayon crystal cupboard
curtain cushion desert diamond dinosaur doctor dolphin donkey dragon drawer drum eagle elbow engine envelope
factory falcon farmer feather fence ferry fiddle field flag flute forest fountain fox garden gate giraffe glacier
glove goat guitar hammer harbour harvest helmet hill hospital island jacket jungle kettle kitchen ladder lake
lantern lemon library lighthouse lion machine magnet mango market meadow melon mirror monkey mountain museum
napkin necklace needle nest newspaper notebook ocean orchard oven owl paddle palace parrot pebble pencil penguin
piano pillow pilot planet pocket pond potato puppet pyramid rabbit radio railway ribbon river robot rocket saddle
sailor sandwich satellite scarf school scissors shadow sheep shelf shovel signal silver skeleton sled spider
spoon squirrel stadium station statue stove street submarine sugar suitcase sweater table teacher telescope
tent theatre thunder ticket tiger tomato tower tractor train trumpet tunnel turtle umbrella valley village violin
volcano wagon wallet whistle window wizard wolf yacht zebra
"""
ADJECTIVES = """
ancient angry anxious bitter blue bold brave bright brittle broad bumpy calm careful cheerful chilly clever cloudy
clumsy cold crimson crooked curious damp dark dazzling deep delicate dusty eager early elegant empty enormous
faint famous fancy fierce fluffy foggy fragile fresh friendly frozen gentle giant gloomy golden graceful green
grumpy hairy happy heavy hollow honest huge humble hungry icy jolly juicy kind lazy little lively lonely loud
lucky marble massive mellow merry misty modest muddy narrow nervous noble noisy odd orange pale patient plain
polite proud purple quick quiet rapid rare restless rich rough round rusty sandy scarlet secret shiny short shy
silent silly simple sleepy slow small smooth soft solid sour sparkling spicy steep sticky stormy strange strict
striped sturdy sudden sunny sweet swift tall tame tender thick thin tiny tired tough tricky velvet violet warm
weary wet wide wild windy wise wooden young zealous
"""
VERBS_PAST = """
admired borrowed buried carried chased cleaned climbed collected copied counted covered crossed delivered
destroyed discovered dragged dropped emptied explored fetched filled followed folded found gathered grabbed
guarded held hid hugged ignored inspected kicked knitted lifted lost measured mended moved noticed opened painted
packed planted polished pulled pushed questioned raised rescued returned rolled sang scrubbed shared sketched
sold sorted stirred stole studied swallowed tasted threw tickled towed traded trusted unlocked visited warned
washed watched weighed whispered wrapped wrote
"""
VERBS_INTRANSITIVE = """
arrived blinked bounced chuckled complained danced disappeared drifted fainted floated frowned giggled glowed
grinned hesitated hummed hurried jumped laughed leaned listened marched nodded paused rested rumbled shivered
shouted sighed slept smiled sneezed snored sparkled stumbled swam trembled vanished waited wandered waved wept
whistled wobbled yawned
"""
ADVERBS = """
angrily barely boldly briefly calmly carefully cheerfully clearly closely eagerly easily eventually finally
gently gladly gracefully happily honestly hungrily lazily loudly madly merely nearly neatly nervously oddly
openly patiently politely proudly quickly quietly rapidly rarely roughly sadly safely seldom sharply shyly
silently slowly smoothly softly sometimes soon steadily suddenly swiftly tenderly tightly truly warmly weekly
wildly yearly
"""
NAMES = """
Abigail Adrian Agnes Albert Alice Amelia Arthur Beatrice Benedict Bernard Caroline Cecilia Charlotte Clara
Daniel Dorothy Edgar Edith Edmund Eleanor Elijah Felix Florence Frederick Gabriel George Grace Harold Harriet
Henry Hugo Irene Isaac Jasper Josephine Julian Lena Leonard Lucy Mabel Margaret Martin Matilda Miriam Nathan
Oliver Oscar Patricia Percy Philip Rosalind Rupert Samuel Sophia Theodore Tobias Ursula Victor Vivian Walter
Winifred
"""
PLACES = """
Amsterdam Athens Berlin Boston Cairo Chicago Dublin Edinburgh Geneva Glasgow Havana Istanbul Kyoto Lisbon London
Madrid Manchester Melbourne Montreal Nairobi Naples Oslo Paris Prague Quebec Rome Seattle Stockholm Sydney
Toronto Valencia Venice Vienna Warsaw Zurich
"""
DETERMINERS = ("the", "the", "a", "this", "that", "every", "my", "our", "their", "one", "some")
PREPOSITIONS = (
    "in",
    "on",
    "under",
    "behind",
    "beside",
    "near",
    "above",
    "across",
    "through",
    "around",
    "into",
    "towards",
    "past",
    "between the lake and",
)
TIMES = (
    "yesterday",
    "last night",
    "this morning",
    "on Sunday",
    "at noon",
    "in the spring",
    "after lunch",
    "before dawn",
    "every Tuesday",
    "at seven o'clock",
    "in nineteen eighty four",
    "on the third of May",
)

#: Words the templates themselves say; never used as content words, so they may appear in both splits.
TEMPLATE_WORDS = (
    "why did leave in have you seen what a an there were said that was but we packed before the trip to "
    "is really or only please bring and room"
)
FUNCTION_WORDS = frozenset(
    w.lower() for phrase in (*DETERMINERS, *PREPOSITIONS, *TIMES, TEMPLATE_WORDS) for w in phrase.replace("'", " ").split()
)

#: Suffix rules that pick more words of a class from the word list (lower-case words of 5-12 letters).
SUFFIXES = {
    "adjective": re.compile(r"^[a-z]{3,}(ous|ful|less|ive|able|ible|ical)$"),
    "noun": re.compile(r"^[a-z]{3,}(tion|ment|ness|ity|ship|hood|ance|ence)$"),
    "adverb": re.compile(r"^[a-z]{3,}(ously|fully|ively|ably|ally|ingly|edly|ately)$"),
    "verb": re.compile(r"^[a-z]{3,}(ated|ized|ified|ened)$"),
    "name": re.compile(r"^[A-Z][a-z]{3,9}$"),
}


def word_split(word: str) -> str:
    """The split (``train`` or ``test``) a content word belongs to; stable across machines and runs."""
    return "test" if zlib.crc32(word.lower().encode()) % TEST_MODULUS == 0 else "train"


@dataclass(frozen=True)
class Vocabulary:
    """Content words of one split, by class, sorted (deterministic)."""

    split: str
    nouns: tuple[str, ...]
    abstract: tuple[str, ...]
    adjectives: tuple[str, ...]
    verbs: tuple[str, ...]
    intransitive: tuple[str, ...]
    adverbs: tuple[str, ...]
    names: tuple[str, ...]
    places: tuple[str, ...]
    source: str

    def size(self) -> int:
        """Number of content words."""
        return sum(
            len(getattr(self, f)) for f in ("nouns", "abstract", "adjectives", "verbs", "intransitive", "adverbs", "names", "places")
        )


def _keep(words: list[str] | tuple[str, ...] | str, split: str) -> tuple[str, ...]:
    items = words.split() if isinstance(words, str) else words
    return tuple(sorted({w for w in items if word_split(w) == split and w.lower() not in FUNCTION_WORDS}))


@functools.lru_cache(maxsize=4)
def _word_list(path: str) -> tuple[str, ...]:
    """Plain ASCII words of 5-12 letters from ``path`` (no possessives), or () when it is missing."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="ignore")
    except OSError:
        return ()
    return tuple(w for w in text.split() if w.isascii() and w.isalpha() and 5 <= len(w) <= 12)


def _by_suffix(words: tuple[str, ...], kind: str) -> list[str]:
    return [w for w in words if SUFFIXES[kind].match(w)]


@functools.lru_cache(maxsize=8)
def vocabulary(split: str, words_file: str = str(WORDS_FILE)) -> Vocabulary:
    """The content words of ``split`` (``train`` or ``test``): curated lists plus the word file's suffix classes."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be train or test, got {split!r}")
    extra = _word_list(words_file)
    if not extra:
        logger.warning("%s not found (apt-get install wamerican): using the built-in word lists only", words_file)
    return Vocabulary(
        split=split,
        nouns=_keep(NOUNS, split),
        abstract=_keep(_by_suffix(extra, "noun"), split),
        adjectives=_keep(ADJECTIVES.split() + _by_suffix(extra, "adjective"), split),
        verbs=_keep(VERBS_PAST.split() + _by_suffix(extra, "verb"), split),
        intransitive=_keep(VERBS_INTRANSITIVE, split),
        adverbs=_keep(ADVERBS.split() + _by_suffix(extra, "adverb"), split),
        names=_keep(NAMES.split() + _by_suffix(extra, "name"), split),
        places=_keep(PLACES, split),
        source=f"builtin+{words_file}" if extra else "builtin",
    )


def _pick(options: tuple[str, ...] | list[str], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]


def _noun_phrase(v: Vocabulary, rng: np.random.Generator) -> str:
    """``[determiner] [adjective] noun``, with a/an agreement."""
    noun = _pick(v.nouns, rng) if rng.random() < 0.8 or not v.abstract else _pick(v.abstract, rng)
    words = [_pick(v.adjectives, rng)] if rng.random() < 0.6 else []
    words.append(noun)
    det = _pick(DETERMINERS, rng)
    if det == "a" and words[0][0] in "aeiou":
        det = "an"
    return " ".join([det, *words])


def _number(rng: np.random.Generator) -> str:
    return str(int(rng.choice([rng.integers(2, 13), rng.integers(13, 100), rng.integers(100, 10000)])))


def plural(noun: str) -> str:
    """English plural of a regular noun (box -> boxes, city -> cities, lake -> lakes)."""
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in tuple("aeiou"):
        return noun[:-1] + "ies"
    return noun + "s"


def _list(v: Vocabulary, rng: np.random.Generator) -> str:
    items = [plural(_pick(v.nouns, rng)) for _ in range(int(rng.integers(3, 5)))]
    return ", ".join(items[:-1]) + " and " + items[-1]


_TEMPLATES = (
    lambda v, r: f"{_noun_phrase(v, r)} {_pick(v.verbs, r)} {_noun_phrase(v, r)}.",
    lambda v, r: f"{_noun_phrase(v, r)} {_pick(v.verbs, r)} {_noun_phrase(v, r)} {_pick(PREPOSITIONS, r)} {_noun_phrase(v, r)}.",
    lambda v, r: f"{_pick(v.names, r)} {_pick(v.intransitive, r)} {_pick(v.adverbs, r)} {_pick(TIMES, r)}.",
    lambda v, r: f"Why did {_pick(v.names, r)} leave {_noun_phrase(v, r)} in {_pick(v.places, r)}?",
    lambda v, r: f"Have you seen {_noun_phrase(v, r)} {_pick(PREPOSITIONS, r)} {_noun_phrase(v, r)}?",
    lambda v, r: f"What a {_pick(v.adjectives, r)} {_pick(v.nouns, r)}!",
    lambda v, r: f"There were {_number(r)} {plural(_pick(v.nouns, r))} {_pick(PREPOSITIONS, r)} {_noun_phrase(v, r)}.",
    lambda v, r: (
        f"{_pick(v.names, r)} said that {_noun_phrase(v, r)} was {_pick(v.adjectives, r)}, "
        f"but {_noun_phrase(v, r)} {_pick(v.intransitive, r)}."
    ),
    lambda v, r: f"We packed {_list(v, r)} before the trip to {_pick(v.places, r)}.",
    lambda v, r: f"{_pick(TIMES, r).capitalize()}, {_noun_phrase(v, r)} {_pick(v.adverbs, r)} {_pick(v.verbs, r)} {_noun_phrase(v, r)}.",
    lambda v, r: f"Is {_noun_phrase(v, r)} really {_pick(v.adjectives, r)}, or only {_pick(v.adjectives, r)}?",
    lambda v, r: f"Please bring {_noun_phrase(v, r)} and {_number(r)} {plural(_pick(v.nouns, r))} to room {_number(r)}.",
)


def sentence(v: Vocabulary, rng: np.random.Generator) -> str:
    """One sentence from a random template, first letter capitalised."""
    text = _TEMPLATES[int(rng.integers(len(_TEMPLATES)))](v, rng)
    return text[0].upper() + text[1:]


def paragraph(v: Vocabulary, rng: np.random.Generator, seconds: float) -> str:
    """Sentences totalling about ``seconds`` of speech at rate 1.0 (at least one sentence)."""
    target = max(1, math.ceil(seconds * WORDS_PER_SECOND))
    out: list[str] = []
    while sum(len(s.split()) for s in out) < target:
        out.append(sentence(v, rng))
    return " ".join(out)
