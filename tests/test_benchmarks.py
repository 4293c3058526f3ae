"""The benchmark suite's bookkeeping (the suite itself runs on demand: benchmarks/suite.py)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import peer_protocol
import pytest
import recipe_sweep
import request_cost
import suite
import suite_report
import wrk_rounds

from lenet5.inference.checkpoint import load_model
from lenet5.serving.app import create_app


def test_peers_stop_at_the_first_epoch_that_reaches_the_target() -> None:
    accuracies = iter([0.97, 0.985, 0.9901, 0.995])
    trained: list[int] = []
    epochs = peer_protocol.train_to_target(
        "fake", lambda: trained.append(1), lambda: next(accuracies), 10, 0.99
    )
    assert [e["epoch"] for e in epochs] == [1, 2, 3] and len(trained) == 3
    figures = suite.epoch_figures(
        [{**e, "seconds": s} for e, s in zip(epochs, [2.0, 4.0, 3.0], strict=True)]
    )
    assert figures["epochs_to_target"] == 3
    assert figures["seconds_to_target"] == 9.0
    assert (figures["epoch_s_min"], figures["epoch_s_median"]) == (2.0, 3.0)


def test_a_system_that_never_reaches_the_target_has_no_time_to_it() -> None:
    epochs = [{"epoch": 1, "seconds": 1.0, "test_accuracy": 0.98}]
    figures = suite.epoch_figures(epochs)
    assert figures["epochs_to_target"] is None and figures["seconds_to_target"] is None


def test_docs_hold_the_rendering_of_the_committed_raw_figures() -> None:
    """docs/benchmarks.md's suite section is exactly what suite.json renders to."""
    report = json.loads(suite_report.RAW.read_text())
    section = suite_report.markdown(report)
    assert section in suite_report.DOC.read_text()
    assert "| lenet5 --recipe fast |" in section and "| keras |" in section


def test_write_doc_replaces_only_the_suite_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = tmp_path / "benchmarks.md"
    monkeypatch.setattr(suite_report, "DOC", doc)
    doc.write_text("# Benchmarks\n\nserve section\n")
    start, end = suite_report.START, suite_report.END
    suite_report.write_doc(f"{start}\nfirst\n{end}\n")  # no section yet: appended
    doc.write_text(doc.read_text() + "\nnotes after\n")
    suite_report.write_doc(f"{start}\nsecond\n{end}\n")
    assert (
        doc.read_text()
        == f"# Benchmarks\n\nserve section\n\n{start}\nsecond\n{end}\n\nnotes after\n"
    )


def test_recipe_sweep_reads_variants_as_name_and_typed_settings() -> None:
    assert recipe_sweep.parse_variant("base") == ("base", {})
    assert recipe_sweep.parse_variant("x:epochs=45,lr=0.006,optimizer=adam") == (
        "x",
        {"epochs": 45, "lr": 0.006, "optimizer": "adam"},
    )


def test_recipe_sweep_averages_each_variant_over_its_seeds() -> None:
    row = dict.fromkeys(recipe_sweep.CHOOSE_BY + recipe_sweep.ALSO, 0.0)
    rows = [
        {**row, "model": "runs/sweep/lr-s0", "val_accuracy": 0.99, "flagged 1": 180},
        {**row, "model": "runs/sweep/lr-s1", "val_accuracy": 0.98, "flagged 1": 190},
        {**row, "model": "runs/sweep/a-s2-s0", "val_accuracy": 0.97},
    ]
    means = recipe_sweep.means(rows)
    assert means["lr"]["runs"] == 2
    assert means["lr"]["val_accuracy"] == pytest.approx(0.985)
    assert means["lr"]["flagged 1"] == 185
    assert means["a-s2"] == {"runs": 1, **row, "val_accuracy": 0.97}


def test_request_cost_times_answered_requests_and_refuses_failed_ones() -> None:
    rows = request_cost.measure(None, [28], "onnx", requests=16, in_flight=8, rounds=2)
    assert [(r["png_size"], r["round"]) for r in rows] == [(28, 1), (28, 2)]
    assert all(r["app_ms"] > 0 and r["read_ms"] > 0 for r in rows)

    model, config = load_model(None)
    app = create_app(model, config, None, engine="onnx")
    with pytest.raises(RuntimeError, match="422"):
        asyncio.run(request_cost.app_cost(app, b"not an image", 4, 2))


def test_no_script_hides_a_module_of_the_standard_library() -> None:
    """`python benchmarks/X.py` puts benchmarks/ first on the path: a script named like a module
    of the standard library (numbers.py did) is imported in its place, by numpy among others."""
    scripts = Path(__file__).resolve().parent.parent.glob("*/*.py")
    clashes = [str(p) for p in scripts if p.stem in sys.stdlib_module_names]
    assert clashes == []


WRK_REPORT = """Running 10s test @ http://127.0.0.1:8000/api/predict
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    12.31ms    4.10ms  81.22ms   90.12%
  Latency Distribution
     50%  850.00us
     75%   13.02ms
     90%   16.50ms
     99%    1.20s
  35377 requests in 10.01s, 7.02MB read
  Socket errors: connect 0, read 0, write 0, timeout 3
  Non-2xx or 3xx responses: 12
Requests/sec:   3534.27
Transfer/sec:    717.92KB
ACKED 41
HOSTILE sent_bad 7000
HOSTILE s5xx 0
"""


def test_a_wrk_report_is_read_into_its_figures() -> None:
    figures = wrk_rounds.parse_report(WRK_REPORT)
    assert figures["requests"] == 35377 and figures["requests_per_s"] == 3534.27
    assert figures["latency_ms"] == {"50": 0.85, "75": 13.02, "90": 16.5, "99": 1200.0}
    assert figures["non_2xx"] == 12 and figures["acknowledged"] == 41
    assert figures["socket_errors"] == "connect 0, read 0, write 0, timeout 3"
    assert figures["hostile"] == {"sent_bad": 7000, "s5xx": 0}
