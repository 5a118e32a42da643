import numpy as np
import pandas as pd

from cnn_comparison.figures import curves_figure


def test_curves_figure_zooms_past_an_outlying_first_epoch():
    """A first-epoch 0.15 must not squeeze the curves; the title admits what is off-scale."""
    epochs = range(1, 21)
    table = pd.DataFrame({"steady": np.linspace(0.85, 0.93, 20),
                          "outlier_first": [0.15] + list(np.linspace(0.86, 0.92, 19))}, index=epochs)
    figure = curves_figure(table, "Validation accuracy per epoch", "Validation accuracy")
    low, high = figure.axes[0].get_ylim()
    assert 0.8 < low < 0.86 and 0.93 <= high < 0.95
    assert figure.axes[0].get_title() == "Validation accuracy per epoch (1 off-scale point not shown)"
