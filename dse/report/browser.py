"""Check that an HTML report really renders, in headless Chromium driven by Selenium.

    python -m dse.report.browser REPORT.html [--screenshot out.png]

exits 0 when the page has no browser errors and every <img> loaded and is displayed, 1 when
not, 2 when no browser is installed. Binaries: Debian's `chromium` + `chromium-driver` found on
PATH, or the paths in $DSE_CHROMIUM / $DSE_CHROMEDRIVER. Selenium Manager is never used (it
would try to download a driver): we always hand Selenium both paths.

Chromium flags, and why (we run offline, as root, in containers):
  --headless=new                 the real browser without a display (the old headless mode is a
                                 separate, diverging implementation).
  --no-sandbox                   Chromium refuses to start as root with its sandbox on.
  --disable-gpu                  no GPU in CI; software rendering is enough for a screenshot.
  --disable-dev-shm-usage        containers often have a 64 MB /dev/shm: Chromium would crash.
  --disable-quic, --disable-background-networking, --disable-component-update, --disable-sync,
  --no-first-run                 otherwise Chromium phones Google (updates, sync, field trials)
                                 and, with no network, logs connection errors we'd report.
  --user-data-dir=<fresh tmp>    no state shared with other runs or a person's own profile.
  --hide-scrollbars, --force-device-scale-factor=1   reproducible screenshots.
Console messages at level SEVERE are the page's errors: uncaught JS exceptions ("Uncaught
Error: ...") and failed resource loads ("Failed to load resource: net::ERR_FILE_NOT_FOUND").
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)
MAX_SCREENSHOT_HEIGHT = 20000

# Per <img>: load state, rendered box, and CSS visibility (checkVisibility also sees a
# display:none / visibility:hidden ancestor).
_IMAGES_JS = """return Array.from(document.images).map(i => {
  const r = i.getBoundingClientRect();
  return [i.getAttribute('src') || '', i.alt || '', i.complete, i.naturalWidth, i.naturalHeight,
          r.width, r.height, i.checkVisibility({visibilityProperty: true})];
});"""


@dataclass(frozen=True)
class ImageState:
    src_prefix: str  # first 60 characters of src (data: URIs are long)
    alt: str
    complete: bool
    natural_width: int
    natural_height: int
    displayed_width: float
    displayed_height: float
    visible: bool  # not display:none / visibility:hidden, itself or an ancestor

    @property
    def loaded(self) -> bool:
        return self.complete and self.natural_width > 0

    @property
    def displayed(self) -> bool:
        return self.visible and self.displayed_width > 0 and self.displayed_height > 0


@dataclass(frozen=True)
class PageCheck:
    url: str
    title: str
    errors: tuple[str, ...]  # console SEVERE: JS exceptions, failed resource loads
    images: tuple[ImageState, ...]

    @property
    def ok(self) -> bool:
        return not self.problems()

    def problems(self) -> list[str]:
        out = [f"browser error: {e}" for e in self.errors]
        for i in self.images:
            name = f"image {i.alt or i.src_prefix!r}"
            if not i.loaded:
                out.append(
                    f"{name} did not load (complete={i.complete}, naturalWidth={i.natural_width})"
                )
            elif not i.displayed:
                out.append(
                    f"{name} is not displayed ({i.displayed_width:g}x"
                    f"{i.displayed_height:g} px, visible={i.visible})"
                )
        return out


def find_browser() -> tuple[str, str] | None:
    """(chromium, chromedriver) executables, or None when either is missing."""
    env = os.environ.get("DSE_CHROMIUM")
    chromium = (
        shutil.which(env) if env else shutil.which("chromium") or shutil.which("chromium-browser")
    )
    driver = shutil.which(os.environ.get("DSE_CHROMEDRIVER") or "chromedriver")
    return (chromium, driver) if chromium and driver else None


def check_page(
    path_or_url: str | Path,
    screenshot: str | Path | None = None,
    width: int = 1400,
    timeout_s: float = 30,
) -> PageCheck:
    """Open a page (file path or URL) in headless Chromium and report what rendered."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    s = str(path_or_url)
    if "://" in s or s.startswith(("data:", "about:")):
        url = s
    else:
        if not Path(s).is_file():
            raise FileNotFoundError(s)
        url = Path(s).resolve().as_uri()
    found = find_browser()
    if found is None:
        raise RuntimeError("no Chromium found: apt-get install chromium chromium-driver")
    profile = tempfile.mkdtemp(prefix="dse-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = None
    try:
        driver = webdriver.Chrome(options=options, service=Service(executable_path=found[1]))
        driver.set_page_load_timeout(timeout_s)
        deadline = time.monotonic() + timeout_s
        driver.get(url)  # returns once document.readyState == 'complete'
        # Lazy images never load off-screen in a headless viewport: make them eager, then wait.
        driver.execute_script("for (const i of document.images) i.loading = 'eager';")
        while time.monotonic() < deadline and not driver.execute_script(
            "return document.readyState === 'complete' &&"
            " Array.from(document.images).every(i => i.complete);"
        ):
            time.sleep(0.05)
        images = tuple(
            ImageState(str(src)[:60], alt, bool(c), int(nw), int(nh), float(w), float(h), bool(v))
            for src, alt, c, nw, nh, w, h, v in driver.execute_script(_IMAGES_JS)
        )
        if screenshot is not None:
            # The window size includes headless' emulated browser UI (~140 px): add it back.
            height, ui = driver.execute_script(
                "return [Math.max(document.documentElement.scrollHeight,"
                " document.body ? document.body.scrollHeight : 0),"
                " window.outerHeight - window.innerHeight];"
            )
            driver.set_window_size(width, min(max(int(height), 100), MAX_SCREENSHOT_HEIGHT) + ui)
            if not driver.save_screenshot(str(screenshot)):
                raise RuntimeError(f"could not write screenshot {screenshot}")
        errors = tuple(e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE")
        return PageCheck(url, driver.title, errors, images)
    finally:
        if driver is not None:
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m dse.report.browser", description=__doc__.split("\n")[0]
    )
    p.add_argument("page", help="HTML file or URL")
    p.add_argument("--screenshot", metavar="PNG", help="save a full-page screenshot here")
    p.add_argument("--width", type=int, default=1400)
    p.add_argument("--timeout", type=float, default=30, help="seconds (default 30)")
    a = p.parse_args(argv)
    if find_browser() is None:
        print(
            "error: no headless browser found; install Debian's: "
            "apt-get install chromium chromium-driver (or set DSE_CHROMIUM/DSE_CHROMEDRIVER)",
            file=sys.stderr,
        )
        return 2
    r = check_page(a.page, a.screenshot, width=a.width, timeout_s=a.timeout)
    shown = sum(i.loaded and i.displayed for i in r.images)
    print(
        f"{r.url}\ntitle: {r.title!r}\nimages: {shown}/{len(r.images)} loaded and displayed"
        f"\nerrors: {len(r.errors)}"
    )
    for problem in r.problems():
        print(f"  - {problem}")
    if a.screenshot:
        print(f"screenshot: {a.screenshot}")
    print("OK" if r.ok else "NOT OK")
    return 0 if r.ok else 1


if __name__ == "__main__":
    sys.exit(main())
