"""Common aliases of well-known names, so an edit of "United Kingdom" also holds for "the UK".

The source is a maintained gazetteer, `countryinfo <https://pypi.org/project/countryinfo/>`_
(MIT): each country's name and its ``altSpellings``. They are filtered for precision,
because a wrong alias is a locality failure (a question about one entity answered with
another's edit):

- a code (two or three capitals: "GB", "DEU", "CAN") is kept only when it is the initials
  of the country's name ("UK", "US"; a three-letter code also those of another of its
  spellings: "USA", "DRC", "UAE"), and then also in its dotted form ("U.K."); ISO codes
  that are not initials are what nobody types ("DE", "FR", "GB" for the United Kingdom),
  several are English words, and of the two-letter initials only :data:`TWO_LETTER_CODES`
  name their country in running text;
- inverted forms ("Korea, Republic of"), the demonym ("Togolese"), any spelling that
  two countries share and any whose words end another country's spelling ("Republic of
  China", in "People's Republic of China") are dropped, and so are :data:`NOT_ALIASES`:
  English words, given names and fragments of native names that the gazetteer lists as
  spellings ("Island" for Iceland, "Dominique", "Mann"), found by the experiment's false
  links on ParaRel's T-REx questions and by reading the one-word spellings (never on
  evaluation data).

A code that is also an English word ("US") matches only where it is typed as one
(:func:`~kme_rag.memory.mention.typed_as_acronym`: in capitals, or lower-case after "the"),
so "tell us" does not name the United States; "uk" does name the United Kingdom.
``benchmarks/experiments/alias_precision.py`` measures the links these aliases add.
The user's own aliases (``subject_aliases``) come first and are never dropped.
"""

from __future__ import annotations

import functools
import re

from kme_rag.memory.edit import Edit, normalise_name
from kme_rag.memory.mention import name_tokens

__all__ = ["is_country", "known_aliases", "subject_names", "target_names"]

_CODE = re.compile(r"^[A-Z]{2,3}$")
# In WikiText-2's running text (validation + test) the two-letter initials of other
# countries named something else in every sampled mention (CR 23 county roads, SM 24
# U-boats, SS 5 ships and the SS); UK and US named their country in all of theirs.
TWO_LETTER_CODES = frozenset({"UK", "US"})
NOT_ALIASES = frozenset(
    {"Dominique", "Guiana", "Island", "Lao", "Mann", "Mexicanos", "Portuguesa", "Prathet"}
    | {"Reunion", "Viti", "Zhonghua"}
)
_SKIP = frozenset({"of", "the", "and", "de", "du", "des", "la", "le", "del"})


def _initials(name: str) -> str:
    return "".join(word[0] for word in name_tokens(name) if word not in _SKIP).upper()


def _spellings(name: str, alternatives: list[str], demonym: str) -> list[str]:
    """A country's name and the alternative spellings worth matching."""
    spelled = {_initials(a) for a in alternatives if not _CODE.match(a)}
    kept = [name]
    for alias in alternatives:
        if (
            not name_tokens(alias)
            or "," in alias
            or alias in NOT_ALIASES
            or normalise_name(alias) == normalise_name(demonym)
        ):
            continue
        if _CODE.match(alias):
            if len(alias) == 2 and alias not in TWO_LETTER_CODES:
                continue
            if alias != _initials(name) and not (len(alias) == 3 and alias in spelled):
                continue
            kept.append(".".join(alias) + ".")  # "U.K.": typed with the stops
        kept.append(alias)
    return kept


def _inside_others(groups: list[list[str]]) -> set[tuple[int, str]]:
    """(country, spelling) pairs whose spelling's words end or sit inside another
    country's spelling: "Republic of China" (Taiwan) in "People's Republic of China".
    One that *starts* another ("U.S." of "U.S. Virgin Islands") is told apart in text:
    the longer name runs on into a capitalised word (``Mention.extended``)."""
    every = [  # an inverted name ("Virgin Islands, U.S.") is read in no text
        (i, tuple(name_tokens(s))) for i, group in enumerate(groups) for s in group if "," not in s
    ]
    found = set()
    for index, group in enumerate(groups):
        for spelling in group:
            mine = tuple(name_tokens(spelling))
            n = len(mine)
            for other, theirs in every:
                if (
                    other != index
                    and len(theirs) > n
                    and any(theirs[k : k + n] == mine for k in range(1, len(theirs) - n + 1))
                ):
                    found.add((index, spelling))
                    break
    return found


@functools.cache
def _table() -> dict[str, tuple[str, ...]]:
    """Normalised spelling → every spelling of the country it names."""
    from countryinfo import CountryInfo

    groups: list[list[str]] = []
    for record in CountryInfo.all().values():
        name = record.get("name")
        if not isinstance(name, str) or not name:
            continue
        groups.append(
            _spellings(name, list(record.get("altSpellings") or ()), record.get("demonym") or "")
        )
    owners: dict[str, set[int]] = {}
    for index, group in enumerate(groups):
        for spelling in group:
            owners.setdefault(normalise_name(spelling), set()).add(index)
    inside = _inside_others(groups)
    table: dict[str, tuple[str, ...]] = {}
    for index, group in enumerate(groups):
        kept = (
            s
            for position, s in enumerate(group)
            if owners[normalise_name(s)] == {index} and (position == 0 or (index, s) not in inside)
        )
        own = tuple(dict.fromkeys(kept).keys())
        for spelling in own:
            table[normalise_name(spelling)] = own
    return table


def known_aliases(name: str) -> tuple[str, ...]:
    """The gazetteer's other spellings of ``name`` (none when it names no known entity):
    ``"United Kingdom"`` → ``("UK", "U.K.", "Great Britain", …)``; ``"UK"`` →
    ``("United Kingdom", …)``."""
    spellings = _table().get(normalise_name(name), ())
    return tuple(s for s in spellings if normalise_name(s) != normalise_name(name))


def is_country(name: str) -> bool:
    """Whether the gazetteer knows ``name`` as a country's spelling."""
    return normalise_name(name) in _table()


def _names(name: str | None, aliases: tuple[str, ...]) -> tuple[str, ...]:
    if not name:
        return ()
    derived = [a for n in (name, *aliases) for a in known_aliases(n)]
    kept: dict[object, str] = {}  # first spelling of each, as matched: by words, and
    for spelling in (name, *aliases):  # a derived one not when only "the" tells it apart
        kept.setdefault(tuple(name_tokens(spelling)), spelling)
    for spelling in derived:
        if not any(normalise_name(spelling) == normalise_name(k) for k in kept.values()):
            kept.setdefault(tuple(name_tokens(spelling)), spelling)
    return tuple(kept.values())


def subject_names(edit: Edit) -> tuple[str, ...]:
    """The names ``edit``'s subject goes by: its own, the user's aliases, then the known
    aliases of each (empty for an unstructured edit)."""
    return _names(edit.subject, edit.subject_aliases)


def target_names(edit: Edit) -> tuple[str, ...]:
    """The names ``edit``'s new object goes by, as :func:`subject_names`."""
    return _names(edit.target_new, edit.target_aliases)
