"""The proxy's pure parts: stream shaping, SSE framing, request translation, auth."""

from __future__ import annotations

import json

import pytest

from kme_rag.errors import AuthenticationError, PermissionDeniedError
from kme_rag.server.auth import identify, loopback_client, require_admin, require_namespace
from kme_rag.server.cli import bind_host
from kme_rag.server.failures import validation_message
from kme_rag.server.sse import EventSplitter, encode_event, event_data
from kme_rag.server.text import AnswerText, StopCutter, shape_answer
from kme_rag.server.translate import (
    ChunkRewriter,
    answer_chunks,
    answer_completion,
    chat_as_completion,
    chat_from_completion,
    editor_messages,
    planned_completion,
    planned_messages,
    prompt_text,
    rewrite_completion,
)
from kme_rag.server.upstream import forward_headers
from kme_rag.settings import Settings

PREFILL_STOP = ("\n", ",", ".", ";", " and ", " but ")


def pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 100])
@pytest.mark.parametrize("strip", [False, True])
def test_a_streamed_answer_is_the_whole_answer_whatever_the_chunks(size: int, strip: bool) -> None:
    generated = " City, the capital and more\nQ: next"
    stream = AnswerText(" Rome", PREFILL_STOP, strip=strip)
    out = "".join(stream.feed(p) for p in pieces(generated, size)) + stream.finish()
    assert out == shape_answer(" Rome", generated, PREFILL_STOP, strip=strip)
    assert out == ("Rome City" if strip else " Rome City")
    assert stream.stopped


def test_a_stop_string_split_over_chunks_is_still_found_and_nothing_after_it_is_sent() -> None:
    cutter = StopCutter(["\nQ:"])
    assert cutter.feed("Kyoto\n") == "Kyoto"  # "\n" could begin the stop: held
    assert cutter.feed("Q: what") == ""
    assert cutter.stopped and cutter.feed("more") == "" and cutter.finish() == ""


def test_held_text_that_turns_out_not_to_be_a_stop_is_sent() -> None:
    cutter = StopCutter([" and "])
    assert cutter.feed("salt an") == "salt"
    assert cutter.feed("chovies") == " anchovies"
    assert cutter.feed(" an") == "" and cutter.finish() == " an"


def test_the_prefill_is_never_cut_at_its_own_stop_characters() -> None:
    assert shape_answer(" Washington, D.C.", ", USA", PREFILL_STOP, strip=False) == (
        " Washington, D.C."
    )


def test_sse_events_are_split_whatever_the_line_endings_and_chunk_boundaries() -> None:
    raw = b'data: {"a": 1}\r\n\r\n: ping\r\n\r\ndata: [DONE]\r\n\r\n'
    splitter = EventSplitter()
    events = [e for i in range(len(raw)) for e in splitter.feed(raw[i : i + 1])]
    assert [event_data(e) for e in events] == ['{"a": 1}', None, "[DONE]"]
    assert event_data(encode_event({"x": "é"}).rstrip(b"\n")) == '{"x": "é"}'


def test_chat_to_a_base_model_keeps_the_users_options_and_unknown_fields() -> None:
    body = {
        "model": "gemma",
        "messages": [{"role": "user", "content": "Where is the Eiffel Tower?"}],
        "max_completion_tokens": 9,
        "temperature": 0.3,
        "n": 2,
        "stop": ["END"],
        "response_format": {"type": "text"},
        "my_vendor_option": {"x": 1},
    }
    sent = chat_as_completion(body, "New Fact: ...\nQ: Where?\nA: Rome", PREFILL_STOP)
    assert sent["prompt"].endswith("A: Rome") and "messages" not in sent
    assert sent["max_tokens"] == 9 and sent["temperature"] == 0.3 and sent["n"] == 2
    assert sent["my_vendor_option"] == {"x": 1} and "response_format" not in sent
    assert sent["stop"] == ["\n", ",", ".", ";"]  # the API's limit of 4; all applied locally


def test_a_planned_completion_changes_only_the_prompt_and_the_stops() -> None:
    body = {"model": "m", "prompt": "The Eiffel Tower is in", "max_tokens": 5, "echo": False}
    sent = planned_completion(body, "New Fact: X.\nThe Eiffel Tower is in Rome", ("\n",))
    assert sent == {**body, "prompt": "New Fact: X.\nThe Eiffel Tower is in Rome", "stop": ["\n"]}


