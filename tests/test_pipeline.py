"""The whole flow on a tiny generated dataset: every stage's file, the report, and resuming."""

import pandas as pd
import pytest
from helpers import tiny_train_args

from yoloslim import YoloslimError
from yoloslim.flow import pipeline, warn_if_still_learning
from yoloslim.trainer import SparseTrainer

pytestmark = pytest.mark.slow  # real trainings


TINY = {
    "levels": "0.5",
    "pretrain_epochs": 1,
    "sparse_epochs": 2,
    "finetune_epochs": 1,
    "imgsz": 64,
    "batch": 4,
    "workers": 0,
}


def test_a_start_model_still_learning_is_named(capsys):
    warn_if_still_learning({"mAP50-95": 0.24}, {"mAP50-95": 0.33}, epochs=14)
    assert "gained 0.090 mAP50-95 over the start model in 14 more epochs" in capsys.readouterr().out
    warn_if_still_learning({"mAP50-95": 0.14}, {"mAP50-95": 0.13}, epochs=14)
    assert capsys.readouterr().out == ""


def test_pipeline_runs_every_stage_and_resumes(tiny_data, tmp_path, capsys):
    # An earlier pipeline was interrupted during sparse training, after its first epoch.
    args = {
        "model": "yolov8n.yaml",
        "data": str(tiny_data),
        "sr": 0.5,
        **tiny_train_args(tmp_path / "pipe" / "train", epochs=2, name="sparse", batch=4, plots=False),
    }
    interrupted = SparseTrainer(overrides=args)
    interrupted.add_callback("on_model_save", lambda t: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        interrupted.train()

    run = pipeline(data=str(tiny_data), sr=0.5, project=str(tmp_path), name="pipe", **TINY)
    out = capsys.readouterr().out
    assert "resuming sparse" in out
    for f in (
        "pretrained.pt",
        "baseline.pt",
        "sparse.pt",
        "prune-0.5/slim.pt",
        "prune-0.5/plan.json",
        "slim-0.5-ft.pt",
        "report.csv",
        "report.md",
        "report.png",
        "metrics.json",
    ):
        assert (run / f).stat().st_size > 0, f
    assert list((run / "train" / "sparse").glob("results.csv"))
    assert len(pd.read_csv(run / "train" / "sparse" / "results.csv")) == 2  # resumed, not restarted

    report = assert_every_level_past_the_zeros_is_marked(run).set_index("stage")
    gain = report.loc["baseline", "mAP50-95"] - report.loc["pretrained", "mAP50-95"]
    assert ("it was still learning" in out) == (gain > 0.01)
    assert report.loc["finetuned", "params"] == report.loc["pruned", "params"] < report.loc["baseline", "params"]
    assert report.loc["pruned", "gflops"] < report.loc["sparse", "gflops"]
    for stage in ("baseline", "finetuned"):  # exported, checked against onnxruntime, timed
        assert report.loc[stage, "latency_ms"] > 0 and report.loc[stage, "onnx_max_diff"] < 1e-3
        assert (run / f"{'baseline' if stage == 'baseline' else 'slim-0.5-ft'}.onnx").exists()

    measured = (run / "metrics.json").read_text()
    again = pipeline(data=str(tiny_data), sr=0.5, project=str(tmp_path), name="pipe", **TINY)
    out = capsys.readouterr().out
    assert again == run and out.count("[skip]") == 5  # pretrain, baseline, sparse, prune, finetune: nothing redone
    assert (run / "metrics.json").read_text() == measured  # nor measured again

    # A rerun with other settings is refused before any work, naming the setting; nothing is mixed or redone.
    before = sorted(p for p in run.rglob("*"))
    for change, named in (
        ({"sr": 0.7}, "sr=0.5, not sr=0.7"),
        ({"finetune_epochs": 2}, "finetune_epochs=1, not finetune_epochs=2"),
        ({"penalty": "l1"}, "penalty=wide, not penalty=l1"),
        ({"model": "yolo11n.yaml"}, "model=yolov8n.yaml, not model=yolo11n.yaml"),
    ):
        with pytest.raises(YoloslimError, match=named):
            pipeline(**{"data": str(tiny_data), "sr": 0.5, "project": str(tmp_path), "name": "pipe", **TINY, **change})
    other = tiny_data.parent.parent / "other.yaml"
    other.write_text(tiny_data.read_text())
    with pytest.raises(YoloslimError, match="data="):
        pipeline(data=str(other), sr=0.5, project=str(tmp_path), name="pipe", **TINY)
    assert sorted(p for p in run.rglob("*")) == before


def assert_every_level_past_the_zeros_is_marked(run):
    """The report's past_zeros is what each level's plan.json says: a level that removed channels sparse training
    had not zeroed is never an unmarked row."""
    from yoloslim.plan import Plan
    from yoloslim.pruning import past_zeros

    report = pd.read_csv(run / "report.csv")
    for _, row in report[report.stage.isin(["pruned", "finetuned"])].iterrows():
        settings = Plan.load(run / f"prune-{row.level:g}" / "plan.json").settings
        assert bool(row.past_zeros) == past_zeros(
            settings["removed_importance_max"], settings["kept_importance_median"]
        )
    return report


def test_a_level_past_what_sparse_training_zeroed_is_marked(tiny_data, tmp_path, capsys):
    """A push too weak to zero anything, pruned at 0.5: the pipeline says so, marks the level in report.csv and
    report.md (and compare's table), and still gives the finetuned model's paired difference from the baseline."""
    from yoloslim.study import compare

    run = pipeline(data=str(tiny_data), sr=1e-4, project=str(tmp_path), name="weak", **{**TINY, "export": False})
    out = capsys.readouterr().out
    assert "sparse training zeroed" in out and "level 0.5 prunes past what sparse training zeroed" in out
    report = assert_every_level_past_the_zeros_is_marked(run).set_index("stage")
    assert report.loc["sparse", "zeroed"] < 0.5
    assert bool(report.loc["pruned", "past_zeros"]) and bool(report.loc["finetuned", "past_zeros"])
    assert "past_zeros" in (run / "report.md").read_text()
    tuned = report.loc["finetuned"]
    assert tuned.delta_low <= tuned.delta <= tuned.delta_high and tuned.val_images == 8
    assert tuned.delta == pytest.approx(tuned["mAP50-95"] - report.loc["baseline", "mAP50-95"], abs=1e-9)
    table = compare(models="weak", runs=[str(run)], project=str(tmp_path), name="cmp").set_index("level")
    assert bool(table.loc[0.5, "past_zeros"]) and table.loc[0.5, "delta"] == pytest.approx(tuned.delta)


def test_a_segmentation_pipeline_reports_mask_and_box_map(tmp_path):
    """A seg model's pipeline: its data made with polygons, its mask mAP reported next to box mAP, and compare's
    table carrying both."""
    from yoloslim.data import synth
    from yoloslim.study import compare

    data = synth(tmp_path / "seg", train=16, val=8, imgsz=64, seed=0, task="segment")
    run = pipeline(model="yolov8n-seg.yaml", data=str(data), project=str(tmp_path), name="seg", **TINY)
    report = pd.read_csv(run / "report.csv")
    assert {"mAP50-95", "box mAP50-95"} <= set(report.columns) and report["box mAP50-95"].notna().all()
    assert (run / "report.md").read_text().startswith("mAP50 and mAP50-95 are mask mAP (segment model)")
    assert (report.loc[report.stage == "finetuned", "onnx_max_diff"] < 1e-3).all()
    table = compare(models="seg", runs=[str(run)], project=str(tmp_path), name="cmp")
    assert {"mAP50-95 final", "box mAP50-95 final"} <= set(table.columns)
