"""One run drives a fleet: ``openai`` and ``openai-logprobs`` with several
servers in ``base_url`` (comma-separated), against two real loopback servers
through the official openai SDK: requests are spread over both, a dead or
failing replica's items go to the other, the replica that answered each item
is recorded, and replicas are in no cache key or run fingerprint."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from bench.context import Context
from bench.records import read_run
from bench.runner import run_predictor
from bench.store import Record
from bench.types import Prediction
from predictors.frontier.replicas import TAKE_OUT_AFTER, Fleet, split_urls
from tests.conftest import run_cli, write_synthetic_test_file
from tests.fake_llm_server import FakeLLMServer

pytest.importorskip("openai")

from predictors.frontier.chat import OpenAIChat  # noqa: E402
from predictors.frontier.logprobs import OpenAILogprobs  # noqa: E402

FAST = {"backoff": 0.01, "max_backoff": 0.05, "timeout": 5.0}


@pytest.fixture(autouse=True)
def _no_real_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "LOGPROBS_BASE_URL", "LOGPROBS_API_KEY"):
        monkeypatch.delenv(var, raising=False)


def dead_url() -> str:
    """A loopback port with nothing listening: every connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def public(url: str) -> str:
    return url.rstrip("/")


def _run(predictor, test_set, results: Path, **kwargs):
    result = run_predictor(predictor, test_set, results, spec=predictor.registry_name,
                           kind="frontier", progress=False, **kwargs)
    return result, read_run(result.store.run_path)


def _lines(result) -> list[dict]:
    return [json.loads(line) for line in result.store.predictions_path.read_text().splitlines()]


def test_two_servers_share_the_items_and_each_answer_says_which(synthetic_test_set,
                                                                tmp_path: Path) -> None:
    with FakeLLMServer(latency=0.05) as a, FakeLLMServer(latency=0.05) as b:
        predictor = OpenAIChat("m", base_url=f"{a.openai_url},{b.openai_url}",
                               ctx=Context(cache_dir=tmp_path / "cache"), **FAST)
        result, run = _run(predictor, synthetic_test_set, tmp_path / "r", concurrency=4)
        counts = {public(a.openai_url): a.count, public(b.openai_url): b.count}

    lines = _lines(result)
    assert len(lines) == len(synthetic_test_set) == 12
    assert all(line["price"] is not None and line["error"] is None for line in lines)
    served = [line["served_by"] for line in lines]
    assert set(served) == set(counts)  # both replicas answered
    for url, count in counts.items():
        assert served.count(url) == count > 0
    replicas = run.details["replicas"]
    assert {u: r["answered"] for u, r in replicas.items()} == counts
    assert not any("taken_out" in r for r in replicas.values())
    # What was read back is what was written.
    record = result.store.records()[lines[0]["id"]]
    assert record.prediction.served_by == lines[0]["served_by"]


