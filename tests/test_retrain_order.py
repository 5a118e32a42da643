"""The order `python -m devtools.retrain --stale` retrains in (the tool itself runs in
test_end_to_end.py::test_retrain_commits_each_stage_it_runs_and_skips_the_ones_up_to_date)."""
from devtools.retrain import stale_in_order, with_report_last

STAGES = ["check_params", "download@fashion", "split@fashion",
          "train_s@a-1", "train_s@a-2", "train_s@b-1", "evaluate_s@a-1", "evaluate_s@a-2", "evaluate_s@b-1",
          "train_t@c-1", "evaluate_t@c-1", "aggregate@s", "aggregate@t", "report"]


def test_data_first_then_each_train_with_its_evaluate_then_aggregates_and_report():
    stale = set(STAGES) - {"download@fashion", "train_s@a-2", "aggregate@t"}
    assert stale_in_order(STAGES, stale) == [
        "check_params", "split@fashion",
        "train_s@a-1", "evaluate_s@a-1", "train_s@b-1", "evaluate_s@b-1",
        "evaluate_s@a-2",  # its train is up to date: the evaluate alone, in dvc.yaml's order
        "train_t@c-1", "evaluate_t@c-1", "aggregate@s", "report"]
    assert stale_in_order(STAGES, set()) == []


def test_the_stale_list_always_ends_with_the_report():
    """An aggregate rerun makes the report stale only after it ran, so `--stale` lists it anyway."""
    ordered = stale_in_order(STAGES, {"train_s@a-1", "evaluate_s@a-1", "aggregate@s"})
    assert with_report_last(ordered, set(STAGES)) == ["train_s@a-1", "evaluate_s@a-1", "aggregate@s", "report"]
    assert with_report_last(["aggregate@s", "report"], set(STAGES)) == ["aggregate@s", "report"]
    assert with_report_last(["aggregate@s"], set(STAGES) - {"report"}) == ["aggregate@s"]
