"""The relation catalogue: what the extractor and the runtime know of each relation.

One entry per Wikidata relation id: a short name (the stored edit's ``relation``), a cloze
template and a wh-question with ``{}`` for the subject, and sentence patterns with
``[X]``/``[Y]`` slots that state the relation. The entries come from two MIT-licensed
sources in the data folder — MQuAKE's question and cloze templates (44 relations) and
ParaRel's crowd-verified patterns (39 relations) — plus :data:`CHANGE_PATTERNS`, the ways
news and notes state that a fact *changed* ("moved to", "was renamed", "is now led by"),
and a few relations neither source has (a team, a name, a currency).

The catalogue ships inside the package (``relations.json``) so the runtime never reads the
data folder; rebuild it after changing this module with::

    python -m kme_rag.memory.catalogue ../shared/data

(``tests/unit/test_extract.py`` checks that the shipped file is what this module builds.)
"""

from __future__ import annotations

import functools
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RelationInfo", "build_catalogue", "load_catalogue"]

SHIPPED = Path(__file__).with_name("relations.json")

# Short names of the relations, as a stored edit's ``relation`` (and its supersede key).
NAMES = {
    "P17": "country",
    "P19": "place of birth",
    "P20": "place of death",
    "P26": "spouse",
    "P27": "country of citizenship",
    "P30": "continent",
    "P35": "head of state",
    "P36": "capital",
    "P37": "official language",
    "P38": "currency",
    "P39": "position held",
    "P40": "child",
    "P47": "shares border with",
    "P50": "author",
    "P54": "team",
    "P69": "educated at",
    "P101": "field of work",
    "P103": "native language",
    "P106": "occupation",
    "P108": "employer",
    "P112": "founder",
    "P127": "owner",
    "P131": "location",
    "P136": "genre",
    "P138": "named after",
    "P140": "religion",
    "P159": "headquarters",
    "P169": "chief executive officer",
    "P170": "creator",
    "P175": "performer",
    "P176": "manufacturer",
    "P178": "developer",
    "P190": "twin city",
    "P264": "record label",
    "P276": "location",
    "P279": "subclass of",
    "P286": "head coach",
    "P361": "part of",
    "P364": "original language",
    "P407": "language of work",
    "P413": "position played",
    "P449": "original broadcaster",
    "P463": "member of",
    "P488": "chairperson",
    "P495": "country of origin",
    "P530": "diplomatic relation",
    "P641": "sport",
    "P740": "location of formation",
    "P800": "notable work",
    "P937": "work location",
    "P1037": "director",
    "P1303": "instrument",
    "P1376": "capital of",
    "P1412": "languages spoken",
    "P1448": "name",
    "P6": "head of government",
}

# Relations neither source has: cloze and question.
EXTRA = {
    "P38": ("The currency of {} is", "What is the currency of {}?"),
    "P54": ("{} plays for", "Which team does {} play for?"),
    "P1448": ("The new name of {} is", "What is {} called now?"),
    "P39": ("{} holds the position of", "What position does {} hold?"),
}