def test_a_dead_replica_is_taken_out_once_and_its_items_go_to_the_other(
        synthetic_test_set, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dead = dead_url()
    with FakeLLMServer() as alive:
        # Credentials in a replica's URL reach no file and no message.
        secret_url = alive.openai_url.replace("http://", "http://user:pw-SECRET-1@")
        predictor = OpenAIChat("m", base_url=f"{dead.replace('http://', 'http://u:pw-SECRET-2@')},"
                               f"{secret_url}", ctx=Context(cache_dir=tmp_path / "cache"), **FAST)
        result, run = _run(predictor, synthetic_test_set, tmp_path / "r", concurrency=1)
        assert alive.count == 12
    written = "".join(p.read_text() for p in (tmp_path / "r").rglob("*") if p.is_file())
    stderr = capsys.readouterr().err
    assert "pw-SECRET" not in written + stderr
    lines = _lines(result)
    assert all(line["price"] is not None for line in lines), lines
    assert {line["served_by"] for line in lines} == {public(alive.openai_url)}
    warnings = [x for x in stderr.splitlines() if "taken out" in x]
    assert len(warnings) == 1 and public(dead) in warnings[0]
    assert "APIConnectionError" in warnings[0]
    gone = run.details["replicas"][public(dead)]
    # nothing listens there (refused): out at its first attempt, not after TAKE_OUT_AFTER
    assert gone["answered"] == 0 and gone["failed_attempts"] == 1
    assert gone["taken_out"].startswith("taken out: it refused the connection")


def test_a_failing_replica_is_retried_elsewhere_at_once(synthetic_test_set,
                                                        tmp_path: Path) -> None:
    """A 5xx on one replica goes to the other without waiting: with a minute of
    backoff and a 20 s limit per item, an item that waited would time out."""
    with FakeLLMServer(fault_plan=lambda text, attempt: "500") as failing, \
            FakeLLMServer() as healthy:
        predictor = OpenAIChat("m", base_url=f"{failing.openai_url},{healthy.openai_url}",
                               ctx=Context(cache_dir=tmp_path / "cache"), backoff=60.0,
                               max_backoff=60.0, timeout=5.0)
        result, run = _run(predictor, synthetic_test_set, tmp_path / "r", concurrency=1,
                           timeout=20.0)
        assert failing.statuses == {500: TAKE_OUT_AFTER}  # then taken out
        assert healthy.count == 12
    assert all(line["price"] is not None and line["error"] is None for line in _lines(result))
    failing_row = run.details["replicas"][public(failing.openai_url)]
    assert "InternalServerError" in failing_row["taken_out"]


def test_the_last_replica_is_never_taken_out(synthetic_test_set, tmp_path: Path) -> None:
    """One server behaves as it always did: its failures are retried with
    backoff on it, never skipped."""
    def flaky(text: str, attempt: int) -> str | None:
        return "500" if attempt <= 4 else None

    with FakeLLMServer(fault_plan=flaky) as only:
        predictor = OpenAIChat("m", base_url=only.openai_url,
                               ctx=Context(cache_dir=tmp_path / "cache"), **FAST)
        result, run = _run(predictor, synthetic_test_set, tmp_path / "r", concurrency=2,
                           limit=3)
    lines = _lines(result)
    assert all(line["price"] is not None for line in lines)
    assert all("served_by" not in line for line in lines)  # one server: the format as it was
    assert run.details is None


def test_replicas_are_in_no_cache_key_or_fingerprint(synthetic_test_set, tmp_path: Path) -> None:
    ctx = Context(cache_dir=tmp_path / "cache")
    with FakeLLMServer() as a, FakeLLMServer() as b, FakeLLMServer() as c:
        first = OpenAIChat("m", base_url=f"{a.openai_url},{b.openai_url}", ctx=ctx, **FAST)
        first.predict(synthetic_test_set.products()[:5])
        sent = a.count + b.count
        assert sent == 5
        # Other replicas, in another order: the same answers from the cache.
        again = OpenAIChat("m", base_url=f"{c.openai_url},{b.openai_url}", ctx=ctx, **FAST)
        out = again.predict(synthetic_test_set.products()[:5])
        assert a.count + b.count + c.count == sent
        assert all(p.price is not None for p in out)
        assert again.fingerprint() == first.fingerprint()
        product = synthetic_test_set.products()[0]
        assert again.cache_parts(again.request(product)) == first.cache_parts(
            first.request(product))
        assert a.openai_url not in json.dumps(first.fingerprint())
        # What shapes the output still is in it.
        other = OpenAIChat("m2", base_url=f"{a.openai_url},{b.openai_url}", ctx=ctx, **FAST)
        assert other.fingerprint() != first.fingerprint()


def test_openai_logprobs_drives_a_fleet_and_asks_the_tokenizer_once(
        synthetic_test_set, tmp_path: Path) -> None:
    top = [("374", 0.6), ("375", 0.4)]
    dead = dead_url()
    with FakeLLMServer(tokenize="vllm", top_tokens=lambda t: top) as a, \
            FakeLLMServer(tokenize="vllm", top_tokens=lambda t: top) as b:
        predictor = OpenAILogprobs(base_url=f"{dead},{a.openai_url},{b.openai_url}",
                                   ctx=Context(cache_dir=tmp_path / "cache"), **FAST)
        result, run = _run(predictor, synthetic_test_set, tmp_path / "r", concurrency=3)
        asked = [r for s in (a, b) for r in s.requests if r.path == "/tokenize"]
    assert len(asked) == 4  # the four probes, of one replica (the dead one skipped)
    lines = _lines(result)
    assert all(line["price"] == pytest.approx(374.4) for line in lines)
    assert {line["served_by"] for line in lines} <= {public(a.openai_url), public(b.openai_url)}
    assert run.details["tokenizer"]["numbers_whole"] is True
    assert len(run.details["replicas"]) == 3


def test_base_url_lists_are_checked(tmp_path: Path) -> None:
    assert split_urls("http://a/v1") == ["http://a/v1"]
    assert split_urls(" http://a/v1 , http://b/v1 ") == ["http://a/v1", "http://b/v1"]
    with pytest.raises(ValueError, match="empty server"):
        split_urls("http://a/v1,,http://b/v1")
    with pytest.raises(ValueError, match="names http://a/v1 twice"):
        split_urls("http://a/v1,http://user:pw@a/v1")
    test = write_synthetic_test_file(tmp_path / "t.jsonl")
    done = run_cli("run", "openai:m", "--param", "base_url=http://a/v1,", "--test", str(test),
                   "--results-dir", str(tmp_path / "r"), "--quiet")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "empty server" in done.stderr


def test_the_least_busy_replica_is_chosen_in_turn() -> None:
    fleet = Fleet(["http://a/v1", "http://b/v1", "http://c/v1"], label="x")
    first = [fleet.acquire() for _ in range(3)]
    assert [r.public for r in first] == ["http://a/v1", "http://b/v1", "http://c/v1"]
    fleet.release(first[1])
    assert fleet.acquire().public == "http://b/v1"  # the only one with nothing in flight
    assert fleet.acquire(avoid=first[0]).public != "http://a/v1"


def test_served_by_round_trips_and_old_lines_read() -> None:
    record = Record(3, 10.0, Prediction(9.0, served_by="http://127.0.0.1:1/v1"))
    assert json.loads(record.line())["served_by"] == "http://127.0.0.1:1/v1"
    assert Record.from_line(json.loads(record.line())) == record
    old = {"id": 3, "price": 9.0, "error": None, "truth": 10.0}
    assert Record.from_line(old).prediction.served_by is None
