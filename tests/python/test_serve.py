"""`vllm serve` as a real subprocess on a free loopback port, answering real HTTP requests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The served config uses NxDI bucketing, so its effect is visible: the bucket list in the
# start-up log, and prompts above the largest context-encoding bucket refused with HTTP 400.
OVERRIDE = {"enable_bucketing": True, "context_encoding_buckets": [64, 256],
            "token-generation-buckets": [128, 512]}


def serve_cmd(model_dir, port, *extra):
    return [sys.executable, "-m", "vllm.entrypoints.cli.main", "serve", str(model_dir),
            "--host", "127.0.0.1", "--port", str(port), "--max-num-seqs", "16",
            "--served-model-name", "smollm2", *extra]


@pytest.fixture(scope="module")
def server_log(tmp_path_factory):
    return tmp_path_factory.mktemp("serve") / "serve.log"


@pytest.fixture(scope="module")
def server(smollm2_dir, server_log):
    port = free_port()
    log = server_log
    cmd = serve_cmd(smollm2_dir, port, "--max-model-len", "512", "--additional-config",
                    json.dumps({"override-neuron-config": OVERRIDE}))
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"vllm serve exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
            try:
                if requests.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(1)
        else:
            pytest.fail(f"vllm serve did not become healthy:\n{log.read_text()[-4000:]}")
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode is not None


def complete(base: str, prompt: str, **kw) -> requests.Response:
    body = {"model": "smollm2", "prompt": prompt, "max_tokens": 16, "temperature": 0, **kw}
    return requests.post(f"{base}/v1/completions", json=body, timeout=120)


@pytest.mark.slow
def test_completions(server):
    r = complete(server, "The capital of France is")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["choices"][0]["text"].strip()
    assert body["usage"]["completion_tokens"] > 0


@pytest.mark.slow
def test_chat_plain_and_streaming(server):
    # Each request salts the prefix cache its own way, so both compute the prompt from scratch
    # and the comparison is of streaming alone. A cache hit recomputes only the prompt's tail,
    # through kernels chosen for 3 rows instead of 35, and in bf16 this prompt is a near-tie
    # after "Bonjour": HF transformers' own bf16 kernels split on it ("!" with eager attention,
    # " in" with SDPA), and so can our cached and uncached paths.
    msgs = [{"role": "user", "content": "Say hello in French."}]
    r = requests.post(f"{server}/v1/chat/completions", timeout=120,
                      json={"model": "smollm2", "messages": msgs, "max_tokens": 16, "temperature": 0,
                            "cache_salt": "plain"})
    assert r.status_code == 200, r.text
    plain = r.json()["choices"][0]["message"]["content"]
    assert plain

    r = requests.post(f"{server}/v1/chat/completions", timeout=120, stream=True,
                      json={"model": "smollm2", "messages": msgs, "max_tokens": 16, "temperature": 0,
                            "stream": True, "cache_salt": "streaming"})
    assert r.status_code == 200
    pieces = []
    for line in r.iter_lines():
        if line.startswith(b"data: ") and line != b"data: [DONE]":
            delta = json.loads(line[6:])["choices"][0]["delta"]
            pieces.append(delta.get("content") or "")
    assert len(pieces) > 2
    assert "".join(pieces) == plain  # greedy: streaming gives the same text


@pytest.mark.slow
def test_sixteen_concurrent_requests(server):
    prompts = [f"Count from {i} to {i + 5}:" for i in range(16)]
    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(lambda p: complete(server, p, max_tokens=12), prompts))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    # Each answer equals the same prompt served alone: batching does not change greedy output.
    alone = complete(server, prompts[7], max_tokens=12).json()["choices"][0]["text"]
    assert responses[7].json()["choices"][0]["text"] == alone


@pytest.mark.slow
def test_bad_requests_get_400_and_server_keeps_serving(server):
    too_long = complete(server, "hello " * 2000)
    assert too_long.status_code == 400
    assert "maximum context length is 512" in too_long.json()["error"]["message"]

    # Fits max_model_len (512) but not the largest context-encoding bucket (256).
    over_bucket = complete(server, "hello " * 300)
    assert over_bucket.status_code == 400, over_bucket.text
    assert "largest context-encoding bucket (256 tokens)" in over_bucket.json()["error"]["message"]

    bad_top_p = complete(server, "Hi", top_p=1.5)
    assert bad_top_p.status_code == 400
    assert "top_p" in bad_top_p.text

    too_many_logprobs = complete(server, "Hi", logprobs=50)  # vLLM's limit: 20
    assert too_many_logprobs.status_code == 400
    assert "logprobs" in too_many_logprobs.json()["error"]["message"]

    negative_temperature = complete(server, "Hi", temperature=-1.0)
    assert negative_temperature.status_code == 400
    assert "temperature" in negative_temperature.json()["error"]["message"]

    ok = complete(server, "The capital of France is")
    assert ok.status_code == 200, ok.text


@pytest.mark.slow
def test_structured_output_json_schema(server):
    schema = {"type": "object", "properties": {"city": {"type": "string"},
                                               "population": {"type": "integer"}},
              "required": ["city", "population"], "additionalProperties": False}
    msgs = [{"role": "user", "content": "Give the largest city of France and its population as JSON."}]
    r = requests.post(f"{server}/v1/chat/completions", timeout=120, json={
        "model": "smollm2", "messages": msgs, "max_tokens": 128, "temperature": 0,
        "response_format": {"type": "json_schema", "json_schema": {"name": "city", "schema": schema}}})
    assert r.status_code == 200, r.text
    answer = json.loads(r.json()["choices"][0]["message"]["content"])
    assert set(answer) == {"city", "population"}
    assert isinstance(answer["city"], str) and isinstance(answer["population"], int)


@pytest.mark.slow
def test_penalties_and_logprobs_are_served(server):
    r = complete(server, "The capital of France is", logprobs=3, presence_penalty=0.5,
                 frequency_penalty=0.5, repetition_penalty=1.2)
    assert r.status_code == 200, r.text
    lp = r.json()["choices"][0]["logprobs"]
    assert len(lp["tokens"]) == 16 and all(len(t) >= 3 for t in lp["top_logprobs"])


@pytest.mark.slow
def test_startup_log_shows_the_override(server, server_log):
    log = server_log.read_text()
    assert "buckets context_encoding [64, 256] token_generation [128, 512]" in log
    assert "warm-up took" in log


@pytest.mark.slow
@pytest.mark.parametrize(
    "additional_config, message",
    [
        ({"override_neuron_config": {"contex_encoding_buckets": [64]}},
         "unknown key 'contex_encoding_buckets' (did you mean 'context_encoding_buckets'?)"),
        ({"override_neuron_config": {"batch_size": 64}},
         "batch_size=64 contradicts vLLM's --max-num-seqs (which gives 16)"),
        ({"override_neuron_config": {"enable_bucketing": "yes"}},
         "'enable_bucketing' must be true or false, got \"yes\""),
        ({"override_neuron_config": "{\"seq_len\": 12"}, "malformed JSON"),
    ],
    ids=["unknown-key", "contradiction", "bad-type", "malformed-json"],
)
def test_bad_override_stops_vllm_serve(smollm2_dir, additional_config, message):
    cmd = serve_cmd(smollm2_dir, free_port(), "--additional-config", json.dumps(additional_config))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]