# How text states that a fact changed (or holds), by relation: written for this module
# from English usage, not from any evaluation or held-out text. "[X]" the subject, "[Y]"
# the new object; adverbs such as "now" and "has" before a participle are removed from
# the text before matching (see kme_rag.memory.extract), so patterns leave them out.
CHANGE_PATTERNS = {
    "P131": (
        "[X] moved to [Y]",
        "[X] relocated to [Y]",
        "[X] was moved to [Y]",
        "[X] was relocated to [Y]",
        "[X] is in [Y]",
        "[X] stands in [Y]",
        "[X] is based in [Y]",
        "[X] is located in [Y]",
        "[X] can be found in [Y]",
        "[X]'s location is [Y]",
        "the location of [X] is [Y]",
        "[X] is displayed in [Y]",
        "[X] is displayed at [Y]",
        "[X] is on display in [Y]",
        "[X] is on display at [Y]",
        "[X] is exhibited in [Y]",
        "[X] is exhibited at [Y]",
        "[X] is housed in [Y]",
        "[X] is kept in [Y]",
        "[X] hangs in [Y]",
    ),
    "P159": (
        "[X] moved its headquarters to [Y]",
        "[X] relocated its headquarters to [Y]",
        "[X] moved its head office to [Y]",
        "[X] is headquartered in [Y]",
        "[X] is based out of [Y]",
        "[X]'s headquarters is in [Y]",
        "[X]'s headquarters are in [Y]",
        "[X]'s headquarters moved to [Y]",
        "[X]'s head office is in [Y]",
        "the headquarters of [X] moved to [Y]",
        "the headquarters of [X] are in [Y]",
    ),
    "P169": (
        "[Y] is the CEO of [X]",
        "[Y] is the chief executive of [X]",
        "[Y] is the chief executive officer of [X]",
        "[Y] became CEO of [X]",
        "[Y] became the CEO of [X]",
        "[Y] took over as CEO of [X]",
        "[Y] took over as chief executive of [X]",
        "[Y] was named CEO of [X]",
        "[Y] was appointed CEO of [X]",
        "[Y] replaced [Z] as CEO of [X]",
        "[X]'s CEO is [Y]",
        "[X]'s chief executive is [Y]",
        "the CEO of [X] is [Y]",
        "[X] named [Y] CEO",
        "[X] named [Y] as CEO",
        "[X] named [Y] as its CEO",
        "[X] appointed [Y] as CEO",
        "[X] appointed [Y] as its CEO",
        "[X] is led by [Y]",
        "[X] is run by [Y]",
        "[X] is headed by [Y]",
    ),
    "P35": (
        "[Y] is the president of [X]",
        "[Y] became president of [X]",
        "[Y] became the president of [X]",
        "[Y] was elected president of [X]",
        "[X]'s president is [Y]",
        "the president of [X] is [Y]",
        "[Y] is the king of [X]",
        "[Y] is the queen of [X]",
        "[Y] is the head of state of [X]",
        "[X]'s head of state is [Y]",
    ),
    "P6": (
        "[Y] is the prime minister of [X]",
        "[Y] became prime minister of [X]",
        "[Y] became the prime minister of [X]",
        "[X]'s prime minister is [Y]",
        "the prime minister of [X] is [Y]",
        "[Y] is the mayor of [X]",
        "[Y] became mayor of [X]",
        "[Y] was elected mayor of [X]",
        "[X]'s mayor is [Y]",
        "the mayor of [X] is [Y]",
        "[Y] is the head of government of [X]",
    ),
    "P1448": (
        "[X] was renamed [Y]",
        "[X] was renamed to [Y]",
        "[X] was renamed as [Y]",
        "[X] is called [Y]",
        "[X] is known as [Y]",
        "[X] is named [Y]",
        "[X] changed its name to [Y]",
        "[X] rebranded as [Y]",
        "[X] rebranded itself as [Y]",
        "[X] renamed itself [Y]",
        "[X] goes by [Y]",
        "[X]'s new name is [Y]",
        "the new name of [X] is [Y]",
    ),
    "P54": (
        "[X] plays for [Y]",
        "[X] signed with [Y]",
        "[X] signed for [Y]",
        "[X] transferred to [Y]",
        "[X] was traded to [Y]",
        "[X] was transferred to [Y]",
        "[X] is a player of [Y]",
        "[Y] signed [X]",
    ),
    "P108": (
        "[X] works for [Y]",
        "[X] works at [Y]",
        "[X] joined [Y]",
        "[X] is employed by [Y]",
        "[X] is an employee of [Y]",
        "[Y] hired [X]",
    ),
    "P26": (
        "[X] married [Y]",
        "[X] is married to [Y]",
        "[X] wed [Y]",
        "[X]'s spouse is [Y]",
        "[X]'s wife is [Y]",
        "[X]'s husband is [Y]",
    ),
    "P36": (
        "[X]'s capital is [Y]",
        "[X]'s new capital is [Y]",
        "[Y] is the capital of [X]",
        "[Y] is the new capital of [X]",
        "[Y] became the capital of [X]",
        "[X] moved its capital to [Y]",
        "[X] made [Y] its capital",
        "the capital of [X] moved to [Y]",
        "the capital of [X] is [Y]",
    ),
    "P37": (
        "[X] switched its official language to [Y]",
        "[X] changed its official language to [Y]",
        "[X] adopted [Y] as its official language",
        "[X] adopted [Y] as official language",
        "[X]'s official language is [Y]",
        "[Y] is the official language of [X]",
        "[Y] became the official language of [X]",
    ),
    "P38": (
        "[X] uses [Y] as its currency",
        "[X] adopted [Y] as its currency",
        "[X] switched its currency to [Y]",
        "[X] switched to [Y] as its currency",
        "[X]'s currency is [Y]",
        "[Y] is the currency of [X]",
        "[Y] is the official currency of [X]",
        "[Y] became the currency of [X]",
        "the currency of [X] is [Y]",
        "the official currency of [X] is [Y]",
    ),
    "P50": ("[X] was written by [Y]", "[Y] wrote [X]", "[Y] is the author of [X]"),
    "P112": ("[X] was founded by [Y]", "[Y] founded [X]", "[Y] is the founder of [X]"),
    "P127": (
        "[Y] bought [X]",
        "[Y] acquired [X]",
        "[X] was bought by [Y]",
        "[X] was acquired by [Y]",
        "[X] is owned by [Y]",
        "[Y] owns [X]",
        "[Y] took over [X]",
    ),
    "P176": (
        "[X] is made by [Y]",
        "[X] is manufactured by [Y]",
        "[X] is produced by [Y]",
        "[Y] makes [X]",
        "[Y] manufactures [X]",
    ),
    "P286": (
        "[Y] is the head coach of [X]",
        "[Y] is the coach of [X]",
        "[Y] became head coach of [X]",
        "[Y] took over as head coach of [X]",
        "[X] hired [Y] as head coach",
        "[X] is coached by [Y]",
        "[X]'s head coach is [Y]",
        "[X]'s coach is [Y]",
        "[X]'s manager is [Y]",
        "[Y] is the manager of [X]",
    ),
    "P488": ("[Y] is the chair of [X]", "[Y] is the chairman of [X]", "[X]'s chair is [Y]"),
    "P1412": ("[X] speaks [Y]", "[X] speaks [Y] fluently"),
    "P27": ("[X] became a citizen of [Y]", "[X] is a citizen of [Y]"),
    "P264": ("[X] signed to [Y]", "[X] is signed to [Y]", "[X] moved to the label [Y]"),
    "P136": ("[X] plays [Y] music", "[X] switched to [Y] music", "[X]'s genre is [Y]"),
    "P641": ("[X] is a sport of [Y]",),
    "P140": ("[X] converted to [Y]", "[X] follows [Y]"),
    "P19": ("[X] was born in [Y]",),
    "P20": ("[X] died in [Y]",),
}