def test_completion_answers_in_the_chat_shape_with_prefill_and_stop() -> None:
    upstream = {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 1,
        "model": "gemma",
        "choices": [{"index": 0, "text": " City, Italy", "finish_reason": "length"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
    chat = chat_from_completion(upstream, " Rome", PREFILL_STOP)
    assert chat["object"] == "chat.completion" and chat["usage"] == upstream["usage"]
    assert chat["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Rome City"},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    text = rewrite_completion(upstream, " Rome", PREFILL_STOP)
    assert text["choices"][0]["text"] == " Rome City"


def test_streamed_completion_chunks_become_chat_chunks_and_stop_at_the_stop_string() -> None:
    rewriter = ChunkRewriter(" Rome", PREFILL_STOP, n=1, chat=True)

    def chunk(text: str, finish: str | None = None) -> dict[str, object]:
        return {
            "id": "c",
            "object": "text_completion",
            "created": 1,
            "model": "g",
            "choices": [{"index": 0, "text": text, "finish_reason": finish}],
        }

    first = rewriter.rewrite(chunk(" City"))
    assert first is not None and first["object"] == "chat.completion.chunk"
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": "Rome City"}
    last = rewriter.rewrite(chunk(", Italy"))
    assert last is not None and last["choices"][0]["finish_reason"] == "stop"
    assert rewriter.done and rewriter.rewrite(chunk(" more")) is None


def test_the_editor_reads_text_parts_and_the_user_keeps_their_own_messages() -> None:
    original = [
        {"role": "developer", "content": "Be brief."},
        {
            "role": "user",
            "content": [{"type": "text", "text": "Where is "}, {"type": "text", "text": "it?"}],
        },
        {"role": "tool", "content": "ignored", "tool_call_id": "1"},
    ]
    read = editor_messages(original)
    assert read == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Where is it?"},
    ]
    system = {"role": "system", "content": "facts"}
    planned = planned_messages(original, read, [system, *read])  # type: ignore[list-item]
    assert planned == [system, *original]
    assert prompt_text(["one"]) == "one" and prompt_text(["a", "b"]) is None
    assert prompt_text([1, 2]) is None


def test_keys_chat_admin_and_namespaces() -> None:
    settings = Settings(
        api_keys=("chat1", "chat2"),
        admin_keys=("root", "ops"),
        key_namespaces={"chat1": ("tenant-a",), "root": ("*",)},
    )
    with pytest.raises(AuthenticationError, match="missing API key"):
        identify(settings, None)
    with pytest.raises(AuthenticationError, match="invalid API key"):
        identify(settings, "Bearer nope")
    with pytest.raises(AuthenticationError, match="malformed"):
        identify(settings, "Basic abc")
    chat = identify(settings, "Bearer chat1")
    require_namespace(chat, "tenant-a")
    with pytest.raises(PermissionDeniedError, match="namespace 'tenant-b'"):
        require_namespace(chat, "tenant-b")
    with pytest.raises(PermissionDeniedError, match="admin"):
        require_admin(chat)
    with pytest.raises(PermissionDeniedError, match="namespace 'default'"):
        require_namespace(chat, "default")  # listed: only where listed
    root = identify(settings, "bearer root")
    require_admin(root)
    require_namespace(root, "anything")
    require_namespace(root, "default")


@pytest.mark.parametrize("key", ["chat2", "ops"])
def test_a_key_not_listed_may_use_only_the_default_namespace(key: str) -> None:
    settings = Settings(
        api_keys=("chat2",), admin_keys=("ops",), key_namespaces={"other": ("x",)}, namespace="main"
    )
    caller = identify(settings, f"Bearer {key}")
    require_namespace(caller, "main")
    for namespace in ("default", "x", "*"):
        with pytest.raises(PermissionDeniedError, match=f"namespace {namespace!r}"):
            require_namespace(caller, namespace)


def test_without_keys_every_caller_is_an_admin_anywhere() -> None:
    caller = identify(Settings(), None)
    require_admin(caller)
    require_namespace(caller, "anything")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("::ffff:10.0.0.1", False),
        ("203.0.113.5", False),
        ("2001:db8::1", False),
        ("0.0.0.0", False),
        ("localhost", False),  # a client is an address, never a name
        ("testclient", False),
        ("", False),
        (None, False),
    ],
)
def test_which_clients_are_on_loopback(host: str | None, loopback: bool) -> None:
    assert loopback_client(host) is loopback


def test_keys_from_the_environment_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KME_API_KEYS", "sk-one, sk-two,")
    monkeypatch.setenv("KME_KEY_NAMESPACES", json.dumps({"sk-one": ["x"]}))
    settings = Settings()
    assert settings.api_keys == ("sk-one", "sk-two")
    assert settings.key_namespaces == {"sk-one": ("x",)}
    assert "sk-one" not in repr(settings)  # keys stay out of logs


def test_without_keys_the_proxy_binds_loopback_only_and_says_why() -> None:
    assert bind_host(Settings(), "127.0.0.1") == ("127.0.0.1", None)
    host, why = bind_host(Settings(), "0.0.0.0")
    assert host == "127.0.0.1" and why is not None and "no API keys" in why
    assert bind_host(Settings(api_keys=("k",)), "0.0.0.0") == ("0.0.0.0", None)


def test_the_proxy_key_never_goes_upstream() -> None:
    incoming = {
        "Authorization": "Bearer proxy-key",
        "x-kme-namespace": "a",
        "content-type": "application/json",
        "host": "h",
    }
    sent = forward_headers(incoming, api_key="up", pass_authorization=False)
    assert sent == {"content-type": "application/json", "authorization": "Bearer up"}
    assert "authorization" not in forward_headers(incoming, api_key=None, pass_authorization=False)
    open_proxy = forward_headers(incoming, api_key=None, pass_authorization=True)
    assert open_proxy["authorization"] == "Bearer proxy-key"


def test_validation_messages_name_the_field_and_show_the_value() -> None:
    errors = [
        {"loc": ("body", "max_tokens"), "msg": "Input should be a valid integer", "input": "8"}
    ]
    assert validation_message(errors) == (
        'invalid request (body.max_tokens): Input should be a valid integer, got "8"'
    )


def test_an_answer_the_proxy_has_is_a_chat_completion_or_its_stream() -> None:
    whole = answer_completion("Italy", "gemma", 2, 1)
    assert [c["message"]["content"] for c in whole["choices"]] == ["Italy", "Italy"]
    chunks = answer_chunks("Italy", "gemma", 1, 1)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "Italy"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
