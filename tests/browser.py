"""Open a `dvc plots show` page in a real headless Chromium (Debian's chromium and chromium-driver,
installed by .ci/setup) and report, for each vega plot, whether it was drawn with its data."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Without the background-networking flags Chromium keeps calling out on a closed network;
# --no-sandbox because CI runs as root. No host name resolves, so a page that needs the internet
# fails here on any machine, online or not.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1400,1000", "--host-resolver-rules=MAP * ~NOTFOUND")

# For each div DVC filled with a vega spec (its id from the page's source: vega-embed replaces the
# div's script with the chart): whether vega-embed put a canvas in it, the canvas size, and how many
# of its pixels have a colour. Axes, grid and text are grey; marks drawn from data (lines, points,
# heatmap cells) are coloured, so an empty frame and a chart with axes but no data both count 0.
DRAWN_PLOTS = """
return arguments[0].map(id => {
  const div = document.getElementById(id);
  const canvas = div ? div.querySelector('canvas') : null;
  let coloured = 0;
  if (canvas && canvas.width && canvas.height) {
    const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 0; i < pixels.length; i += 4) {
      const [r, g, b, a] = [pixels[i], pixels[i + 1], pixels[i + 2], pixels[i + 3]];
      if (a > 0 && Math.max(r, g, b) - Math.min(r, g, b) > 40) coloured++;
    }
  }
  return {id: id, canvas: !!canvas, width: canvas ? canvas.width : 0, height: canvas ? canvas.height : 0,
          coloured: coloured};
});
"""


@dataclass(frozen=True)
class Plot:
    id: str
    canvas: bool
    width: int
    height: int
    coloured: int

    @property
    def drawn(self) -> bool:
        return self.canvas and self.width > 0 and self.height > 0 and self.coloured > 0


def chromium_available() -> bool:
    return os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)


def vega_plot_ids(html: str) -> list[str]:
    """The ids of the divs DVC's page draws a vega plot in (each div's script calls vegaEmbed)."""
    return re.findall(r"vegaEmbed\('#([^']+)', spec\)", html)


def drawn_plots(page: Path, timeout_seconds: float = 60) -> tuple[list[Plot], list[str]]:
    """Every vega plot of ``page`` once vega-embed has put a canvas in each (or the timeout), and the
    browser console's errors."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    ids = vega_plot_ids(page.read_text(encoding="utf-8"))

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(timeout_seconds)
        driver.get(page.resolve().as_uri())
        deadline = time.monotonic() + timeout_seconds
        while True:
            plots = [Plot(**plot) for plot in driver.execute_script(DRAWN_PLOTS, ids)]
            if all(plot.drawn for plot in plots) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        return plots, errors
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