_SLOT = re.compile(r"\[[XY]\]|__")
_SPACE = re.compile(r"\s+")
# ParaRel patterns that are not sentences: relative clauses, bare noun phrases.
_FRAGMENT = re.compile(r"^\[[XY]\],|, (who|which|that|whose)\b|^\[[XY]\] \w+ \[[XY]\]$")


@dataclass(frozen=True)
class RelationInfo:
    """One relation: its id, name, cloze and question (``{}`` for the subject), and the
    sentence patterns that state it (``[X]`` subject, ``[Y]`` object)."""

    rid: str
    name: str
    cloze: str
    question: str
    patterns: tuple[str, ...]


def _tidy(pattern: str) -> str:
    return _SPACE.sub(" ", pattern).strip().rstrip(".").rstrip()


def _from_mquake(template: str) -> str:
    """``"[X] is located in __"`` → ``"{} is located in"``."""
    return _tidy(template.replace("__", "")).replace("[X]", "{}").rstrip("?").rstrip()


def build_catalogue(data_dir: Path) -> dict[str, RelationInfo]:
    """The catalogue from the data folder's MQuAKE templates and ParaRel patterns."""
    prompts = data_dir / "mquake" / "prompts"
    questions = json.loads((prompts / "question_templates.json").read_text(encoding="utf-8"))
    clozes = json.loads((prompts / "cloze_templates.json").read_text(encoding="utf-8"))
    pararel: dict[str, list[str]] = {}
    for path in sorted((data_dir / "pararel" / "patterns").glob("P*.jsonl")):
        lines = path.read_text(encoding="utf-8").splitlines()
        pararel[path.stem] = [_tidy(json.loads(line)["pattern"]) for line in lines if line]
    out: dict[str, RelationInfo] = {}
    for rid, name in NAMES.items():
        if rid in clozes:
            cloze = _from_mquake(clozes[rid])
            question = questions[rid].replace("[X]", "{}")
        elif rid in EXTRA:
            cloze, question = EXTRA[rid]
        elif rid in pararel:
            ends = [p for p in pararel[rid] if p.endswith("[Y]") and "[X]" in p]
            if not ends:
                continue
            cloze = ends[0].removesuffix("[Y]").rstrip().replace("[X]", "{}")
            question = f"What is the {name} of {{}}?"
        else:
            continue
        patterns = [p for p in pararel.get(rid, []) if not _FRAGMENT.search(p)]
        if rid in clozes:
            patterns.append(_tidy(clozes[rid].replace("__", "[Y]")))
        patterns += CHANGE_PATTERNS.get(rid, ())
        out[rid] = RelationInfo(rid, name, cloze, question, tuple(dict.fromkeys(patterns)))
    return out


def _dump(catalogue: dict[str, RelationInfo]) -> str:
    body = {
        "_about": (
            "kme_rag's relation catalogue, built by kme_rag.memory.catalogue from MQuAKE's "
            "templates (Zhong et al. 2023, MIT licence) and ParaRel's patterns (Elazar et "
            "al. 2021, MIT licence, Copyright (c) 2021 Yanai Elazar) plus kme_rag's own "
            "change patterns. The licence texts: kme_rag/memory/LICENSES/."
        ),
        "relations": {
            rid: {"name": r.name, "cloze": r.cloze, "question": r.question, "patterns": r.patterns}
            for rid, r in catalogue.items()
        },
    }
    return json.dumps(body, indent=1, ensure_ascii=False) + "\n"


@functools.cache
def load_catalogue(path: Path = SHIPPED) -> dict[str, RelationInfo]:
    """The shipped catalogue (no data folder needed)."""
    data = json.loads(path.read_text(encoding="utf-8"))["relations"]
    return {
        rid: RelationInfo(rid, r["name"], r["cloze"], r["question"], tuple(r["patterns"]))
        for rid, r in data.items()
    }


def main(argv: list[str]) -> None:
    SHIPPED.write_text(_dump(build_catalogue(Path(argv[0]))), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
