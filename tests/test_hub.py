"""Offline-first Hub access: the cache first, one quick probe, then one line naming the command and the flag."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.hf_cache import add_to_hf_cache
from tests.support import ROOT
from ts_eval import hub
from ts_eval.errors import UsageError

REPO = hub.HubRepo("some-org/some-model", "0123456789abcdef0123456789abcdef01234567", flag="--scorer-arg x=DIR")


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    hub._probe.cache_clear()
    yield tmp_path / "hf-cache"
    hub._probe.cache_clear()


def _no_network(*args, **kwargs):
    raise AssertionError("a network call was made")


def test_fetch_command_names_files_type_revision_and_folder():
    data = hub.HubRepo("BaiqiL/GenAI-Bench-1600", "e51e8a8", repo_type="dataset")
    assert data.fetch_command(["genai_image.json", "genai_skills.json"]) == (
        "hf download BaiqiL/GenAI-Bench-1600 genai_image.json genai_skills.json --repo-type dataset "
        "--revision e51e8a8 --local-dir DIR"
    )
    assert REPO.fetch_command() == f"hf download some-org/some-model --revision {REPO.revision} --local-dir DIR"


def test_hf_hub_offline_answers_without_any_probe(monkeypatch, empty_cache):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    assert hub.unreachable_reason() == "HF_HUB_OFFLINE is set"


def test_an_unreachable_endpoint_is_probed_once_and_quickly(monkeypatch, empty_cache):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    calls = []
    real = urllib.request.urlopen
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: calls.append(1) or real(*a, **k))
    start = time.perf_counter()
    first = hub.unreachable_reason()
    assert time.perf_counter() - start < 3.0
    assert first.startswith("http://127.0.0.1:9 is unreachable")
    assert hub.unreachable_reason() == first and len(calls) == 1  # once per process


@pytest.mark.parametrize("answer, reachable", [(None, True), (401, True), (404, False), (503, False)])
def test_only_a_hub_like_answer_counts_as_reachable(monkeypatch, empty_cache, answer, reachable):
    class Response:
        def close(self):
            pass

    def urlopen(request, timeout):
        assert timeout <= hub.PROBE_TIMEOUT_S and request.get_method() == "HEAD"
        if answer is None:
            return Response()
        raise urllib.error.HTTPError(request.full_url, answer, "status", {}, None)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    assert (hub.unreachable_reason() is None) == reachable


def test_cached_files_are_used_without_any_network(tmp_path, empty_cache, monkeypatch):
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "spiece.model").write_bytes(b"model")
    snapshot = add_to_hf_cache(empty_cache, REPO.repo, REPO.revision, folder)
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    assert hub.fetch(REPO, ["config.json", "spiece.model"]) == {
        "config.json": snapshot / "config.json",
        "spiece.model": snapshot / "spiece.model",
    }
    assert hub.require_local_or_reachable(REPO, ["config.json"]) == snapshot
    assert hub.require_local_or_reachable(REPO, ["model.safetensors", "spiece.model"], any_of=True) == snapshot
    assert hub.list_files(REPO) == ["config.json", "spiece.model"]


def test_missing_files_and_no_hub_is_one_line_with_the_command_and_the_flag(empty_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UsageError) as caught:
        hub.fetch(REPO, ["config.json", "model.safetensors"], what="scorer 'x'")
    text = str(caught.value)
    assert text.startswith("scorer 'x': config.json, model.safetensors of some-org/some-model")
    assert text.endswith(
        f"`hf download some-org/some-model config.json model.safetensors --revision {REPO.revision} "
        "--local-dir DIR` and pass --scorer-arg x=DIR"
    )
    assert "HF_HUB_OFFLINE is set" in text and "\n" not in text


def test_one_of_several_files_missing_offline_names_the_first_choice(empty_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    clip = hub.HubRepo("timm/vit_large_patch14_clip_224.openai", flag="--scorer-arg pretrained=FILE")
    with pytest.raises(UsageError) as caught:
        hub.require_local_or_reachable(
            clip, ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"], any_of=True, what="scorer 'clipscore'"
        )
    assert (
        "`hf download timm/vit_large_patch14_clip_224.openai open_clip_model.safetensors --revision main "
        "--local-dir DIR` and pass --scorer-arg pretrained=FILE"
    ) in str(caught.value)


def test_missing_files_with_a_reachable_hub_let_the_library_download(empty_cache, monkeypatch):
    monkeypatch.setattr(hub, "unreachable_reason", lambda: None)
    assert hub.require_local_or_reachable(REPO, ["open_clip_model.safetensors"]) is None


def test_third_party_retries_collapse_to_one_line_each():
    import io

    from huggingface_hub.utils import logging as hf_logging

    log = hf_logging.get_logger("huggingface_hub.utils._http")  # the module that logs HF's retries
    library = logging.getLogger("huggingface_hub")
    shown = io.StringIO()
    handler = logging.StreamHandler(shown)  # stands for the library's own stderr handler
    library.addHandler(handler)
    try:
        hub.quiet_third_party_logs()
        hub.quiet_third_party_logs()  # idempotent
        assert sum(isinstance(f, hub._FirstLineOnce) for f in handler.filters) == 1
        for attempt in range(1, 6):
            log.warning(f"'(MaxRetryError(...))' thrown while requesting HEAD http://x/{attempt}\nsecond line")
            log.warning(f"Retrying in {2**attempt}s [Retry {attempt}/5].")
    finally:
        library.removeHandler(handler)
    assert shown.getvalue().splitlines() == [
        "'(MaxRetryError(...))' thrown while requesting HEAD http://x/1 second line",
        "Retrying in 2s [Retry 1/5].",
    ]


@pytest.mark.parametrize(
    "env",
    [{"HF_HUB_OFFLINE": "1"}, {"HF_ENDPOINT": "http://127.0.0.1:9"}],
    ids=["HF_HUB_OFFLINE", "unreachable-endpoint"],
)
def test_genai_bench_1600_without_network_is_one_line_naming_the_command(tmp_path, env):
    full_env = {
        "PATH": "/usr/bin:/bin",
        "HF_HOME": str(tmp_path / "hf"),
        "TS_EVAL_CACHE_DIR": str(tmp_path / "c"),
        **env,
    }
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ts_eval",
            "run",
            "genai-bench",
            "--scorer",
            "dummy",
            "--limit",
            "1",
            "--out",
            str(tmp_path / "R"),
        ],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    wall = time.perf_counter() - start
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert (
        "`hf download BaiqiL/GenAI-Bench-1600 genai_image.json genai_skills.json --repo-type dataset --revision "
        "e51e8a8070fadfbfe1f160436bf14e7664e87247 --local-dir DIR` and pass --data DIR"
    ) in done.stderr
    assert wall < 30  # the process, imports included; the lookup itself is timed in-process below
    assert not (tmp_path / "R").exists()


def test_genai_bench_1600_lookup_fails_in_under_3_seconds(empty_cache, monkeypatch):
    from ts_eval.tasks import load_task
    from ts_eval.tasks.data import resolve_data

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    spec = load_task("genai-bench")
    start = time.perf_counter()
    with pytest.raises(UsageError, match="is unreachable"):
        resolve_data(spec, "1600", None)
    assert time.perf_counter() - start < 3.0
