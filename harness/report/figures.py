"""``harness report --figures DIR``: every chart of the report as SVG and PNG, for papers and slides.

The same plotly specs the page draws, with the same titles, and the page's caption set under each
chart; rendered by plotly's static export (kaleido, which drives a local Chrome or Chromium: the
one the browser tests use). ``figures.md`` lists the files with their titles and captions.
"""

from __future__ import annotations

import copy
import html
import re
import textwrap
from pathlib import Path
from typing import Any

from ..errors import InputError

WIDTH = 1100  # px; PNGs are written at 2x


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", html.unescape(text).lower()).strip("-")[:60] or "chart"


def with_caption(spec: dict[str, Any], caption: str) -> dict[str, Any]:
    """The spec with its caption as a paragraph under the plot, as on the page."""
    figure = copy.deepcopy(spec)
    layout = figure.setdefault("layout", {})
    lines = textwrap.wrap(html.unescape(caption), 170) if caption else []
    if lines:
        margin = layout.setdefault("margin", {})
        below = int(margin.get("b", 40))  # tick labels and the axis title live here
        margin["b"] = below + 18 * len(lines) + 16
        layout["height"] = int(layout.get("height", 380)) + 18 * len(lines) + 16
        layout.setdefault("annotations", []).append({
            "text": "<br>".join(html.escape(line) for line in lines), "xref": "paper", "yref": "paper", "x": 0,
            "y": 0, "yshift": -(below + 6), "xanchor": "left", "yanchor": "top", "align": "left",
            "showarrow": False, "font": {"size": 11, "color": "#52606d"}})
    return figure


def write_figures(specs: list[dict[str, Any]], captions: list[str], folder: Path) -> list[Path]:
    """SVG and PNG per chart, and figures.md; returns the image files written."""
    try:
        import kaleido  # noqa: F401
        import plotly.graph_objects as go
        import plotly.io as pio
    except ImportError:
        raise InputError("--figures needs plotly's static export: pip install 'onnx-harness[figures]' "
                         "(kaleido; it uses a local Chrome or Chromium)") from None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--figures {folder}: cannot create the folder: {exc.strerror or exc}") from None
    figures, names, index = [], [], ["# Figures", ""]
    for number, (spec, caption) in enumerate(zip(specs, captions), start=1):
        title = html.unescape(str(spec.get("layout", {}).get("title", {}).get("text", "")))
        stem = f"{number:02d}-{slug(title)}"
        figures.append(go.Figure(with_caption(spec, caption)))
        names.append(stem)
        index += [f"## {number}. {title}", "", f"![{title}]({stem}.svg) ([PNG]({stem}.png))", "", caption, ""]
    written: list[Path] = []
    try:
        for suffix, scale in (("svg", 1), ("png", 2)):
            paths = [folder / f"{name}.{suffix}" for name in names]
            if figures:
                pio.write_images(figures, paths, format=suffix, scale=scale, width=WIDTH,
                                 height=[int(f.layout.height or 420) for f in figures])
            written += paths
    except Exception as exc:  # kaleido raises its own errors when no browser starts
        raise InputError(f"--figures: plotly's static export failed ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:200]}); it needs Chrome or Chromium "
                         "(apt-get install chromium, or kaleido's 'plotly_get_chrome')") from None
    (folder / "figures.md").write_text("\n".join(index).rstrip() + "\n")
    return written
