import numpy as np
import pandas as pd
import pytest

from cnn_comparison.figures import accuracy_bars_figure, curves_figure


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
