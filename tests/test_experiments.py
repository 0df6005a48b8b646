"""cvkit.train.ExperimentLog: the mini-project's log of runs (append-only JSON lines)."""

import json
import math
import statistics

import pytest
import torch

from cvkit.train import ExperimentLog


def test_record_summary_against_statistics(tmp_path):
    log = ExperimentLog(tmp_path / "runs" / "log.jsonl")
    accs = {"baseline": [0.80, 0.82, 0.79], "augment": [0.85, 0.83]}
    for name, values in accs.items():
        for seed, acc in enumerate(values):
            log.record(
                name, {"seed": seed, "augment": name == "augment"}, {"test_accuracy": torch.tensor(acc), "seconds": 1.5}
            )
    rows = [json.loads(line) for line in (tmp_path / "runs" / "log.jsonl").read_text().splitlines()]
    assert [r["name"] for r in rows] == ["baseline"] * 3 + ["augment"] * 2
    assert rows[0]["config"] == {"seed": 0, "augment": False} and rows[0]["torch"] == torch.__version__
    by_name = {s.group: s for s in log.summary("test_accuracy")}
    for name, values in accs.items():
        assert by_name[name].n == len(values)
        assert by_name[name].mean == pytest.approx(statistics.mean(values), abs=1e-7)
        assert by_name[name].std == pytest.approx(statistics.stdev(values), abs=1e-7)
    by_flag = {s.group: s.n for s in log.summary("test_accuracy", group_by="augment")}
    assert by_flag == {False: 3, True: 2}
    table = log.to_markdown(["test_accuracy"])
    assert "| baseline | 0.8033 ± 0.015 (3) |" in table, table


def test_earlier_runs_are_kept_and_told_apart(tmp_path):
    path = tmp_path / "log.jsonl"
    first = ExperimentLog(path)
    first.record("baseline", {"seed": 0}, {"acc": 0.5})
    with open(path, "a") as fh:
        fh.write('{"name": "half a line\n')  # a crash mid-write, or a careless hand edit
    second = ExperimentLog(path)
    second.record("baseline", {"seed": 0}, {"acc": 0.7})
    assert [r["metrics"]["acc"] for r in second.rows()] == [0.5, 0.7]
    assert [r["metrics"]["acc"] for r in second.rows(this_session=True)] == [0.7]
    assert second.summary("acc")[0].n == 1 and math.isnan(second.summary("acc")[0].std)
    assert second.summary("acc", this_session=False)[0].mean == pytest.approx(0.6)


def test_bad_input_is_refused_with_a_message(tmp_path):
    with pytest.raises(ValueError, match="folder"):
        ExperimentLog(tmp_path)
    log = ExperimentLog(tmp_path / "log.jsonl")
    with pytest.raises(ValueError, match="name"):
        log.record(" ", {}, {"acc": 1.0})
    with pytest.raises(TypeError, match="acc"):
        log.record("run", {}, {"acc": "high"})
    with pytest.raises(TypeError, match="JSON"):
        log.record("run", {"model": torch.nn.Linear(1, 1)}, {"acc": 1.0})
    assert not (tmp_path / "log.jsonl").exists() or log.rows() == []
    log.record("run", {}, {"acc": 1.0})
    with pytest.raises(KeyError, match="acc"):
        log.summary("loss")
