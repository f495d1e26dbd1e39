"""A terminal chat session through the editor, with edit commands between turns.

Pure of I/O: :meth:`ChatSession.handle` takes one typed line and returns the text to
show (or None to quit), so the session is testable without a terminal.
"""

from __future__ import annotations

from kme_rag.backends import Message
from kme_rag.editor import KnowledgeEditor
from kme_rag.errors import KmeError
from kme_rag.memory.edit import parse_edit

__all__ = ["ChatSession"]

HELP = "commands: /edit SUBJECT | RELATION | NEW, /undo, /edits, /reset, /quit"


class ChatSession:
    """One conversation: user turns go through the editor, commands change the edits."""

    def __init__(self, editor: KnowledgeEditor, history_turns: int = 4) -> None:
        self.editor = editor
        self.history: list[Message] = []
        self._keep = history_turns * 2

    def handle(self, line: str) -> str | None:
        line = line.strip()
        if not line:
            return ""
        if line in ("/quit", "/exit"):
            return None
        try:
            if line.startswith("/"):
                return self._command(line)
            return self._turn(line)
        except KmeError as exc:
            return f"error: {exc.message}"

    def _turn(self, text: str) -> str:
        messages: list[Message] = [*self.history, {"role": "user", "content": text}]
        answer = self.editor.chat(messages)
        reply: Message = {"role": "assistant", "content": answer.text}
        self.history = [*messages, reply][-self._keep :]
        used = f"  [edits used: {', '.join(answer.edit_ids)}]" if answer.edits else ""
        read = f"  [read as: {answer.question}]" if answer.question else ""
        return answer.text + used + read

    def _command(self, line: str) -> str:
        command, _, rest = line.partition(" ")
        memory = self.editor.memory
        if command == "/edit":
            parts = [p.strip() for p in rest.split("|")]
            if len(parts) != 3:
                return f"usage: /edit SUBJECT | RELATION | NEW (got {rest!r})"
            edit = memory.add(
                parse_edit({"subject": parts[0], "relation": parts[1], "target_new": parts[2]})
            )
            return f"added {edit.id}: {edit.statement}"
        if command == "/undo":
            return memory.undo().describe()
        if command == "/edits":
            edits = memory.edits()
            return "\n".join(f"{e.id}  {e.statement}" for e in edits) or "(no edits)"
        if command == "/reset":
            self.history = []
            return "conversation cleared"
        return HELP
