"""The inference gateway driven by the official `anthropic` and `openai` SDKs and by
ainative-agent, unchanged, against zerodb-local with the fake provider behind it.

Every alias exists on both kinds of provider (conftest.providers_toml): `a-*` on an
Anthropic-format provider, `o-*` on an OpenAI-format one, so each SDK is checked both
where the gateway passes its format through and where it translates. The fake's replies
and token counts are deterministic (tests/src/fake_provider.rs): `echo: <last user text>`;
input tokens are the words of all messages and the system prompt, output tokens the words
of the reply, 7 for a tool call.
"""

import asyncio
import json
import subprocess
import time

import anthropic
import httpx
import openai
import pytest
from ainative_agent import AINativeClient
from ainative_agent.types import ChatRequest

from conftest import BIN, inference_server, providers_toml, root_key

PROVIDERS = ["a", "o"]

QUESTION = "hello there world"  # 3 words in
ECHO = "echo: hello there world"  # 4 words out
TOOL_QUESTION = "find the deploy window"  # 4 words in
TOOL_RESULT = "Tuesday at 14:00"  # 3 words
TOOL_REPLY = "tool said: Tuesday at 14:00"  # 5 words out
TOOL_CALL_TOKENS = 7

ANTHROPIC_TOOLS = [
    {
        "name": "search_docs",
        "description": "Search the team's documents.",
        "input_schema": {
            "type": "object",
            "properties": {"query": {"type": "string"}},
            "required": ["query"],
        },
    }
]
OPENAI_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "search_docs",
            "description": "Search the team's documents.",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string"}},
                "required": ["query"],
            },
        },
    }
]

# Two providers with a long timeout for the endless streams, so that the only thing that
# ends one is the client going away (the fa/fo providers give up after 2 s).
LONG_PROVIDERS = """
[providers.fa-long]
kind = "anthropic"
base_url = "{base}/anthropic"
api_key_env = "FAKE_PROVIDER_KEY"
timeout_ms = 60000

[providers.fo-long]
kind = "openai"
base_url = "{base}/openai/v1"
api_key_env = "FAKE_PROVIDER_KEY"
timeout_ms = 60000
"""


def write_providers(path, fake, extra_aliases=""):
    aliases = (
        'a-endless-long = { provider = "fa-long", model = "endless" }\n'
        'o-endless-long = { provider = "fo-long", model = "endless" }\n' + extra_aliases
    )
    providers_toml(path, fake, aliases)
    with open(path, "a") as f:
        f.write(LONG_PROVIDERS.format(base=fake.base))
    return str(path)


@pytest.fixture(scope="module")
def gw(tmp_path_factory, fake_provider):
    d = tmp_path_factory.mktemp("gateway")
    s = inference_server(d / "data", write_providers(d / "providers.toml", fake_provider))
    yield s
    if s.proc.poll() is None:
        s.stop()


def claude(server, key=None) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=server.base, api_key=key or root_key(server), max_retries=0, timeout=30.0
    )


def gpt(server, path="/v1", key=None) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=server.base + path, api_key=key or root_key(server), max_retries=0, timeout=30.0
    )


def scoped_key(server, scopes) -> str:
    r = httpx.post(
        f"{server.base}/api/v1/auth/keys",
        headers={"X-API-Key": root_key(server)},
        json={"name": "inference-test", "scopes": scopes},
    )
    assert r.status_code == 201, r.text
    return r.json()["key"]


# -- anthropic SDK ------------------------------------------------------------------------


@pytest.mark.parametrize("p", PROVIDERS)
def test_anthropic_create_plain_and_with_system(gw, p):
    client = claude(gw)
    msg = client.messages.create(
        model=f"{p}-echo", max_tokens=64, messages=[{"role": "user", "content": QUESTION}]
    )
    assert msg.id
    assert msg.type == "message" and msg.role == "assistant"
    assert msg.model == f"{p}-echo", "the reply names the alias asked for, not the provider's model"
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == ECHO
    assert msg.stop_reason == "end_turn"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (3, 4)

    msg = client.messages.create(
        model=f"{p}-echo",
        max_tokens=64,
        system="answer very briefly",
        messages=[{"role": "user", "content": QUESTION}],
    )
    assert msg.content[0].text == ECHO
    assert msg.usage.input_tokens == 6, "the system prompt reached the provider"


