"""Pair sets made from other pair sets: seeded (nested) subsamples, filters, and corrupted variants with the world's
prior-driven corrupter and with an LLM behind a real OpenAI-compatible HTTP server on loopback."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mmalign.pairs.build import build_pairset
from mmalign.pairs.corrupt import LLMCorrupter, LLMCorrupterSettings, table13_messages
from mmalign.pairs.derived import corrupted, subsample
from mmalign.schema import read_pairs, write_pairs
from mmalign.synthetic import language as lang
from mmalign.synthetic.povid_analog import PovidAnalogSettings, povid_analog
from mmalign.synthetic.world import load_scenes


@pytest.fixture
def source(small_world, tmp_path):
    settings, scenes_path, images = small_world
    rows, _ = povid_analog(load_scenes(scenes_path, "preference"), images, settings, PovidAnalogSettings(seed=1))
    for i, row in enumerate(rows):  # a meta key to filter on
        row["meta"]["maker"] = "a" if i % 3 else "b"
    path = tmp_path / "source" / "pairs.parquet"
    write_pairs(rows, path)
    return path, len(rows)


def test_subsamples_are_seeded_nested_and_filtered(source, tmp_path):
    path, total = source
    ids = {}
    for n in (5, 20):
        out = tmp_path / f"n{n}"
        man = subsample({"source": "povid", "n": n}, path, out / "p.parquet", out / "m.json", seed=7)
        ids[n] = set(read_pairs(out / "p.parquet").id)
        assert len(ids[n]) == n and man.rows_read == total and man.extra["not_sampled"] == total - n
    assert ids[5] < ids[20]  # nested: a size series shares its pairs
    again = subsample({"source": "povid", "n": 5}, path, tmp_path / "r.parquet", tmp_path / "r.json", seed=7)
    assert set(read_pairs(tmp_path / "r.parquet").id) == ids[5] and again.rows_kept == 5
    other = subsample({"source": "povid", "n": 5}, path, tmp_path / "o.parquet", tmp_path / "o.json", seed=8)
    assert set(read_pairs(tmp_path / "o.parquet").id) != ids[5] and other.rows_kept == 5
    man = subsample(
        {"source": "povid", "n": None, "where": {"maker": ["b"]}},
        path,
        tmp_path / "b.parquet",
        tmp_path / "b.json",
        seed=7,
    )
    kept = read_pairs(tmp_path / "b.parquet")
    assert all(json.loads(m)["maker"] == "b" for m in kept.meta)
    assert man.extra["filtered_out"]["where_maker"] == total - len(kept)
    with pytest.raises(ValueError, match=r"'povid_big': n=100000 but source 'povid' has only"):
        subsample(
            {"source": "povid", "n": 100000}, path, tmp_path / "x.parquet", tmp_path / "x.json", 7, name="povid_big"
        )


def test_prompts_from_keeps_prompts_seen_in_another_set(source, tmp_path):
    path, _ = source
    frame = read_pairs(path)
    write_pairs([{**frame.iloc[0].to_dict(), "prompt": frame.prompt[0].upper()}], tmp_path / "prompts.parquet")
    subsample(
        {"source": "povid", "n": None},
        path,
        tmp_path / "p.parquet",
        tmp_path / "m.json",
        0,
        prompt_pairs=tmp_path / "prompts.parquet",
    )
    assert set(read_pairs(tmp_path / "p.parquet").prompt) == {frame.prompt[0]}  # case and spacing do not matter


def test_prior_corruption_keeps_prompt_and_chosen_and_adds_false_claims(source, small_world, tmp_path):
    path, total = source
    settings, scenes_path, _ = small_world
    spec = {"kind": "corrupted", "source": "povid", "n": 30, "corrupter": {"kind": "prior"}, "max_drop_rate": 0.2}
    man = build_pairset(
        spec,
        {"source": path, "scenes": scenes_path},
        tmp_path / "c.parquet",
        tmp_path / "c.json",
        seed=0,
        world_config={"split_sizes": settings.split_sizes, "seed": settings.seed},
    )
    out, src = read_pairs(tmp_path / "c.parquet"), read_pairs(path).set_index("id")
    scenes = {s.id: s for s in load_scenes(scenes_path)}
    assert len(out) == 30 and man.rows_kept == 30 and man.rows_read == 30 + sum(man.dropped.values())
    for row in out.itertuples():
        meta = json.loads(row.meta)
        assert (row.prompt, row.chosen) == (src.loc[row.id, "prompt"], src.loc[row.id, "chosen"])
        assert meta["original_rejected"] == src.loc[row.id, "rejected"]
        assert meta["rejected_model"] == "corrupter_prior"
        scene = scenes[meta["scene"]]
        assert lang.assess(row.prompt, row.rejected, scene).false > lang.assess(row.prompt, row.chosen, scene).false


class FakeLLMHandler(BaseHTTPRequestHandler):
    """A real HTTP endpoint speaking the OpenAI chat-completions protocol; fails the first call of every item."""

    seen: list = []
    attempts: dict = {}

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append((self.path, self.headers.get("Authorization"), body))
        item = body["messages"][-1]["content"]
        n = type(self).attempts[item] = type(self).attempts.get(item, 0) + 1
        if "ALWAYS FAIL" in item or n == 1:
            self.send_response(503)
            self.end_headers()
            return
        response = item.split("response: ", 1)[1].split("\ncorrupted response:")[0]
        text = response if "UNCHANGED" in item else response.replace("red", "blue")
        payload = {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
        }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def llm_server():
    FakeLLMHandler.seen, FakeLLMHandler.attempts = [], {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeLLMHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_table13_prompt_has_instructions_two_examples_and_the_item():
    messages = table13_messages("What colour is the car?", "The car is red.")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert "realistic hallucinations" in messages[0]["content"]
    assert messages[-1]["content"] == "prompt: What colour is the car?\nresponse: The car is red.\ncorrupted response:"


def test_llm_corrupter_over_http_retries_counts_and_keeps_secrets_out(tmp_path, llm_server):
    rows = [
        {
            "id": f"p{i}",
            "image": "x.png",
            "prompt": f"Question {i}?",
            "chosen": f"A red car {i}.",
            "rejected": "No.",
            "source": "vlfeedback",
            "meta": {},
        }
        for i in range(4)
    ]
    rows[1]["chosen"] = "ALWAYS FAIL red."
    rows[2]["chosen"] = "UNCHANGED red."
    write_pairs(rows, tmp_path / "src.parquet")
    env = {"MY_MODEL": "corrupter-llm", "MY_URL": llm_server, "MY_KEY": "sk-test-secret"}
    settings = LLMCorrupterSettings(
        model_env="MY_MODEL", base_url_env="MY_URL", api_key_env="MY_KEY", max_retries=2, backoff_s=0.01, concurrency=2
    )
    corrupter = LLMCorrupter(settings, environ=env)
    spec = {"source": "vlfeedback", "n": None, "max_drop_rate": 0.5}
    man = corrupted(spec, tmp_path / "src.parquet", tmp_path / "c.parquet", tmp_path / "c.json", corrupter, seed=0)
    out = read_pairs(tmp_path / "c.parquet").set_index("id")
    assert sorted(out.index) == ["p0", "p3"] and out.loc["p0", "rejected"] == "A blue car 0."
    assert dict(man.dropped) == {"llm_failed": 1, "llm_unchanged": 1}
    assert man.extra["corrupter_failed_tries"] == 3 + 3  # 3 tries for the failing item, 1 first failure per other
    path, auth, body = FakeLLMHandler.seen[0]
    assert path == "/v1/chat/completions" and auth == "Bearer sk-test-secret" and body["model"] == "corrupter-llm"
    assert "sk-test-secret" not in (tmp_path / "c.json").read_text()
    with pytest.raises(ValueError, match="MY_KEY"):
        LLMCorrupter(settings, environ={"MY_MODEL": "m"})


def test_corrupted_variant_of_a_source_keeps_the_subsample_pairs(source, small_world, tmp_path):
    """vlfeedback_corrupted (n of the source) and vlfeedback_5k (n of the same source) share the seeded order: the
    corrupted set is the subsample, with any pair that cannot be corrupted replaced by the next candidate."""
    path, _ = source
    settings, scenes_path, _ = small_world
    subsample({"source": "povid", "n": 25}, path, tmp_path / "s.parquet", tmp_path / "s.json", seed=3)
    man = build_pairset(
        {"kind": "corrupted", "source": "povid", "n": 25, "corrupter": {"kind": "prior"}, "max_drop_rate": 0.5},
        {"source": path, "scenes": scenes_path},
        tmp_path / "c.parquet",
        tmp_path / "c.json",
        seed=3,
        world_config={"split_sizes": settings.split_sizes, "seed": settings.seed},
    )
    sub, cor = set(read_pairs(tmp_path / "s.parquet").id), set(read_pairs(tmp_path / "c.parquet").id)
    assert len(cor) == 25 and len(sub & cor) == 25 - sum(man.dropped.values())


def test_a_corrupted_set_short_of_n_fails_unless_min_share_of_n_was_kept(source, small_world, tmp_path):
    """A source with fewer usable candidates than n (as a base-model replicate's VLFeedback analog can be): an
    error naming the set, or with min_share the set as it is, its shortfall counted in the manifest."""
    path, _ = source
    settings, scenes_path, _ = small_world
    available = len(read_pairs(path))
    spec = {
        "kind": "corrupted",
        "source": "povid",
        "n": available + 3,
        "corrupter": {"kind": "prior"},
        "max_drop_rate": 0.5,
    }

    def build(**extra):
        return build_pairset(
            {**spec, **extra}, {"source": path, "scenes": scenes_path}, tmp_path / "c.parquet", tmp_path / "c.json",
            seed=3, world_config={"split_sizes": settings.split_sizes, "seed": settings.seed}, name="povid_short",
        )  # fmt: skip

    with pytest.raises(ValueError, match=rf"pair set 'povid_short': only \d+ of n={available + 3} pairs"):
        build()
    man = build(min_share=0.5)
    kept = len(read_pairs(tmp_path / "c.parquet"))
    assert kept == man.rows_kept and man.extra["shortfall"] == available + 3 - kept > 0
    assert json.loads((tmp_path / "c.json").read_text())["extra"]["shortfall"] == available + 3 - kept
