# -*- coding: utf-8 -*-
# Copyright: overlayfs.mounts contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""drift.html in a real browser: Debian's chromium, headless, driven by Selenium.

Renders a fleet report (an unreachable host, a failed one, drift in three
engines, mount points named with quotes, markup, newlines, ANSI escapes and
bytes that are not UTF-8) and checks, in the browser: the rows, the filters
by host, engine and drift kind, sorting, that the odd paths are literal
text, how the page prints, and, from Chrome's network log, that no request
leaves the file. A screenshot is kept under the test's tmp dir, and copied
to $TEST_ARTIFACTS when that is set.

Needs `apt-get install chromium chromium-driver python3-selenium`; Debian's
selenium is used from /usr/lib/python3/dist-packages when the test's Python
has none. Skipped, with the reason, when any of them is missing.
"""

import json
import os
import re
import shutil
import sys
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEBIAN_PACKAGES = "/usr/lib/python3/dist-packages"


def _import_selenium():
    try:
        import selenium  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    except ImportError:
        if not os.path.isdir(os.path.join(DEBIAN_PACKAGES, "selenium")):
            return "selenium is not installed (apt-get install python3-selenium)"
        # Last on the path: only what this Python lacks comes from Debian's packages.
        sys.path.append(DEBIAN_PACKAGES)
        try:
            import selenium  # noqa: F401,F811  pylint: disable=import-outside-toplevel,unused-import,reimported
        except ImportError as exc:
            return "selenium cannot be imported: %s" % exc
    return None


def _import_collection():
    """``ansible_collections.overlayfs.mounts`` importable from this checkout (as tests/unit/conftest.py does)."""
    try:
        import ansible_collections.overlayfs.mounts  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
        return
    except ImportError:
        pass
    root = tempfile.mkdtemp(prefix="overlayfs-mounts-browser-")
    os.makedirs(os.path.join(root, "ansible_collections", "overlayfs"))
    os.symlink(REPO, os.path.join(root, "ansible_collections", "overlayfs", "mounts"))
    sys.path.insert(0, root)


CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
MISSING = ("chromium is not installed (apt-get install chromium)" if not CHROMIUM else
           "chromedriver is not installed (apt-get install chromium-driver)" if not CHROMEDRIVER else
           _import_selenium())
pytestmark = pytest.mark.skipif(MISSING is not None, reason=str(MISSING))

# Mount points named by someone else. overlay_mount_info returns a byte that is not UTF-8 as \NNN.
ODD = "/srv/q\"'<b>bold</b>&amp;\nnext\x1b[31mred<img src=x>"
ODD_SHOWN = "/srv/q\"'<b>bold</b>&amp;\\012next\\033[31mred<img src=x>"
BAD_UTF8 = "/srv/bad\\377\\376"


def _overlay(path, drift=(), engine="none"):
    return {"path": path, "mounted": True, "engine": engine, "drift": list(drift)}


def _row(field, live, persisted):
    return {"field": field, "declared": None, "live": live, "persisted": persisted, "source": "fstab"}


FLEET = {
    "web1": {"declared": [{"path": "/srv/app", "field": "lowerdir", "declared": ["/l/a", "/l/b"], "live": ["/l/b"],
                           "persisted": ["/l/a", "/l/b"]}],
             "declared_paths": ["/srv/app", "/srv/tools"],
             "overlays": [_overlay("/srv/app"), _overlay("/srv/tools"),
                          _overlay("/var/lib/docker/overlay2/x/merged", [_row("options.index", "on", "off")], "docker")]},
    "web2": {"declared": None, "overlays": [_overlay(ODD, [_row("mounted", False, True)]),
                                            _overlay(BAD_UTF8, [_row("options.xino", "auto", "off"),
                                                                _row("flags.suid", "suid", "nosuid")])]},
    "web3": {"declared": [], "declared_paths": ["/srv/app"], "overlays": [_overlay("/srv/app")]},
    "db9": {"status": "unreachable", "msg": "Failed to connect to the host via ssh: ssh: connect to host 127.0.0.1 "
                                            "port 1: Connection refused"},
    "db8": {"status": "failed", "msg": "cannot read /proc/self: Is a directory"},
}


@pytest.fixture(name="page")
def page_fixture(tmp_path):
    _import_collection()
    # pylint: disable=import-outside-toplevel
    from ansible_collections.overlayfs.mounts.plugins.module_utils._report.fleet import build
    from ansible_collections.overlayfs.mounts.plugins.module_utils._report.html import render
    path = tmp_path / "drift.html"
    path.write_text(render(build(FLEET), generated="test"), encoding="utf-8")
    return path


@pytest.fixture(name="browser")
def browser_fixture(tmp_path):
    # pylint: disable=import-outside-toplevel
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1800", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-default-apps",
                # Any name the page would look up fails; the network log shows the attempt.
                "--host-resolver-rules=MAP * ~NOTFOUND"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    service = Service(CHROMEDRIVER, log_path=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _visible_rows(driver, table):
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#' + arguments[0] + ' tbody tr'))"
        ".filter(function (tr) { return !tr.hidden && tr.offsetParent !== null; })"
        ".map(function (tr) { return Array.from(tr.cells).map(function (td) { return td.textContent; }); });", table)


def _select(driver, name, value):
    # pylint: disable=import-outside-toplevel
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    Select(driver.find_element(By.ID, "f-" + name)).select_by_value(value)


def _sort(driver, table, column):
    # pylint: disable=import-outside-toplevel
    from selenium.webdriver.common.by import By
    driver.find_elements(By.CSS_SELECTOR, "#%s thead th button" % table)[column].click()


def _requests(driver):
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] in ("Network.requestWillBeSent", "Network.webSocketCreated"):
            urls.append(message["params"].get("request", {}).get("url") or message["params"].get("url"))
    return urls


def _keep_screenshot(driver, tmp_path):
    shot = tmp_path / "drift.png"
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, max(900, min(int(height) + 100, 6000)))
    assert driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10000
    artifacts = os.environ.get("TEST_ARTIFACTS")
    if artifacts:
        os.makedirs(artifacts, exist_ok=True)
        shutil.copy(str(shot), os.path.join(artifacts, "drift-html-browser.png"))
    return shot


def test_the_file_names_nothing_to_fetch(page):
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\ssrc\s*=", text, re.I)
    assert not re.search(r"<link\b", text, re.I)
    assert "url(" not in text and "@import" not in text
    assert not re.search(r"https?://", text)


def _check_content(browser):
    """The fleet summary first, then the hosts, then the drifted fields; odd paths as literal text."""
    # pylint: disable=import-outside-toplevel
    from selenium.webdriver.common.by import By
    order = browser.execute_script("return Array.from(document.querySelectorAll('h2')).map(h => h.textContent);")
    assert order == ["Fleet summary", "Hosts", "Drifted overlays"]
    cards = {e.get_attribute("id"): e.find_element(By.TAG_NAME, "dd").text
             for e in browser.find_elements(By.CSS_SELECTOR, "#summary .cards > div")}
    assert cards == {"count-hosts": "5", "count-in-sync": "1", "count-drifted": "2", "count-unreachable": "1",
                     "count-failed": "1", "count-overlays": "6", "count-drifted-overlays": "4",
                     "count-drifted-fields": "5"}
    hosts = {r[0]: r for r in _visible_rows(browser, "hosts")}
    assert hosts["db9"][1] == "unreachable" and "Connection refused" in hosts["db9"][7]
    assert hosts["db8"][1] == "failed" and hosts["web3"][1] == "in sync"
    rows = _visible_rows(browser, "drift")
    assert len(rows) == 5
    assert browser.find_element(By.ID, "shown").text == "5 of 5 drifted field(s) shown"
    # Declared, persisted and live side by side.
    assert rows[0] == ["web1", "overlayfs.mounts", "/srv/app", "lowerdir", '["/l/a", "/l/b"]', '["/l/a", "/l/b"]',
                       '["/l/b"]']
    # Odd paths are literal text: nothing in them became an element, nothing ran.
    paths = [r[2] for r in rows]
    assert ODD_SHOWN in paths and BAD_UTF8 in paths
    assert browser.execute_script("return document.querySelectorAll('b, img, tbody script').length") == 0
    assert browser.execute_script("return document.scripts.length") == 1


def _check_filters(browser):
    """Filters by host, engine and kind, alone and together, and back to all rows."""
    # pylint: disable=import-outside-toplevel
    from selenium.webdriver.common.by import By
    _select(browser, "host", "web2")
    assert [r[2] for r in _visible_rows(browser, "drift")] == [ODD_SHOWN, BAD_UTF8, BAD_UTF8]
    assert [r[0] for r in _visible_rows(browser, "hosts")] == ["web2"]
    _select(browser, "kind", "options")
    assert [r[3] for r in _visible_rows(browser, "drift")] == ["options.xino"]
    _select(browser, "host", "")
    assert sorted(r[3] for r in _visible_rows(browser, "drift")) == ["options.index", "options.xino"]
    _select(browser, "engine", "docker")
    assert [r[0] for r in _visible_rows(browser, "drift")] == ["web1"]
    assert browser.find_element(By.ID, "shown").text == "1 of 5 drifted field(s) shown"
    browser.find_element(By.ID, "f-reset").click()
    assert len(_visible_rows(browser, "drift")) == 5 and len(_visible_rows(browser, "hosts")) == 5


def _check_sorting(browser):
    """By field, both ways; hosts by drifted fields, as numbers."""
    _sort(browser, "drift", 3)
    fields = [r[3] for r in _visible_rows(browser, "drift")]
    assert fields == sorted(fields)
    _sort(browser, "drift", 3)
    assert [r[3] for r in _visible_rows(browser, "drift")] == sorted(fields, reverse=True)
    _sort(browser, "hosts", 6)
    _sort(browser, "hosts", 6)
    assert [r[0] for r in _visible_rows(browser, "hosts")][:2] == ["web2", "web1"]


def _check_print(browser):
    """Printed: the filters are gone, and a PDF comes out."""
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    assert browser.execute_script("return getComputedStyle(document.querySelector('.filters')).display") == "none"
    assert browser.execute_cdp_cmd("Page.printToPDF", {"landscape": True})["data"]
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})


def test_drift_html_in_chromium(page, browser, tmp_path):
    url = page.as_uri()
    browser.get(url)
    assert browser.title == "Overlay drift report"
    _check_content(browser)
    _check_filters(browser)
    _check_sorting(browser)
    shot = _keep_screenshot(browser, tmp_path)
    _check_print(browser)
    # No request left the file; the page's policy was never violated (its style and script ran).
    assert set(_requests(browser)) == {url}
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert not errors, errors
    assert shot.exists()


def test_the_network_log_would_see_a_request(page, browser, tmp_path):
    """The control: the same page with an image from elsewhere shows that request in the log (and a CSP report)."""
    tampered = tmp_path / "tampered.html"
    tampered.write_text(page.read_text(encoding="utf-8").replace(
        "<body>", '<body><img src="http://drift-report.invalid/pixel.png" alt="">', 1), encoding="utf-8")
    browser.get(tampered.as_uri())
    assert "http://drift-report.invalid/pixel.png" in _requests(browser)
    assert any("Content Security Policy" in e["message"] for e in browser.get_log("browser"))
