"""The offline page template (devtools/offline_plots.py); the browser test that opens the page is
test_end_to_end.py::test_dvc_plots_show_draws_every_plot_in_a_browser_with_no_network."""
from __future__ import annotations

import io
import tarfile

import pytest
from dvc_render.html import HTML
from dvc_render.vega import VegaRenderer

from devtools.offline_plots import (SCRIPTS, OfflinePlotsError, Script, loaded_versions, page_template,
                                    script_from_tarball, sha512_integrity)


def tarball(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_the_pinned_scripts_are_the_versions_dvc_s_page_loads():
    """An upgrade of dvc-render that moves to other versions fails here, not silently in a browser."""
    assert {script.package: script.version for script in SCRIPTS} == loaded_versions(VegaRenderer.SCRIPTS)


def test_a_tarball_is_used_only_if_its_sha512_is_the_pinned_one():
    packed = tarball({"package/build/x.min.js": "var x = 1;"})
    pinned = Script("x", "1.0.0", sha512_integrity(packed), "package/build/x.min.js")
    assert script_from_tarball(pinned, packed) == "var x = 1;"
    other = tarball({"package/build/x.min.js": "var x = 2;"})
    with pytest.raises(OfflinePlotsError, match=r"x@1\.0\.0: the tarball's sha512 is .* not the pinned"):
        script_from_tarball(pinned, other)


def test_the_template_holds_the_scripts_inline_and_dvc_fills_it_without_its_cdn_tags():
    template = page_template({"vega": "var vega = {};", "vega-embed": "function vegaEmbed() {}"})
    page = HTML(template).with_scripts(VegaRenderer.SCRIPTS).with_element("<div id='p'></div>").embed()
    assert "var vega = {};" in page and "function vegaEmbed() {}" in page and "<div id='p'></div>" in page
    assert "<script src" not in page and "{plot_divs}" not in page and "{refresh_tag}" not in page
    assert page.index("var vega = {};") < page.index("function vegaEmbed") < page.index("<div id='p'>")


@pytest.mark.parametrize("text", ["var s = '</script>';", "a<!--b", "x = '{plot_divs}'"])
def test_a_script_that_cannot_be_inline_as_it_is_is_refused(text):
    with pytest.raises(OfflinePlotsError, match="cannot be put inline"):
        page_template({"vega": text})
