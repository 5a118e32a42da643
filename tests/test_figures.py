import numpy as np
import pandas as pd
import pytest

from cnn_comparison.figures import accuracy_bars_figure, accuracy_by_time_figure, curves_figure


def test_curves_figure_zooms_past_an_outlying_first_epoch():
    """A first-epoch 0.15 must not squeeze the curves; the title admits what is off-scale."""
    epochs = range(1, 21)
    table = pd.DataFrame({"steady": np.linspace(0.85, 0.93, 20),
                          "outlier_first": [0.15] + list(np.linspace(0.86, 0.92, 19))}, index=epochs)
    figure = curves_figure(table, "Validation accuracy per epoch", "Validation accuracy")
    low, high = figure.axes[0].get_ylim()
    assert 0.8 < low < 0.86 and 0.93 <= high < 0.95
    assert figure.axes[0].get_title() == "Validation accuracy per epoch (1 off-scale point not shown)"


def test_accuracy_bars_span_min_to_max_over_seeds():
    figure = accuracy_bars_figure(["a", "b"], [0.92, 0.90], "Test accuracy", [0.91, 0.88], [0.94, 0.905])
    axis = figure.axes[0]
    assert [round(bar.get_width(), 3) for bar in axis.patches] == [0.92, 0.90]
    error_bar = next(collection for collection in axis.collections)  # the horizontal min-max segments
    spans = [tuple(round(x, 3) for x in segment[:, 0]) for segment in error_bar.get_segments()]
    assert spans == [(0.91, 0.94), (0.88, 0.905)]
    assert [text.get_text() for text in axis.texts] == ["0.9200", "0.9000"]
    assert axis.get_xlim()[0] == pytest.approx(0.78)  # from the lowest minimum, not the lowest mean


def test_accuracy_bars_of_seeds_that_all_score_the_same():
    """Three seeds at chance (a one-epoch smoke run): the mean, 0.10000000000000002, lies above the
    maximum, 0.1; the bar still draws, with an error bar of no width."""
    mean = float(np.mean([0.1, 0.1, 0.1]))
    assert mean > 0.1
    figure = accuracy_bars_figure(["chance"], [mean], "Test accuracy", [0.1], [0.1])
    error_bar = next(collection for collection in figure.axes[0].collections)
    assert [tuple(round(x, 6) for x in segment[:, 0]) for segment in error_bar.get_segments()] == [(0.1, 0.1)]


def lines_outside_their_axes(figure) -> list[str]:
    """Labels of plotted series whose points all fall outside their axes' y-range (legend without a line)."""
    hidden = []
    for axis in figure.axes:
        low, high = axis.get_ylim()
        for line in axis.get_lines():
            if line.get_label().startswith("_"):  # threshold lines
                continue
            y = np.asarray(line.get_ydata(), dtype=float)
            if not ((y >= low) & (y <= high)).any() or not low <= y[-1] <= high:
                hidden.append(line.get_label())
    return hidden


# Study 2's validation curves: digits near 0.97, fashion near 0.87 (issue #24: one y-range hid fashion).
STUDY_TWO = pd.DataFrame({
    "digits_dedicated": np.linspace(0.955, 0.975, 5), "fashion_dedicated": np.linspace(0.84, 0.87, 5),
    "multitask (digits)": np.linspace(0.95, 0.973, 5), "multitask (fashion)": np.linspace(0.83, 0.868, 5)},
    index=range(1, 6))
DATASET_OF = {"digits_dedicated": "mnist", "multitask (digits)": "mnist",
              "fashion_dedicated": "fashion", "multitask (fashion)": "fashion"}


def test_curves_of_two_datasets_get_a_panel_each_and_every_line_is_visible():
    figure = curves_figure(STUDY_TWO, "Validation accuracy per epoch", "Validation accuracy", panel_of=DATASET_OF)
    assert [axis.get_title() for axis in figure.axes] == ["mnist", "fashion"]
    assert [[line.get_label() for line in axis.get_lines()] for axis in figure.axes] == [
        ["digits_dedicated", "multitask (digits)"], ["fashion_dedicated", "multitask (fashion)"]]
    assert lines_outside_their_axes(figure) == []


def test_a_curve_far_below_the_others_stays_on_the_scale():
    """Tukey's fences drop stray points, never a whole model's curve."""
    table = pd.DataFrame({f"good_{index}": np.linspace(0.90, 0.93, 10) + index / 1000 for index in range(6)}
                         | {"weak": np.linspace(0.70, 0.78, 10)}, index=range(1, 11))
    assert lines_outside_their_axes(curves_figure(table, "t", "Validation accuracy")) == []


def test_accuracy_by_time_draws_every_run_of_each_dataset_in_range():
    rows = []
    for label, values in STUDY_TWO.items():
        for seed in (42, 43):
            rows += [{"epoch": epoch, "model": f"{label} (seed {seed})", "seed": seed, "validation_accuracy": value,
                      "elapsed_wall_seconds": 10.0 * epoch} for epoch, value in zip(range(1, 6), values)]
    history = pd.DataFrame(rows)
    panel_of = {f"{label} (seed {seed})": dataset for label, dataset in DATASET_OF.items() for seed in (42, 43)}
    figure = accuracy_by_time_figure(history, [0.92, 0.97], "Accuracy against time", panel_of)
    assert len(figure.axes) == 2 and sum(len(axis.get_lines()) for axis in figure.axes) == 8 + 1  # + 0.97 line
    assert lines_outside_their_axes(figure) == []
    # in one panel too, each run keeps its last point on the scale:
    single = accuracy_by_time_figure(history, [0.92, 0.97], "Accuracy against time")
    assert lines_outside_their_axes(single) == []
