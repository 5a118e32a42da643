"""Make `dvc plots show` work offline: DVC's page loads vega, vega-lite and vega-embed from a CDN,
so without internet every interactive plot is an empty frame. This writes an HTML template with the
three scripts inside it and configures DVC to use it (`plots.html_template` in .dvc/config.local).

Usage: python -m devtools.offline_plots        (run by .ci/setup; needs npm and a package registry)

The scripts come from `npm pack` of the exact versions DVC's page asks for, checked against the
tarballs' sha512 pinned below. Inline, the page works wherever `dvc plots show -o` writes it and
when it is copied elsewhere. The template is generated, not committed (it is 0.8 MB of
third-party code), so a clone without it keeps DVC's default page (which needs internet).
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Relative to .dvc/, as DVC reads `plots.html_template`; .dvc/.gitignore keeps it out of git.
TEMPLATE_IN_DVC_DIRECTORY = "offline/plots.html"


@dataclass(frozen=True)
class Script:
    package: str
    version: str
    sha512: str  # the tarball's, as npm reports it ("integrity")
    member: str  # the script inside the tarball


# The versions dvc_render's VegaRenderer.SCRIPTS loads (tests/test_offline_plots.py checks they match).
SCRIPTS = (
    Script("vega", "5.20.2", "sha512-qmH7aD9GGPpssVdxL1xgcdxTbQzyRUeRR16Os385ymvQhiwCYQNA6+eXUPAZDTVLfk0RXu6Jzj6kUE5jQ80EVw==",
           "package/build/vega.min.js"),
    Script("vega-lite", "5.2.0", "sha512-Yxcg8MvYfxHcG6BbkaKT0oVCIMIcE19UvqIsEwBmyd/7h2nzW7oRnID81T8UrY7hpDrIr6wa2JADOT2dhGNErw==",
           "package/build/vega-lite.min.js"),
    Script("vega-embed", "6.18.2", "sha512-wcDyQPE4J5aiCDc3/suH5RQDvrKkjuLkhzUcbOLwEkNF8/+pp17tS0JghzEvAPNRg+5aG1/N2ydixq8Lk3dOlg==",
           "package/build/vega-embed.min.js"),
)

PAGE = """<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    {refresh_tag}
    <title>DVC Plot</title>
    <!-- vega, vega-lite and vega-embed, inline so the page needs no network: devtools/offline_plots.py -->
__SCRIPTS__
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""
# dvc_render replaces these in the whole template, scripts included; `{scripts}` (DVC's CDN tags) is left out.
PLACEHOLDERS = ("{plot_divs}", "{refresh_tag}", "{scripts}")


class OfflinePlotsError(RuntimeError):
    pass


def loaded_versions(cdn_tags: str) -> dict[str, str]:
    """The package versions a page's CDN script tags load, e.g. {"vega": "5.20.2", ...}."""
    return dict(re.findall(r"/npm/([a-z-]+)@([0-9][^\"'/]*)", cdn_tags))


def sha512_integrity(tarball: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()


def script_from_tarball(script: Script, tarball: bytes) -> str:
    """The script's text, once the tarball is the one pinned."""
    integrity = sha512_integrity(tarball)
    if integrity != script.sha512:
        raise OfflinePlotsError(f"{script.package}@{script.version}: the tarball's sha512 is {integrity}, "
                                f"not the pinned {script.sha512}; refusing to put it in the page")
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        return archive.extractfile(script.member).read().decode("utf-8")


def page_template(scripts: dict[str, str]) -> str:
    """DVC's page with the scripts inline (in SCRIPTS' order) instead of its CDN tags."""
    blocks = []
    for name, text in scripts.items():
        lowered = text.lower()
        if "</script" in lowered or "<!--" in lowered or any(p in text for p in PLACEHOLDERS):
            raise OfflinePlotsError(f"{name}'s script holds '</script', '<!--' or a DVC placeholder: it "
                                    "cannot be put inline in the page as it is")
        blocks.append(f'    <script type="text/javascript">/* {name} */\n{text}\n    </script>')
    return PAGE.replace("__SCRIPTS__", "\n".join(blocks))


def npm_pack(script: Script, directory: Path) -> bytes:
    """The package's tarball, fetched by npm (its registry and proxy settings are the user's)."""
    packed = subprocess.run(["npm", "pack", f"{script.package}@{script.version}", "--json", "--silent"],
                            cwd=directory, capture_output=True, text=True)
    if packed.returncode != 0:
        raise OfflinePlotsError(f"`npm pack {script.package}@{script.version}` failed: "
                                f"{(packed.stderr or packed.stdout).strip()[-800:]}")
    return (directory / json.loads(packed.stdout)[0]["filename"]).read_bytes()


def install(project_root: Path) -> Path:
    """Write the template into .dvc/ and point this clone's DVC config at it; returns the template."""
    with tempfile.TemporaryDirectory() as temporary:
        scripts = {script.package: script_from_tarball(script, npm_pack(script, Path(temporary)))
                   for script in SCRIPTS}
    template = project_root / ".dvc" / TEMPLATE_IN_DVC_DIRECTORY
    template.parent.mkdir(parents=True, exist_ok=True)
    partial = template.with_name(f".partial.{template.name}")
    partial.write_text(page_template(scripts), encoding="utf-8")
    partial.replace(template)
    configured = subprocess.run([sys.executable, "-m", "dvc", "config", "--local", "plots.html_template",
                                 TEMPLATE_IN_DVC_DIRECTORY], cwd=project_root, capture_output=True, text=True)
    if configured.returncode != 0:
        raise OfflinePlotsError(f"`dvc config --local plots.html_template` failed: {configured.stderr.strip()}")
    return template


def main() -> int:
    try:
        template = install(PROJECT_ROOT)
    except (OfflinePlotsError, OSError) as error:
        print(f"offline plots: {error}\n`dvc plots show` keeps DVC's default page, which loads its scripts "
              "from the internet; rerun `python -m devtools.offline_plots` once npm works", file=sys.stderr)
        return 1
    print(f"offline plots: `dvc plots show` uses {template.relative_to(PROJECT_ROOT)} "
          f"({', '.join(f'{s.package}@{s.version}' for s in SCRIPTS)} inline)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