@pytest.mark.parametrize("p", PROVIDERS)
def test_anthropic_stream_text_and_final_usage(gw, p):
    with claude(gw).messages.stream(
        model=f"{p}-echo", max_tokens=64, messages=[{"role": "user", "content": QUESTION}]
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == ECHO
    assert len(pieces) >= 2, f"streamed in pieces, not one lump: {pieces}"
    assert final.id
    assert final.model == f"{p}-echo"
    assert final.content[0].text == ECHO
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (3, 4)


@pytest.mark.parametrize("p", PROVIDERS)
def test_anthropic_tool_use_then_tool_result(gw, p):
    client = claude(gw)
    question = {"role": "user", "content": TOOL_QUESTION}
    msg = client.messages.create(
        model=f"{p}-echo", max_tokens=64, tools=ANTHROPIC_TOOLS, messages=[question]
    )
    assert msg.stop_reason == "tool_use"
    calls = [b for b in msg.content if b.type == "tool_use"]
    assert len(calls) == 1, msg.content
    call = calls[0]
    assert call.id
    assert call.name == "search_docs"
    assert call.input == {"query": TOOL_QUESTION}
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (4, TOOL_CALL_TOKENS)

    reply = client.messages.create(
        model=f"{p}-echo",
        max_tokens=64,
        tools=ANTHROPIC_TOOLS,
        messages=[
            question,
            {"role": "assistant", "content": msg.content},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": TOOL_RESULT}],
            },
        ],
    )
    assert reply.stop_reason == "end_turn"
    assert [b.type for b in reply.content] == ["text"]
    assert reply.content[0].text == TOOL_REPLY
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (4 + 3, 5)


