"""Faults injected into real HTTP servers on loopback (tests/chat_server.py) and into training: every fault of one
judge call is a counted failure, answers are cached as they arrive, unparsed answers are asked again (a bounded
number of times), a job over its judge's failure budget fails and publishes nothing, and a rerun asks only what
failed. docs/reliability.md lists every fault with the test that shows it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chat_server import HANG, NOT_JSON, RESET, FakeChatServer, chat_server, openai_spec  # noqa: F401
from mmalign.judges import FAILED, UNPARSED, JudgeBudgetError, JudgmentCache, RateRequest, check_budget, make_judge

REPO = Path(__file__).resolve().parents[1]
GOOD = "Rating: 5"


def requests(n: int) -> list[RateRequest]:
    return [RateRequest(f"q{i}", "mmhal", f"question {i}?", f"answer {i}", "reference") for i in range(n)]


def fast(**extra) -> dict:
    return openai_spec(max_retries=1, timeout_s=1.0, **extra)


@pytest.mark.parametrize(
    "fault, reason",
    [
        (NOT_JSON, "after 2 attempts"),
        (500, "InternalServerError after 2 attempts"),
        (HANG, "APITimeoutError after 2 attempts"),
        (RESET, "APIConnectionError after 2 attempts"),
    ],
    ids=["non-JSON 200 body", "HTTP 500", "hang past the timeout", "connection reset"],
)
def test_each_fault_of_one_call_is_a_counted_failure_not_a_crash(chat_server, tmp_path, fault, reason):
    server = chat_server([fault])
    judge = make_judge(fast(), tmp_path / "cache.sqlite")
    ratings = judge.rate(requests(2))
    assert [r.status for r in ratings] == [FAILED, FAILED]
    assert all(reason in r.reason for r in ratings), ratings[0].reason
    assert len(server.requests) == 4  # each prompt: one call and one retry, then given up
    assert len(JudgmentCache(tmp_path / "cache.sqlite")) == 0  # a failure is never cached as an answer


def test_a_run_over_the_budget_fails_and_a_rerun_asks_only_what_failed(chat_server, tmp_path):
    server = chat_server([GOOD] * 6 + [500])  # 6 answers, then the server is down for the rest of the run
    cache = tmp_path / "cache.sqlite"
    judge = make_judge(fast(concurrency=1), cache)
    records = [r.to_record() for r in judge.rate(requests(10))]
    assert sum(r["status"] == FAILED for r in records) == 4
    with pytest.raises(JudgeBudgetError, match=r"judge 'gpt4' \(base on mmhal\): 4 of 10 calls failed") as err:
        check_budget("gpt4", judge.settings, records, "base on mmhal")
    assert "InternalServerError" in str(err.value)
    assert len(JudgmentCache(cache)) == 6  # nothing answered is lost

    server.replies = [GOOD]  # fixed: a rerun asks exactly the 4 that failed
    asked = len(server.requests)
    again = make_judge(fast(concurrency=1), cache).rate(requests(10))
    assert len(server.requests) - asked == 4 and all(r.score == 5 for r in again)
    assert sum(r.cached for r in again) == 6
    check_budget("gpt4", judge.settings, [r.to_record() for r in again], "base on mmhal")  # within budget


def test_below_the_budget_the_job_passes_with_the_failures_counted(chat_server, tmp_path):
    chat_server([GOOD] * 19 + [500])
    judge = make_judge(fast(concurrency=1, max_failed_share=0.1), tmp_path / "cache.sqlite")
    records = [r.to_record() for r in judge.rate(requests(20))]
    assert sum(r["status"] == FAILED for r in records) == 1
    check_budget("gpt4", judge.settings, records, "base on mmhal")  # 5% <= 10%: passes


def test_an_unparsed_answer_is_kept_asked_again_and_at_most_max_asks_times(chat_server, tmp_path):
    server = chat_server(["Rating: 9"])  # out of MMHal's 0-6 range
    cache = tmp_path / "cache.sqlite"
    for run in range(1, 5):
        rating = make_judge(fast(max_asks=3), cache).rate(requests(1))[0]
        assert rating.status == UNPARSED and "not an integer on the 0-6 scale" in rating.reason
        assert len(server.requests) == min(run, 3)  # runs 1-3 ask, run 4 keeps the third answer
    stored = JudgmentCache(cache).get_many(make_judge(fast(max_asks=3), cache).cache_key, [rating.prompt_hash])
    assert stored[rating.prompt_hash].status == UNPARSED and stored[rating.prompt_hash].asks == 3
    server.replies = [GOOD]
    assert make_judge(fast(max_asks=4), cache).rate(requests(1))[0].score == 5  # a larger budget asks again


def test_the_cache_key_covers_endpoint_and_decoding_settings_never_the_key(chat_server, monkeypatch, tmp_path):
    chat_server([GOOD])
    base = make_judge(fast(), tmp_path / "c.sqlite")
    assert make_judge(fast(), tmp_path / "c.sqlite").cache_key == base.cache_key
    assert make_judge(fast(temperature=0.7), tmp_path / "c.sqlite").cache_key != base.cache_key
    assert make_judge(fast(max_tokens=64), tmp_path / "c.sqlite").cache_key != base.cache_key
    other = FakeChatServer([GOOD])
    try:
        monkeypatch.setenv("TEST_JUDGE_URL", other.url)  # same model name, another endpoint
        assert make_judge(fast(), tmp_path / "c.sqlite").cache_key != base.cache_key
    finally:
        other.close()
    monkeypatch.setenv("TEST_JUDGE_KEY", "sk-another-key")
    monkeypatch.setenv("TEST_JUDGE_URL", base.client.base_url.__str__().rstrip("/"))
    assert make_judge(fast(), tmp_path / "c.sqlite").cache_key == base.cache_key
    assert "sk-" not in base.cache_key


KILLED_JUDGE = """
import sys
sys.path[:0] = [{scripts!r}, {tests!r}]
from chat_server import openai_spec
from mmalign.judges import RateRequest, make_judge
reqs = [RateRequest(f"q{{i}}", "mmhal", f"question {{i}}?", f"answer {{i}}", "reference") for i in range(12)]
make_judge(openai_spec(concurrency=1, timeout_s=30), {cache!r}).rate(reqs)
"""


def test_a_kill_while_judging_loses_only_the_call_in_flight(tmp_path):
    """The judging process is SIGKILLed after some answers; every answer received before is in the cache, and
    the rerun asks only the others."""
    server = FakeChatServer([GOOD])
    cache = tmp_path / "cache.sqlite"
    slow = server.httpd.RequestHandlerClass.do_POST

    def delayed(handler):  # each answer takes 0.3 s: the kill lands mid-run
        time.sleep(0.3)
        slow(handler)

    server.httpd.RequestHandlerClass.do_POST = delayed
    env = {**os.environ, "TEST_JUDGE_MODEL": "judge-model-7b", "TEST_JUDGE_URL": server.url, "TEST_JUDGE_KEY": "x"}
    script = KILLED_JUDGE.format(scripts=str(REPO / "workflow/scripts"), tests=str(REPO / "tests"), cache=str(cache))
    try:
        proc = subprocess.Popen([sys.executable, "-c", script], env=env)
        deadline = time.time() + 60
        while len(server.requests) < 5 and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(0.6)  # the request in flight at the kill is still in its 0.3 s delay: let the server count it
        answered = len(server.requests)
        kept = len(JudgmentCache(cache))
        assert 4 <= kept <= answered < 12  # at most the one call in flight is lost
        server.httpd.RequestHandlerClass.do_POST = slow
        os.environ.update({k: env[k] for k in ("TEST_JUDGE_MODEL", "TEST_JUDGE_URL", "TEST_JUDGE_KEY")})
        ratings = make_judge(openai_spec(concurrency=1), cache).rate(requests(12))
        assert all(r.score == 5 for r in ratings) and sum(r.cached for r in ratings) == kept
        assert len(server.requests) == answered + (12 - kept)
    finally:
        for k in ("TEST_JUDGE_MODEL", "TEST_JUDGE_URL", "TEST_JUDGE_KEY"):
            os.environ.pop(k, None)
        server.close()


def test_an_old_cache_file_gains_the_new_columns(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(
            "create table judgments (judge_id text not null, prompt_hash text not null, raw text not null, "
            "prompt text not null, created real not null, primary key (judge_id, prompt_hash))"
        )
        db.execute("insert into judgments values ('j', 'h', 'Rating: 3', 'p', 0)")
    cached = JudgmentCache(path).get_many("j", ["h"])["h"]
    assert (cached.raw, cached.status, cached.asks) == ("Rating: 3", "answered", 1)
    assert json.dumps(cached.__dict__)  # plain data
