"""Common English words: which capitalised words are capitalised only because a sentence
starts with them ("Shares rose 4%." names nothing; "Netflix named a CEO." does).

The list is every word WikiText-2 (its validation and test text, in the data folder)
writes in lower case inside a sentence at least twice as often as capitalised there; a
name is almost never written in lower case. Built by :func:`build_common_words` and shipped
as ``common_words.txt`` (no data folder at run time); a test checks the shipped file is
what the data builds. WikiText-2 (Merity et al. 2016) is CC BY-SA 3.0; the list is a
derived word list, attributed in ``kme_rag/memory/LICENSES/``.
"""

from __future__ import annotations

import functools
import re
import sys
from collections import Counter
from pathlib import Path

__all__ = ["SHIPPED", "build_common_words", "common_words"]

SHIPPED = Path(__file__).with_name("common_words.txt")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[A-Za-z][a-z'-]*")


def build_common_words(data_dir: Path) -> list[str]:
    """The sorted common words of the data folder's WikiText-2 text."""
    lower: Counter[str] = Counter()
    capital: Counter[str] = Counter()
    for name in ("valid.txt", "test.txt"):
        text = (data_dir / "wikitext-2" / name).read_text(encoding="utf-8")
        for sentence in _SENTENCE.split(text):
            for word in _WORD.findall(sentence)[1:]:  # the first is capitalised anyway
                if word.islower():
                    lower[word] += 1
                elif word[1:].islower():
                    capital[word.lower()] += 1
    return sorted(w for w, n in lower.items() if n >= 1 and n >= 2 * capital[w])


@functools.cache
def common_words() -> frozenset[str]:
    """The shipped list (lower case)."""
    return frozenset(SHIPPED.read_text(encoding="utf-8").split())


def main(argv: list[str]) -> None:
    SHIPPED.write_text("\n".join(build_common_words(Path(argv[0]))) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
