"""The serving page (``serving/static/index.html``) in a real browser: headless chromium driven by
selenium against the default service on 127.0.0.1.

A click on an item must reach the server (the session holds it, clicked), and the page must then
show the new list (the clicked item gone: the default agent never re-shows an item in a session),
the counters, and an interest bar per topic; "none of these" records the first item, not clicked;
an API error is shown on the page. Skipped only when selenium, chromium or chromedriver is missing.
"""

from __future__ import annotations

import httpx
import pytest

pytest.importorskip("selenium", reason="selenium is not installed (the dev extra)")

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from serving import ServedRecommender, create_app
from serving.local_server import ServerThread
from serving.page_screenshot import WAIT_SECONDS, find_browser, headless_chromium, wait_for_step

ITEMS_SHOWN = 10


def shown_item_ids(driver) -> list[int]:
    rows = driver.find_elements(By.CSS_SELECTOR, "#recommendations li[data-item-id]")
    return [int(row.get_attribute("data-item-id")) for row in rows]


def interest_bars(driver) -> dict[str, float]:
    bars = driver.find_elements(By.CSS_SELECTOR, "#interest [data-topic]")
    return {bar.get_attribute("data-topic"): float(bar.get_attribute("data-p-click")) for bar in bars}


def counters(driver) -> tuple[str, str]:
    return driver.find_element(By.ID, "session-steps").text, driver.find_element(By.ID, "session-clicks").text


def test_a_person_plays_the_user_in_the_page():
    browser = find_browser()
    if browser is None:
        pytest.skip("chromium or chromedriver is not on PATH (Debian: chromium, chromium-driver)")
    recommender = ServedRecommender.default()
    topics = set(recommender.topic_names)

    with ServerThread(create_app(recommender)) as base_url, headless_chromium(browser) as driver:
        driver.get(f"{base_url}/")
        wait_for_step(driver, 0)
        session_id = driver.find_element(By.TAG_NAME, "body").get_attribute("data-session-id")
        assert session_id and driver.find_element(By.ID, "session-id").text == session_id
        first_list = shown_item_ids(driver)
        assert len(first_list) == ITEMS_SHOWN
        assert counters(driver) == ("0", "0")
        interest_before = interest_bars(driver)
        assert set(interest_before) == topics

        # click the first item: the server records it, the page shows the next list
        clicked_item = first_list[0]
        driver.find_element(By.CSS_SELECTOR, f'li[data-item-id="{clicked_item}"] .click-item').click()
        wait_for_step(driver, 1)
        assert counters(driver) == ("1", "1")
        second_list = shown_item_ids(driver)
        assert len(second_list) == ITEMS_SHOWN and clicked_item not in second_list
        session = httpx.get(f"{base_url}/v1/sessions/{session_id}").json()
        assert (session["items"], session["clicks"], session["session_clicks"]) == ([clicked_item], [1], 1)
        interest_after = interest_bars(driver)
        assert set(interest_after) == topics
        assert interest_after != interest_before, "a click should move the estimated interest"
        assert interest_after == pytest.approx({t["topic"]: t["p_click"] for t in session["interest_by_topic"]},
                                               abs=1e-6)

        # "none of these": the first shown item, not clicked
        driver.find_element(By.ID, "none-of-these").click()
        wait_for_step(driver, 2)
        assert counters(driver) == ("2", "1")
        session = httpx.get(f"{base_url}/v1/sessions/{session_id}").json()
        assert (session["items"], session["clicks"]) == ([clicked_item, second_list[0]], [1, 0])
        assert second_list[0] not in shown_item_ids(driver)

        # an API error is shown on the page, not swallowed
        assert httpx.delete(f"{base_url}/v1/sessions/{session_id}").status_code == 204
        driver.find_element(By.CSS_SELECTOR, "#recommendations .click-item").click()
        WebDriverWait(driver, WAIT_SECONDS).until(lambda d: d.find_element(By.ID, "status").text == "error")
        error = driver.find_element(By.ID, "error")
        assert error.is_displayed() and "404" in error.text and "deleted" in error.text
