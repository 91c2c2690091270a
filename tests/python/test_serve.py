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
from pathlib import Path

import pytest
import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(smollm2_dir, tmp_path_factory):
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    cmd = [sys.executable, "-m", "vllm.entrypoints.cli.main", "serve", str(smollm2_dir),
           "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "512",
           "--max-num-seqs", "16", "--served-model-name", "smollm2"]
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
    msgs = [{"role": "user", "content": "Say hello in French."}]
    r = requests.post(f"{server}/v1/chat/completions", timeout=120,
                      json={"model": "smollm2", "messages": msgs, "max_tokens": 16, "temperature": 0})
    assert r.status_code == 200, r.text
    plain = r.json()["choices"][0]["message"]["content"]
    assert plain

    r = requests.post(f"{server}/v1/chat/completions", timeout=120, stream=True,
                      json={"model": "smollm2", "messages": msgs, "max_tokens": 16, "temperature": 0,
                            "stream": True})
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

    bad_top_p = complete(server, "Hi", top_p=1.5)
    assert bad_top_p.status_code == 400
    assert "top_p" in bad_top_p.text

    unsupported = complete(server, "Hi", presence_penalty=0.5)
    assert unsupported.status_code == 400
    assert "presence_penalty" in unsupported.json()["error"]["message"]

    ok = complete(server, "The capital of France is")
    assert ok.status_code == 200, ok.text