@pytest.mark.parametrize("p", PROVIDERS)
def test_anthropic_stream_tool_use_accumulates_input(gw, p):
    with claude(gw).messages.stream(
        model=f"{p}-echo",
        max_tokens=64,
        tools=ANTHROPIC_TOOLS,
        messages=[{"role": "user", "content": TOOL_QUESTION}],
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    json_pieces = [e.partial_json for e in events if e.type == "input_json"]
    assert len(json_pieces) >= 2, f"the arguments came in pieces: {json_pieces}"
    assert final.stop_reason == "tool_use"
    calls = [b for b in final.content if b.type == "tool_use"]
    assert len(calls) == 1, final.content
    assert calls[0].id
    assert calls[0].name == "search_docs"
    assert calls[0].input == {"query": TOOL_QUESTION}
    assert (final.usage.input_tokens, final.usage.output_tokens) == (4, TOOL_CALL_TOKENS)


# -- openai SDK ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1", "/api/v1"])
@pytest.mark.parametrize("p", PROVIDERS)
def test_openai_create_plain_and_with_system(gw, p, path):
    client = gpt(gw, path)
    r = client.chat.completions.create(
        model=f"{p}-echo", messages=[{"role": "user", "content": QUESTION}]
    )
    assert r.id
    assert r.object == "chat.completion"
    assert r.model == f"{p}-echo"
    assert len(r.choices) == 1
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == ECHO
    assert r.choices[0].finish_reason == "stop"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (3, 4, 7)

    r = client.chat.completions.create(
        model=f"{p}-echo",
        messages=[
            {"role": "system", "content": "answer very briefly"},
            {"role": "user", "content": QUESTION},
        ],
    )
    assert r.choices[0].message.content == ECHO
    assert r.usage.prompt_tokens == 6, "the system message reached the provider"


@pytest.mark.parametrize("p", PROVIDERS)
def test_openai_stream_with_usage(gw, p):
    chunks = list(
        gpt(gw).chat.completions.create(
            model=f"{p}-echo",
            messages=[{"role": "user", "content": QUESTION}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks, "no chunks"
    ids = {c.id for c in chunks}
    assert len(ids) == 1 and all(ids), f"one id on every chunk: {ids}"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert all(c.model == f"{p}-echo" for c in chunks)
    with_choices = [c for c in chunks if c.choices]
    assert with_choices[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in with_choices)
    assert text == ECHO
    assert sum(1 for c in with_choices if c.choices[0].delta.content) >= 2, "streamed in pieces"
    finishes = [c.choices[0].finish_reason for c in with_choices if c.choices[0].finish_reason]
    assert finishes == ["stop"]
    last = chunks[-1]
    assert last.choices == []
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (3, 4, 7)
    assert all(c.usage is None for c in chunks[:-1])


@pytest.mark.parametrize("p", PROVIDERS)
def test_openai_stream_without_include_usage_has_no_usage_chunk(gw, p):
    chunks = list(
        gpt(gw).chat.completions.create(
            model=f"{p}-echo", messages=[{"role": "user", "content": QUESTION}], stream=True
        )
    )
    assert all(c.choices for c in chunks), "no usage-only chunk unless asked for"
    assert all(c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == ECHO
    assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize("p", PROVIDERS)
def test_openai_tool_call_then_tool_result(gw, p):
    client = gpt(gw)
    question = {"role": "user", "content": TOOL_QUESTION}
    r = client.chat.completions.create(model=f"{p}-echo", tools=OPENAI_TOOLS, messages=[question])
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert not choice.message.content
    calls = choice.message.tool_calls
    assert len(calls) == 1
    call = calls[0]
    assert call.id and call.type == "function"
    assert call.function.name == "search_docs"
    assert json.loads(call.function.arguments) == {"query": TOOL_QUESTION}
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (4, TOOL_CALL_TOKENS)

    r = client.chat.completions.create(
        model=f"{p}-echo",
        tools=OPENAI_TOOLS,
        messages=[
            question,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.function.name, "arguments": call.function.arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call.id, "content": TOOL_RESULT},
        ],
    )
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.content == TOOL_REPLY
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (4 + 3, 5)


@pytest.mark.parametrize("p", PROVIDERS)
def test_openai_stream_tool_call_arguments_accumulate(gw, p):
    chunks = list(
        gpt(gw).chat.completions.create(
            model=f"{p}-echo",
            tools=OPENAI_TOOLS,
            messages=[{"role": "user", "content": TOOL_QUESTION}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(c.id for c in chunks)
    calls = {}
    pieces = 0
    for c in chunks:
        if not c.choices:
            continue
        for tc in c.choices[0].delta.tool_calls or []:
            entry = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
            if tc.id:
                entry["id"] = tc.id
            if tc.function and tc.function.name:
                entry["name"] += tc.function.name
            if tc.function and tc.function.arguments:
                entry["arguments"] += tc.function.arguments
                pieces += 1
    assert list(calls) == [0], calls
    assert calls[0]["id"]
    assert calls[0]["name"] == "search_docs"
    assert json.loads(calls[0]["arguments"]) == {"query": TOOL_QUESTION}
    assert pieces >= 2, "the arguments came in pieces"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["tool_calls"]
    assert chunks[-1].usage.completion_tokens == TOOL_CALL_TOKENS
    assert chunks[-1].usage.prompt_tokens == 4


@pytest.mark.parametrize("path", ["/v1", "/api/v1"])
def test_openai_models_list_has_the_seed_and_configured_aliases(gw, path):
    models = {m.id: m for m in gpt(gw, path).models.list()}
    for alias in ["claude-sonnet", "llama-3.3-70b", "a-echo", "o-echo", "a-429", "o-slow"]:
        assert alias in models, f"{alias} missing from {sorted(models)}"
    assert all(m.object == "model" for m in models.values())
    assert models["a-echo"].owned_by == "fa"
    assert models["o-echo"].owned_by == "fo"


def test_ainative_prefix_is_stripped_on_both_endpoints(gw):
    msg = claude(gw).messages.create(
        model="ainative/o-echo", max_tokens=64, messages=[{"role": "user", "content": QUESTION}]
    )
    assert msg.content[0].text == ECHO
    r = gpt(gw).chat.completions.create(
        model="ainative/a-echo", messages=[{"role": "user", "content": QUESTION}]
    )
    assert r.choices[0].message.content == ECHO


# -- error paths --------------------------------------------------------------------------


def call_anthropic(server, alias, **kw):
    return claude(server, kw.pop("key", None)).messages.create(
        model=alias,
        max_tokens=kw.pop("max_tokens", 64),
        messages=[{"role": "user", "content": QUESTION}],
        **kw,
    )


def call_openai(server, alias, **kw):
    return gpt(server, key=kw.pop("key", None)).chat.completions.create(
        model=alias, messages=[{"role": "user", "content": QUESTION}], **kw
    )


@pytest.mark.parametrize("p", PROVIDERS)
def test_provider_429_is_a_rate_limit_error_with_retry_after(gw, p):
    with pytest.raises(anthropic.RateLimitError) as e:
        call_anthropic(gw, f"{p}-429")
    assert e.value.status_code == 429
    assert e.value.response.headers["retry-after"] == "30"
    assert e.value.body["type"] == "error"
    assert e.value.body["error"]["type"] == "rate_limit_error"

    with pytest.raises(openai.RateLimitError) as e:
        call_openai(gw, f"{p}-429")
    assert e.value.status_code == 429
    assert e.value.response.headers["retry-after"] == "30"
    assert e.value.body["message"]  # openai's body is the `error` object


@pytest.mark.parametrize("p", PROVIDERS)
def test_a_provider_busy_once_is_retried_by_the_gateway(gw, fake_provider, p):
    fake_provider.reset()
    msg = call_anthropic(gw, f"{p}-busy")
    assert msg.content[0].text == ECHO
    assert fake_provider.requests("busy-once") == 2, "one 429 (Retry-After: 1), then the retry"

    fake_provider.reset()
    r = call_openai(gw, f"{p}-busy")
    assert r.choices[0].message.content == ECHO
    assert fake_provider.requests("busy-once") == 2


@pytest.mark.parametrize("p", PROVIDERS)
def test_provider_500_is_a_502(gw, fake_provider, p):
    fake_provider.reset()
    with pytest.raises(anthropic.APIStatusError) as e:
        call_anthropic(gw, f"{p}-500")
    assert e.value.status_code == 502
    assert isinstance(e.value, anthropic.InternalServerError)
    assert e.value.body["error"]["type"]
    assert fake_provider.requests("server-error") == 2, "max_retries = 1: tried twice"

    with pytest.raises(openai.APIStatusError) as e:
        call_openai(gw, f"{p}-500")
    assert e.value.status_code == 502
    assert isinstance(e.value, openai.InternalServerError)


@pytest.mark.parametrize("p", PROVIDERS)
def test_provider_timeout_is_a_504_within_the_configured_timeout(gw, p):
    started = time.monotonic()
    with pytest.raises(anthropic.APIStatusError) as e:
        call_anthropic(gw, f"{p}-slow")
    assert e.value.status_code == 504
    # timeout_ms = 2000, one retry at most: far below the fake's 30 s.
    assert time.monotonic() - started < 8

    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as e:
        call_openai(gw, f"{p}-slow")
    assert e.value.status_code == 504
    assert time.monotonic() - started < 8


@pytest.mark.parametrize("p", PROVIDERS)
def test_provider_cut_mid_stream_raises_while_iterating(gw, p):
    received = []
    with pytest.raises(anthropic.APIError) as e:
        with claude(gw).messages.stream(
            model=f"{p}-cut", max_tokens=64, messages=[{"role": "user", "content": QUESTION}]
        ) as stream:
            for text in stream.text_stream:
                received.append(text)
    # An in-stream error event, not a dropped connection.
    assert not isinstance(e.value, anthropic.APIConnectionError), repr(e.value)
    assert "".join(received) == "echo: ", "the text before the cut was delivered"

    received = []
    with pytest.raises(openai.APIError) as e:
        for chunk in call_openai(gw, f"{p}-cut", stream=True):
            assert chunk.id
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert not isinstance(e.value, openai.APIConnectionError), repr(e.value)
    assert "".join(received) == "echo: "


@pytest.mark.parametrize("p", PROVIDERS)
def test_provider_cut_whole_reply_is_a_502(gw, p):
    with pytest.raises(anthropic.APIStatusError) as e:
        call_anthropic(gw, f"{p}-cut")
    assert e.value.status_code == 502
    with pytest.raises(openai.APIStatusError) as e:
        call_openai(gw, f"{p}-cut")
    assert e.value.status_code == 502


def test_unknown_model_is_a_bad_request_naming_the_aliases(gw):
    with pytest.raises(anthropic.BadRequestError) as e:
        call_anthropic(gw, "no-such-model")
    assert "claude-sonnet" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        call_openai(gw, "no-such-model")
    assert "claude-sonnet" in e.value.message


def test_a_key_without_inference_call_is_refused(gw, fake_provider):
    key = scoped_key(gw, ["memory:read"])
    fake_provider.reset()
    with pytest.raises(anthropic.PermissionDeniedError) as e:
        call_anthropic(gw, "a-echo", key=key)
    assert e.value.status_code == 403
    with pytest.raises(openai.PermissionDeniedError) as e:
        call_openai(gw, "o-echo", key=key)
    assert e.value.status_code == 403
    assert fake_provider.requests("echo-1") == 0


def test_a_key_with_inference_call_is_served(gw):
    key = scoped_key(gw, ["inference:call"])
    assert call_anthropic(gw, "o-echo", key=key).content[0].text == ECHO
    assert call_openai(gw, "a-echo", key=key).choices[0].message.content == ECHO


def test_a_call_that_may_cost_more_than_is_left_is_a_402_before_any_provider_is_called(tmp_path, fake_provider):
    # $1 a token and $150 granted: a call reserves its largest cost (max_tokens and its
    # prompt) before the provider is called, so the balance can never go below zero.
    providers = write_providers(
        tmp_path / "providers.toml",
        fake_provider,
        'pricey = { provider = "fa", model = "pricey-echo", price = { input = 1000000, output = 1000000 } }\n',
    )
    s = inference_server(tmp_path / "data", providers, env={"ZERODB_CREDITS_USD": "150"})
    try:
        fake_provider.reset()
        assert call_anthropic(s, "pricey").content[0].text == ECHO
        assert fake_provider.requests("pricey-echo") == 1

        with pytest.raises(anthropic.APIStatusError) as e:
            call_anthropic(s, "pricey", max_tokens=1000)
        assert e.value.status_code == 402
        body = e.value.response.json()
        assert body["error_code"] == "INSUFFICIENT_CREDITS"
        assert "max_tokens" in body["detail"], body

        # No max_tokens: the 4,096 it would be sent with is what it reserves.
        with pytest.raises(openai.APIStatusError) as e:
            call_openai(s, "pricey", stream=True)
        assert e.value.status_code == 402
        assert e.value.response.json()["error_code"] == "INSUFFICIENT_CREDITS"

        assert fake_provider.requests("pricey-echo") == 1, "the provider was not called for a call that could overspend"
        credits = httpx.get(f"{s.base}/api/v1/usage", headers={"X-API-Key": root_key(s)}).json()["credits"]
        assert credits["reserved_usd"] == 0, credits
        assert 0 <= credits["remaining_usd"] < 150, credits
    finally:
        s.stop()


def wait_for_cancelled(fake, n, within=5.0):
    deadline = time.monotonic() + within
    while True:
        cancelled = fake.stats()["cancelled"]
        if cancelled >= n or time.monotonic() > deadline:
            return cancelled
        time.sleep(0.05)


@pytest.mark.parametrize(
    "endpoint,alias",
    [
        ("/v1/messages", "a-endless-long"),
        ("/v1/messages", "o-endless-long"),
        ("/v1/chat/completions", "a-endless-long"),
        ("/v1/chat/completions", "o-endless-long"),
    ],
)
def test_a_client_leaving_mid_stream_cancels_the_provider_call(gw, fake_provider, endpoint, alias):
    fake_provider.reset()
    key = root_key(gw)
    if endpoint == "/v1/messages":
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
        body = {"model": alias, "max_tokens": 64, "stream": True, "messages": [{"role": "user", "content": QUESTION}]}
    else:
        headers = {"Authorization": f"Bearer {key}"}
        body = {"model": alias, "stream": True, "messages": [{"role": "user", "content": QUESTION}]}
    with httpx.Client(timeout=10) as http:
        with http.stream("POST", gw.base + endpoint, headers=headers, json=body) as r:
            assert r.status_code == 200, r.read()
            events = 0
            for line in r.iter_lines():
                if line.startswith("data:"):
                    events += 1
                    if events == 2:
                        break
    # The provider's stream runs for a minute unless the gateway drops it.
    assert wait_for_cancelled(fake_provider, 1) == 1


# -- ainative-agent -----------------------------------------------------------------------


@pytest.mark.parametrize("p", PROVIDERS)
def test_ainative_agent_chat_complete_and_stream(gw, p):
    async def main():
        async with AINativeClient(base_url=gw.base, api_key=root_key(gw), timeout=30.0) as client:
            request = ChatRequest(messages=[{"role": "user", "content": QUESTION}], model=f"{p}-echo")
            whole = await client.chat.complete(request)
            chunks = [c async for c in client.chat.stream(request)]
            return whole, chunks

    whole, chunks = asyncio.run(main())
    assert whole.id
    assert whole.model == f"{p}-echo"
    assert whole.choices[0].message["content"] == ECHO
    assert whole.choices[0].finish_reason == "stop"
    assert (whole.usage.prompt_tokens, whole.usage.completion_tokens, whole.usage.total_tokens) == (3, 4, 7)

    assert chunks
    assert len({c.id for c in chunks}) == 1 and chunks[0].id
    text = "".join((c.choices[0].get("delta") or {}).get("content") or "" for c in chunks if c.choices)
    assert text == ECHO


# -- usage --------------------------------------------------------------------------------


def usage(server, key):
    r = httpx.get(f"{server.base}/api/v1/usage", headers={"X-API-Key": key})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("stream", [False, True])
def test_usage_records_each_call_with_its_tokens(gw, stream):
    key = root_key(gw)
    # Five words in, six out: a count no other test uses.
    question = "count these five words please"
    if stream:
        chunks = list(
            gpt(gw).chat.completions.create(
                model="a-echo", messages=[{"role": "user", "content": question}], stream=True
            )
        )
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"echo: {question}"
    else:
        call = gpt(gw).chat.completions.create(model="o-echo", messages=[{"role": "user", "content": question}])
        assert call.usage.prompt_tokens == 5
    alias = "a-echo" if stream else "o-echo"

    # The record is written before the response (a stream's last event) reaches the client.
    body = usage(gw, key)
    newest = body["records"][0]
    assert "credits" in body
    assert newest["alias"] == alias, body["records"][:3]
    assert newest["provider_model"] == "echo-1"
    assert (newest["input_tokens"], newest["output_tokens"]) == (5, 6)
    assert newest["status"] == 200
    assert newest["cost_usd"] >= 0
    assert newest["latency_ms"] >= 0
    assert newest["key_id"]
    assert newest["created_at"]


def test_usage_of_another_account_is_not_visible(gw):
    out = subprocess.run(
        [BIN, "accounts", "create", "--name", "other-org", "--data-dir", gw.data_dir],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    other_key = next(
        line.split(":", 1)[1].strip() for line in out.stdout.splitlines() if line.startswith("root_key:")
    )
    assert usage(gw, other_key)["records"] == [], "a new account has no usage"

    r = gpt(gw, key=other_key).chat.completions.create(
        model="o-echo", messages=[{"role": "user", "content": "only mine"}]
    )
    assert r.choices[0].message.content == "echo: only mine"
    mine = usage(gw, other_key)["records"]
    assert [(u["alias"], u["input_tokens"], u["output_tokens"]) for u in mine] == [("o-echo", 2, 3)]
    theirs = usage(gw, root_key(gw))["records"]
    assert theirs, "the first account's records are still there"
    assert all(u["key_id"] != mine[0]["key_id"] for u in theirs)


# -- embeddings -----------------------------------------------------------------------------


def embedder_name(server) -> str:
    (line,) = [l for l in server.banner if l.strip().startswith("embedder:")]
    return line.split(":", 1)[1].strip()


def test_openai_sdk_embeddings_are_the_memory_embedders_vectors(gw):
    model = embedder_name(gw)
    client = gpt(gw)
    # The SDK asks for base64 and decodes it; the floats it gets must be the server's.
    got = client.embeddings.create(model=model, input=["deploy window", "dark mode"])
    assert got.model == model
    assert [d.index for d in got.data] == [0, 1]
    plain = httpx.post(
        f"{gw.base}/api/v1/embeddings",
        headers={"X-API-Key": root_key(gw)},
        json={"model": model, "input": ["deploy window", "dark mode"], "encoding_format": "float"},
    ).json()
    for sdk_item, raw_item in zip(got.data, plain["data"]):
        assert len(sdk_item.embedding) == len(raw_item["embedding"]) > 0
        assert max(abs(a - b) for a, b in zip(sdk_item.embedding, raw_item["embedding"])) < 1e-6
    assert got.usage.prompt_tokens == 4
    with pytest.raises(openai.UnprocessableEntityError) as e:
        client.embeddings.create(model="text-embedding-3-small", input="x")
    assert model in str(e.value)
