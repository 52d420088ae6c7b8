"""``plaza bench labeler`` at a tiny size: every figure is there and every live post
got its label."""

from __future__ import annotations

from plaza.bench.labeler import run
from plaza.moderation.classifier import fit
from plaza.moderation.dataset import Dataset


def test_bench_labeler_small() -> None:
    texts = tuple(f"win a free prize {i} at http://x{i}.example" for i in range(20)) + tuple(
        f"a quiet walk by the river, day {i}" for i in range(20)
    )
    model = fit(Dataset(texts, (True,) * 20 + (False,) * 20))
    model.threshold = 0.6
    out = run(posts=100, batch=20, runs=1, live=3, model=model)
    for key in ("classify_posts_per_s", "judge_posts_per_s", "pipeline_posts_per_s"):
        assert out[key] > 0
    assert out["live_labelled"] == 3
    assert 0 < out["label_latency_p95_ms"] < 30_000
