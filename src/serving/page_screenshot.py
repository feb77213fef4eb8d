"""Drive the serving page (``serving/static/index.html``) in headless chromium, and save a picture of it.

``python -m serving.page_screenshot docs/img/serving_page.png`` serves the default agent on 127.0.0.1
in a thread, opens the page, plays a few steps (two clicks and a "none of these") and saves a
screenshot of the page (1200x900). The helpers here (finding the browser, starting it, waiting for
the page) are shared with ``tests/test_serving_browser.py``.

Needs selenium (the ``dev`` extra) and a chromium with its chromedriver (Debian: ``chromium``,
``chromium-driver``); both are looked up on ``PATH``.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "BrowserPaths",
    "find_browser",
    "headless_chromium",
    "main",
    "play_and_screenshot",
    "wait_for_step",
]

WINDOW_SIZE = (1200, 900)
WAIT_SECONDS = 20.0
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


@dataclass(frozen=True)
class BrowserPaths:
    chromium: str
    chromedriver: str


def find_browser() -> BrowserPaths | None:
    """The chromium binary and its chromedriver on ``PATH``, or ``None`` if either is missing."""
    chromium = next((path for path in map(shutil.which, CHROMIUM_NAMES) if path), None)
    chromedriver = shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        return None
    return BrowserPaths(chromium, chromedriver)


def headless_chromium(paths: BrowserPaths, window_size: tuple[int, int] = WINDOW_SIZE) -> Any:
    """A selenium driver of a new headless chromium whose page area is ``window_size`` (width, height)
    pixels; quit it when done (``with headless_chromium(paths) as driver: ...``)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = paths.chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     f"--window-size={window_size[0]},{window_size[1]}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=paths.chromedriver), options=options)
    try:  # headless chromium keeps room for a (virtual) toolbar: grow the window so the page gets the size
        inner_width, inner_height = driver.execute_script("return [window.innerWidth, window.innerHeight]")
        outer = driver.get_window_size()
        driver.set_window_size(outer["width"] + window_size[0] - inner_width,
                               outer["height"] + window_size[1] - inner_height)
    except BaseException:
        driver.quit()
        raise
    return driver


def wait_for_step(driver: Any, steps: int, timeout: float = WAIT_SECONDS) -> None:
    """Wait until the page has finished a refresh showing ``steps`` session steps.

    :raises AssertionError: the page shows an API error instead (its message is in the assertion).
    :raises selenium.common.exceptions.TimeoutException: neither within ``timeout`` seconds.
    """
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def settled(d: Any) -> bool:
        status = d.find_element(By.ID, "status").text
        if status == "error":
            return True
        return status == "ready" and d.find_element(By.ID, "session-steps").text == str(steps)

    WebDriverWait(driver, timeout).until(settled)
    error = driver.find_element(By.ID, "error").text
    assert not error, f"the page shows an error: {error}"


def play_and_screenshot(path: str | Path, clicked_positions: Sequence[int] = (0, 2)) -> Path:
    """Serve the default agent, click the items at ``clicked_positions`` of the list in turn, then
    "none of these", and save a screenshot of the page to ``path`` (PNG). Returns the path."""
    from selenium.webdriver.common.by import By

    from serving import ServedRecommender, create_app
    from serving.local_server import ServerThread

    paths = find_browser()
    if paths is None:
        raise RuntimeError("no chromium with chromedriver on PATH (Debian: apt-get install chromium chromium-driver)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with ServerThread(create_app(ServedRecommender.default())) as base_url, headless_chromium(paths) as driver:
        driver.get(f"{base_url}/")
        wait_for_step(driver, 0)
        for step, position in enumerate(clicked_positions, start=1):
            driver.find_elements(By.CSS_SELECTOR, "#recommendations li[data-item-id] .click-item")[position].click()
            wait_for_step(driver, step)
        driver.find_element(By.ID, "none-of-these").click()
        wait_for_step(driver, len(clicked_positions) + 1)
        if not driver.save_screenshot(str(path)):
            raise RuntimeError(f"chromium could not save a screenshot to {path}")
    return path


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m serving.page_screenshot", description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="where to write the PNG (e.g. docs/img/serving_page.png)")
    args = parser.parse_args(argv)
    print(f"wrote {play_and_screenshot(args.path)}")


if __name__ == "__main__":
    main()
