"""Build .dvc/plots/offline.html: the HTML template `dvc plots show` fills (dvc config plots.html_template),
with vega, vega-lite and vega-embed inlined so the page renders with no network access.

DVC's default page loads these three scripts from cdn.jsdelivr.net. We use the same versions DVC
pins (dvc_render.vega.VegaRenderer.SCRIPTS), fetched from the npm registry with `npm pack`. The
template has no `{scripts}` placeholder, so DVC does not add its CDN <script> tags.

    python .dvc/plots/build_offline_template.py        # needs npm and the registry; run once, commit the result
"""
from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGES = [("vega", "5.20.2", "build/vega.min.js"), ("vega-lite", "5.2.0", "build/vega-lite.min.js"),
            ("vega-embed", "6.18.2", "build/vega-embed.min.js")]
OUT = Path(__file__).with_name("offline.html")
PLACEHOLDERS = ("{plot_divs}", "{scripts}", "{refresh_tag}")

PAGE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>MedQA-LoRA plots (offline)</title>
<!-- Inlined by .dvc/plots/build_offline_template.py from the npm registry:
{versions}
Licences (BSD-3-Clause, University of Washington Interactive Data Lab) follow each script. -->
{inline}
    <style>
        body {{ font-family: sans-serif; }}
        table {{ border-spacing: 15px; }}
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def fetch(tmp: Path) -> list[tuple[str, str, str]]:
    specs = [f"{name}@{ver}" for name, ver, _ in PACKAGES]
    subprocess.run(["npm", "pack", "--silent", *specs], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
    out = []
    for name, ver, member in PACKAGES:
        with tarfile.open(tmp / f"{name}-{ver}.tgz") as tar:
            js = tar.extractfile(f"package/{member}").read().decode("utf-8")
            lic = tar.extractfile("package/LICENSE").read().decode("utf-8")
        if re.search(r"</script", js, re.I) or any(p in js for p in PLACEHOLDERS):
            sys.exit(f"{name}@{ver}: script cannot be inlined safely")
        out.append((f"{name}@{ver}", js, lic))
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        scripts = fetch(Path(tmp))
    inline = "\n".join(f"<script>/* {spec} */\n{js}\n/*\n{lic.replace('*/', '* /')}\n*/</script>"
                       for spec, js, lic in scripts)
    html = PAGE.replace("{{", "\0").replace("}}", "\1")
    html = html.replace("{versions}", "\n".join(spec for spec, _, _ in scripts)).replace("{inline}", inline)
    html = html.replace("\0", "{").replace("\1", "}")
    OUT.write_text(html, encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
