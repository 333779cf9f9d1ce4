"""dse.report.browser: a real headless Chromium opens small hand-written pages.

Skipped when Chromium/chromedriver are not installed, unless DSE_REQUIRE_BROWSER=1 (CI sets
it in .ci/run), in which case a missing browser is an error, not a silent skip. Each
check_page call starts one Chromium (~1-2 s); the good page is checked once, for two tests.
"""

from __future__ import annotations

import base64
import struct
import zlib

import pytest

from dse.report import browser
from dse.report.browser import ImageState, PageCheck, check_page, find_browser

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def tiny_png(width: int = 6, height: int = 4) -> bytes:
    """A valid RGB PNG, solid teal, written by hand (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + b"\x00\x80\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        PNG_MAGIC
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def page(tmp_path, name: str, body: str) -> str:
    path = tmp_path / f"{name}.html"
    path.write_text(
        f"<!doctype html><html><head><title>{name}</title></head><body>{body}</body></html>"
    )
    return str(path)


@pytest.fixture(scope="module")
def good(chromium, tmp_path_factory):
    """The embedded-PNG page, checked once with a screenshot: (PageCheck, screenshot path)."""
    tmp = tmp_path_factory.mktemp("good")
    src = "data:image/png;base64," + base64.b64encode(tiny_png()).decode()
    body = f"<h1>Report</h1><img alt='plot' src='{src}' style='width:120px'><p>text</p>"
    shot = tmp / "shot.png"
    return check_page(page(tmp, "good", body), screenshot=shot, width=800), shot


def test_embedded_png_is_loaded_and_displayed(good):
    result, _ = good
    assert result.ok, result.problems()
    assert result.title == "good" and result.errors == ()
    (img,) = result.images
    assert img.alt == "plot" and img.src_prefix.startswith("data:image/png;base64,")
    assert (img.natural_width, img.natural_height) == (6, 4)
    assert (img.displayed_width, img.displayed_height) == (120, 80) and img.visible


def test_screenshot_is_a_full_page_png(good):
    _, shot = good
    data = shot.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000
    width, height = struct.unpack(">II", data[16:24])
    assert width == 800 and height > 100


def test_broken_image_is_reported(chromium, tmp_path):
    result = check_page(page(tmp_path, "broken", "<img alt='missing' src='nope.png'>"))
    assert not result.ok
    assert any("nope.png" in e and "ERR_FILE_NOT_FOUND" in e for e in result.errors)
    assert any("image 'missing' did not load" in p for p in result.problems())


def test_javascript_exception_is_reported(chromium, tmp_path):
    result = check_page(page(tmp_path, "boom", "<script>throw new Error('boom')</script>"))
    assert not result.ok and result.images == ()
    assert any("Uncaught Error: boom" in e for e in result.errors), result.errors


def test_cli_exit_codes(chromium, tmp_path, capsys):
    hidden = "data:image/png;base64," + base64.b64encode(tiny_png()).decode()
    path = page(tmp_path, "hidden", f"<div style='display:none'><img alt='h' src='{hidden}'></div>")
    assert browser.main([path]) == 1
    out = capsys.readouterr().out
    assert "images: 0/1 loaded and displayed" in out and "image 'h' is not displayed" in out


# Below: no browser needed.


def test_cli_without_browser_exits_2(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DSE_CHROMEDRIVER", str(tmp_path / "no-such-chromedriver"))
    assert find_browser() is None
    assert browser.main([page(tmp_path, "x", "")]) == 2
    assert "apt-get install chromium chromium-driver" in capsys.readouterr().err


def test_problems_wording():
    shown = ImageState("data:a", "a", True, 10, 10, 10.0, 10.0, True)
    hidden = ImageState("data:b", "", True, 10, 10, 0.0, 0.0, False)
    assert PageCheck("u", "t", (), (shown,)).ok
    check = PageCheck("u", "t", ("x.js 1:1 Uncaught",), (shown, hidden))
    assert not check.ok
    assert check.problems() == [
        "browser error: x.js 1:1 Uncaught",
        "image 'data:b' is not displayed (0x0 px, visible=False)",
    ]
