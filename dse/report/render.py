"""Markdown and self-contained HTML from the report context (jinja2 templates beside this file).

The HTML embeds every figure as a base64 PNG data URI, so the single file can be mailed or
attached to a design review; the Markdown links the PNG/SVG files under ``figures/``.
"""

from __future__ import annotations

import base64
from pathlib import Path

import jinja2
import markupsafe
from markdown_it import MarkdownIt

from ..files import write_text_atomic

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("dse.report", "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,  # a missing field is a bug, not an empty cell
    keep_trailing_newline=True,
)


def _markdown_inline(text: str) -> markupsafe.Markup:
    """Inline Markdown (bold, code, links: the study READMEs' question) as HTML; raw HTML in
    the text is escaped, not passed through (markdown-it's commonmark preset with html off)."""
    md = MarkdownIt("commonmark", {"html": False})
    return markupsafe.Markup(md.renderInline(str(text)))


_ENV.filters["markdown_inline"] = _markdown_inline


def figure_entries(figures, base: Path) -> list[dict]:
    out = []
    for f in figures:
        data = base64.b64encode(f.png.read_bytes()).decode("ascii")
        out.append({
            "name": f.name, "title": f.title, "caption": f.caption,
            "png_rel": f.png.relative_to(base).as_posix(), "svg_rel": f.svg.relative_to(base).as_posix(),
            "data_uri": f"data:image/png;base64,{data}",
        })  # fmt: skip
    return out


def render(template: str, context: dict) -> str:
    return _ENV.get_template(template).render(**context)


def write_atomic(text: str, path: Path) -> Path:
    return write_text_atomic(text, path)
