"""Assemble the one-file page: the data as JSON, the page's own scripts and style, and Plotly's
bundle from the installed ``plotly`` package, all inlined (``render_page``).

Plotly's ``plotly.min.js`` (MIT, ~4.8 MB) is stored gzip-compressed and base64-encoded (~1.9 MB)
and unpacked in the browser with ``DecompressionStream``, which keeps a demo page near 2 MB. A
Content-Security-Policy with ``default-src 'none'`` makes the browser refuse any request the
page might attempt: it can only show what is inside it.
"""

from __future__ import annotations

import base64
import functools
import gzip
import html
import json
import math
from importlib import resources
from typing import Any

from harness.contracts.errors import UserError

ASSETS = ("util.js", "table.js", "plots.js", "grid.js", "samples.js", "app.js")
"""The page's scripts, in load order (``reports/html/assets/``)."""
CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'unsafe-inline'; img-src data: blob:; font-src data:"
)


class PageError(UserError, RuntimeError):
    """The plotting library's bundle cannot be found (a broken install)."""


def _asset(name: str) -> str:
    return resources.files("reports.html").joinpath("assets", name).read_text(encoding="utf-8")


@functools.cache
def plotly_bundle() -> tuple[str, str]:
    """(version, base64 of gzip of plotly.min.js); compressed once per process."""
    try:
        js = resources.files("plotly").joinpath("package_data", "plotly.min.js").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, OSError) as exc:
        raise PageError(
            f"cannot read plotly.min.js from the plotly package ({exc}); "
            "install it with `pip install plotly`"
        ) from None
    head = js[:200].decode("ascii", errors="replace")
    version = head.split("plotly.js v", 1)[1].split()[0] if "plotly.js v" in head else "?"
    packed = gzip.compress(js, compresslevel=6, mtime=0)
    return version, base64.b64encode(packed).decode("ascii")


def _finite(data: Any) -> Any:
    """Non-finite floats (a diverged loss) as null: JSON has no NaN."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_finite(v) for v in data]
    return data


def _json(data: Any) -> str:
    """JSON safe inside a <script> element (no ``<`` at all)."""
    text = json.dumps(_finite(data), ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c")


def render_page(
    payload: dict[str, Any], assets: tuple[str, ...] = ASSETS, title: str | None = None
) -> str:
    """The whole HTML document for ``payload`` (``reports.html.payload.build_payload``, or the
    benchmark page's ``reports.html.benchmark_page``, whose views are its own ``assets``)."""
    version, bundle = plotly_bundle()
    payload = {**payload, "plotly_version": version}
    title = html.escape(title or f"Experiments: {payload['name']}")
    scripts = "\n".join(f"<script>\n{_asset(name)}\n</script>" for name in assets)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
{_asset("page.css")}
</style>
</head>
<body>
<header id="top"><h1>{title}</h1><div id="progress"></div><nav id="tabs"></nav></header>
<main id="views"></main>
<noscript>This page draws its tables and plots with JavaScript; allow it for this file.</noscript>
<script type="application/json" id="report-data">{_json(payload)}</script>
<script type="application/octet-stream" id="plotly-gz">{bundle}</script>
{scripts}
</body>
</html>
"""
