"""Shaping the text of a planned answer, streamed or whole: the prefilled new object
first, then the model's continuation cut at the first stop string, and for chat answers
the surrounding whitespace removed. Pure; the same rules give the same text whether the
answer arrives in one piece or in many.

Stop strings apply to the *generated* text only (as :meth:`Backend.complete` does), so a
prefill such as ``" Washington, D.C."`` is never cut at its own comma.
"""

from __future__ import annotations

from collections.abc import Sequence

from kme_rag.backends import cut_at_stop

__all__ = ["AnswerText", "StopCutter", "Stripper", "shape_answer", "stop_list"]


def stop_list(stop: object) -> list[str]:
    """The user's ``stop`` option as a list: None → [], "x" → ["x"]."""
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return [s for s in stop if s]
    return []


def shape_answer(prefill: str, generated: str, stop: Sequence[str], *, strip: bool) -> str:
    """The whole answer: ``prefill + generated`` cut at the first stop of ``generated``."""
    text = prefill + cut_at_stop(generated, stop)
    return text.strip() if strip else text


class StopCutter:
    """Streams text, holding back any tail that could begin a stop string, and stops for
    good at the first stop string found (``stopped`` then stays True)."""

    def __init__(self, stop: Sequence[str]) -> None:
        self._stop = [s for s in stop if s]
        self._held = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        if self.stopped:
            return ""
        text = self._held + piece
        cut = min((i for s in self._stop if (i := text.find(s)) >= 0), default=-1)
        if cut >= 0:
            self._held, self.stopped = "", True
            return text[:cut]
        hold = self._partial(text)
        self._held = text[len(text) - hold :] if hold else ""
        return text[: len(text) - hold]

    def _partial(self, text: str) -> int:
        """The length of the longest tail of ``text`` that starts some stop string."""
        longest = 0
        for stop in self._stop:
            for size in range(min(len(stop) - 1, len(text)), longest, -1):
                if stop.startswith(text[-size:]):
                    longest = size
                    break
        return longest

    def finish(self) -> str:
        held, self._held = self._held, ""
        return "" if self.stopped else held


class Stripper:
    """Streams text with its leading and trailing whitespace removed: leading whitespace
    is dropped until the first visible character, trailing whitespace is held until
    something visible follows it (and dropped at the end)."""

    def __init__(self) -> None:
        self._started = False
        self._pending = ""

    def feed(self, piece: str) -> str:
        if not self._started:
            piece = piece.lstrip()
            self._started = bool(piece)
        text = self._pending + piece
        body = text.rstrip()
        self._pending = text[len(body) :]
        return body


class AnswerText:
    """One choice's streamed answer: the prefill, then the cut continuation, stripped
    for chat. ``feed`` and ``finish`` return the text to send now."""

    def __init__(self, prefill: str, stop: Sequence[str], *, strip: bool) -> None:
        self._prefill = prefill
        self._cutter = StopCutter(stop)
        self._stripper = Stripper() if strip else None

    @property
    def stopped(self) -> bool:
        return self._cutter.stopped

    def _out(self, text: str) -> str:
        if self._prefill:
            text, self._prefill = self._prefill + text, ""
        return self._stripper.feed(text) if self._stripper else text

    def feed(self, piece: str) -> str:
        return self._out(self._cutter.feed(piece))

    def finish(self) -> str:
        return self._out(self._cutter.finish())
