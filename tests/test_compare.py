"""compare: a pipeline per model, one table and plots; finished pipelines are reused, not retrained."""

import math

import pandas as pd
import pytest
from helpers import build

from yoloslim import YoloslimError
from yoloslim.cli import main
from yoloslim.study import compare

pytestmark = pytest.mark.slow  # real trainings


TINY = {
    "levels": "0.5",
    "pretrain_epochs": 1,
    "sparse_epochs": 1,
    "finetune_epochs": 1,
    "imgsz": 64,
    "batch": 4,
    "workers": 0,
    "sr": 0.5,
    "export": False,
}


def test_compare_two_models_in_one_table(tiny_data, tmp_path, capsys):
    table = compare(models="yolov8n.yaml,yolo11n.yaml", data=str(tiny_data), project=str(tmp_path), **TINY)
    out = tmp_path / "compare"
    for f in ("compare.csv", "compare.md", "compare.png", "yolov8n/report.csv", "yolo11n/report.csv"):
        assert (out / f).stat().st_size > 0, f
    assert list(table.model) == ["yolov8n", "yolov8n", "yolo11n", "yolo11n"]
    assert list(table.level) == [0.0, 0.5, 0.0, 0.5]
    assert set(table.family) == {"yolov8", "yolo11"}
    for model, part in table.groupby("model"):
        base, slim = part.iloc[0], part.iloc[1]
        assert slim.params < base.params and slim.gflops < base.gflops, model
        assert math.isnan(base["mAP50-95 pruned"]) and not math.isnan(slim["mAP50-95 pruned"])
        assert base["mAP50-95 sparse"] == slim["mAP50-95 sparse"]  # the same sparse model feeds every level
    assert pd.read_csv(out / "compare.csv").shape == table.shape
    capsys.readouterr()

    # Finished pipelines are reused: a second call (exist_ok: it replaces the table) trains nothing, and runs=
    # only tabulates.
    again = compare(
        models="yolov8n.yaml,yolo11n.yaml", data=str(tiny_data), project=str(tmp_path), exist_ok=True, **TINY
    )
    assert capsys.readouterr().out.count("[skip]") == 2 * 5
    pd.testing.assert_frame_equal(again, table)
    only = compare(runs=f"{out / 'yolov8n'},{out / 'yolo11n'}", project=str(tmp_path), name="tabulated")
    pd.testing.assert_frame_equal(only, table)


def test_compare_bad_runs_folder(tmp_path, capsys):
    with pytest.raises(YoloslimError, match="no report.csv"):
        compare(runs=str(tmp_path), project=str(tmp_path))
    assert main(["compare", f"runs={tmp_path}", f"project={tmp_path}"]) == 2
    assert "no report.csv" in capsys.readouterr().err


def test_same_named_models_get_their_own_runs(tiny_data, tmp_path):
    """a/last.pt and b/last.pt: two pipelines, two rows each, not the first model twice."""

    from yoloslim.checkpoint import save_checkpoint

    a = save_checkpoint(build("yolov8n.yaml", nc=2), tmp_path / "a" / "last.pt")
    b = save_checkpoint(build("yolo11n.yaml", nc=2), tmp_path / "b" / "last.pt")
    table = compare(models=f"{a},{b}", data=str(tiny_data), project=str(tmp_path), **{**TINY, "pretrain_epochs": 0})
    assert list(table.model) == ["a-last", "a-last", "b-last", "b-last"]
    base = table[table.level == 0].set_index("model")
    assert base.loc["a-last", "params"] != base.loc["b-last", "params"]
