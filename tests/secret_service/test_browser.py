"""The reveal page in headless Chromium against the real TLS server.

Python encrypts through the client and the page decrypts with WebCrypto, so
these tests prove that both sides derive the same keys. Chromium trusts only
the test certificate, pinned by its SPKI hash.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from include.secret_service.tls import spki_sha256_base64
from tests.secret_service.helpers import HARD_TEXTS

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_SECONDS = 30
BROWSER_TEXT = (
    HARD_TEXTS["bom_and_controls"].replace("\x00", "")
    + HARD_TEXTS["umlauts"]
    + HARD_TEXTS["crlf"]
    + HARD_TEXTS["rtl"]
    + "\r\n"
    + HARD_TEXTS["emoji"]
)

if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
    pytest.skip(
        f"browser tests need {CHROMIUM} and {CHROMEDRIVER}; install the Debian packages "
        "chromium and chromium-driver (make browser)",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402 - only importable work after the skip check
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture
def browser(dev_cert, tmp_path):
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        f"--ignore-certificate-errors-spki-list={spki_sha256_base64(dev_cert[0])}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})

    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(WAIT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


def _message(driver) -> str:
    return driver.find_element(By.ID, "message").text


def _wait_for_message(driver, fragment: str) -> str:
    WebDriverWait(driver, WAIT_SECONDS).until(lambda d: fragment in _message(d))
    return _message(driver)


def _wait_until_ready(driver) -> None:
    WebDriverWait(driver, WAIT_SECONDS).until(
        lambda d: d.find_element(By.ID, "reveal").is_enabled()
    )


def _shown_secret(driver) -> str:
    WebDriverWait(driver, WAIT_SECONDS).until(
        lambda d: d.find_element(By.ID, "result").is_displayed()
    )
    return driver.execute_script("return document.getElementById('secret').textContent")


def _console_errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_browser_reveals_once_then_reports_viewed(service, browser):
    client = service.client()
    created = client.create(BROWSER_TEXT, 600)

    browser.get(created.link)
    _wait_until_ready(browser)
    assert client.receipt(created.receipt_token)["state"] == "pending"
    assert service.secrets().find_one({"_id": created.secret_id})["ciphertext"]

    browser.find_element(By.ID, "reveal").click()
    shown = _shown_secret(browser)

    assert shown == BROWSER_TEXT
    assert "deleted from the server" in _message(browser)
    assert client.receipt(created.receipt_token)["state"] == "viewed"

    browser.refresh()
    message = _wait_for_message(browser, "already viewed or expired")

    assert "cannot be shown again" in message
    assert not browser.find_element(By.ID, "reveal").is_displayed()
    assert not browser.find_element(By.ID, "result").is_displayed()
    csp_violations = [e for e in _console_errors(browser) if "Content Security Policy" in e]
    assert csp_violations == []


def test_browser_page_load_alone_burns_nothing(service, browser):
    client = service.client()
    created = client.create("still here", 600)

    for _ in range(3):
        browser.get(created.link)
        _wait_until_ready(browser)

    assert client.receipt(created.receipt_token)["state"] == "pending"
    assert client.reveal(created.link) == "still here"


def test_browser_with_passphrase(service, browser):
    client = service.client()
    created = client.create(BROWSER_TEXT, 600, passphrase="Käse und Brot")

    browser.get(created.link)
    _wait_for_message(browser, "protected by a passphrase")
    _wait_until_ready(browser)
    field = browser.find_element(By.ID, "passphrase")
    field.send_keys("wrong guess")
    browser.find_element(By.ID, "reveal").click()
    wrong = _wait_for_message(browser, "Wrong passphrase")

    assert "4 more wrong attempts" in wrong
    assert client.receipt(created.receipt_token)["state"] == "pending"

    _wait_until_ready(browser)
    field.send_keys("Käse und Brot")
    browser.find_element(By.ID, "reveal").click()

    assert _shown_secret(browser) == BROWSER_TEXT
    assert client.receipt(created.receipt_token)["state"] == "viewed"


@pytest.mark.parametrize(
    ("cut", "expected"),
    [("fragment", "key after “#” is missing"), ("truncated", "damaged")],
)
def test_browser_incomplete_link_burns_nothing(service, browser, cut, expected):
    client = service.client()
    created = client.create("survivor", 600)
    base, fragment = created.link.split("#")
    damaged = base if cut == "fragment" else f"{base}#{fragment[:-2]}"

    browser.get(damaged)
    _wait_for_message(browser, expected)

    assert not browser.find_element(By.ID, "reveal").is_displayed()
    assert client.receipt(created.receipt_token)["state"] == "pending"
    browser.get(created.link)
    _wait_until_ready(browser)
    browser.find_element(By.ID, "reveal").click()
    assert _shown_secret(browser) == "survivor"
