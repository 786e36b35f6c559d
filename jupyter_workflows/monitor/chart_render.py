"""Charts that render without the internet: Altair's renderer ``jupyter-workflows``.

Altair's default output asks the front-end to load Vega from a CDN (or to know a Vega-Lite
MIME type the installed JupyterLab may not: Altair 6 speaks Vega-Lite 6), so offline, and in
a notebook saved and opened elsewhere, a chart is an error message. This renderer draws the
chart in the kernel with ``vl-convert`` (no network, no browser) and sends:

- ``image/svg+xml``: the chart, for front-ends that take the richest static type;
- ``text/html``: the same SVG, plus a script that swaps in the interactive chart (tooltips)
  when ``vegaEmbed`` is already on the page (an exported page that ships it), never fetching
  it: without it, or without scripts (GitHub, an untrusted notebook), the SVG stays;
- ``text/plain``: the chart's title.

It is chosen automatically: the chart functions of ``monitor.charts`` enable it when Altair's
renderer is still its ``default`` and vl-convert is installed (a renderer the user picked is
left alone). Without vl-convert, Altair's default output stays. Altair and vl-convert are
imported only when a chart is drawn.
"""

from __future__ import annotations

import html
import json
import re
import uuid
from typing import Any

__all__ = ["NAME", "offline_bundle", "use_offline_renderer"]

NAME = "jupyter-workflows"
_VERSION = re.compile(r"/v(\d+)\.(\d+)")


def use_offline_renderer() -> bool:
    """Register the renderer and enable it if Altair's is still ``default``; True when it is
    the active one. Cheap after the first call."""
    import importlib.util

    import altair as alt

    if NAME not in alt.renderers.names():
        alt.renderers.register(NAME, offline_bundle)
    if alt.renderers.active == "default" and importlib.util.find_spec("vl_convert") is not None:
        alt.renderers.enable(NAME)
    return bool(alt.renderers.active == NAME)


def offline_bundle(spec: dict[str, Any], **_options: Any) -> dict[str, Any]:
    """The MIME bundle of one chart (see the module's docstring)."""
    svg = to_svg(spec)
    title = _title(spec)
    element = f"jw-chart-{uuid.uuid4().hex[:12]}"
    data = json.dumps(spec).replace("</", "<\\/")  # cannot end the script early
    page = (
        f"<div id='{element}' class='jupyter-workflows-chart' title='{html.escape(title)}'>"
        f"{svg}</div>"
        "<script type='text/javascript'>(function () {"
        "if (typeof window.vegaEmbed !== 'function') return;"
        f"var el = document.getElementById('{element}');"
        f"window.vegaEmbed(el, {data}, {{mode: 'vega-lite', actions: false}})"
        ".catch(function () {});"
        "})();</script>"
    )
    return {"image/svg+xml": svg, "text/html": page, "text/plain": f"<chart: {title}>"}


def to_svg(spec: dict[str, Any]) -> str:
    """The chart as SVG, drawn by vl-convert with the Vega-Lite version the spec names."""
    import vl_convert

    version = _vl_version(spec, vl_convert.get_vegalite_versions())
    if version is None:
        return str(vl_convert.vegalite_to_svg(spec))
    return str(vl_convert.vegalite_to_svg(spec, vl_version=version))


def _vl_version(spec: dict[str, Any], known: list[str]) -> str | None:
    """``"6.4"`` for a spec whose ``$schema`` is ``.../vega-lite/v6.4.1.json``, when vl-convert
    knows it; else the newest it knows of that major version; else None (its default)."""
    found = _VERSION.search(str(spec.get("$schema", "")))
    if found is None:
        return None
    wanted = f"{found.group(1)}.{found.group(2)}"
    if wanted in known:
        return wanted
    same_major = [v for v in known if v.split(".")[0] == found.group(1)]
    return same_major[-1] if same_major else None


def _title(spec: dict[str, Any]) -> str:
    title = spec.get("title")
    if isinstance(title, dict):
        title = title.get("text")
    if not title:
        parts = spec.get("vconcat") or spec.get("hconcat") or spec.get("layer") or []
        title = next((t for t in (_title(p) for p in parts) if t != "chart"), None)
    return str(title) if title else "chart"
