"""The drawing page in a real browser: Debian's chromium, headless, driven by chromedriver through selenium.

A running doodled (the debug build unless DOODLED says otherwise) serves the page; the test draws real drawings
from the shared data with pointer input (W3C actions: the browser's own pointer events) and reads the page:
the expected label among the guesses while the last stroke is still being drawn and after it, the game's
"Oh, I know, it's ...!", the page served from another origin (CORS), and the page and API behind HAProxy under a
path prefix. Screenshots go to Tests/Browser/out/.

    python3 -m pytest -q Tests/Browser        (scripts/test runs it after swift build)
"""
import gzip
import json
import os
import random
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.actions.pointer_input import PointerInput
from selenium.webdriver.common.actions import interaction
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "quickdraw"
OUT = ROOT / "Tests" / "Browser" / "out"
DOODLED = os.environ.get("DOODLED", str(ROOT / ".build" / "debug" / "doodled"))
CANVAS = 480  # the canvas's CSS size in the test window


def _listener_ports():
    """Ports below the kernel's ephemeral range, from a random start: no outgoing connection (chromium's,
    urllib's) can take one between the check and the listener's bind, as it can take a port bind(0) gave."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    first, last = (max(1024, low - 16384), low - 1) if low > 2048 else (1024, 65535)
    start = random.randint(first, last)
    for offset in range(last - first + 1):
        yield first + (start - first + offset) % (last - first + 1)


_PORTS = _listener_ports()


def free_port():
    """A port on 127.0.0.1 that can be bound now and that this module has not handed out before."""
    for port in _PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free TCP port on 127.0.0.1")


def wait_until_up(url, tries=200):
    """True once `url` answers (within tries x 50 ms)."""
    for _ in range(tries):
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def post(url, body):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def doodled():
    """A doodled with its HTTP listener; the page's other origin is allowed by CORS."""
    tcp, http, static = free_port(), free_port(), free_port()
    process = subprocess.Popen([DOODLED, "--listen", f"127.0.0.1:{tcp}", "--grpc-listen", "off",
                                "--http-listen", f"127.0.0.1:{http}", "--model", str(ROOT / "models" / "quickdraw-345"),
                                "--http-cors-origins", f"http://127.0.0.1:{static}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{http}/"
    if not wait_until_up(base + "readyz"):
        process.kill()
        pytest.fail("doodled did not become ready")
    yield {"base": base, "static_port": static}
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    options = Options()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1100,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)
    OUT.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def drawings():
    """Simplified drawings by label, in the file's order."""
    by_word = {}
    with gzip.open(DATA / "simplified.ndjson.gz", "rt") as f:
        for line in f:
            record = json.loads(line)
            by_word.setdefault(record["word"], []).append(record["drawing"])
    return by_word


def on_canvas(drawing):
    """The drawing's points in canvas CSS pixels: 0..255 mapped into the middle 80 % of the canvas, integers
    (what pointer events deliver)."""
    scale, offset = CANVAS * 0.8 / 255, CANVAS * 0.1
    return [[[round(offset + x * scale) for x in s[0]], [round(offset + y * scale) for y in s[1]]] for s in drawing]


def confident(base, words, count=1):
    """Drawings the server labels right, with a clear margin, when sent as the page will send them."""
    chosen = []
    all_drawings = drawings()
    for word in words:
        for d in all_drawings.get(word, []):
            strokes = on_canvas(d)
            answer = post(base + "v1/predict", {"drawing": strokes, "format": "raw", "top_k": 2})
            p = answer["predictions"]
            if p[0]["label"] == word and p[0]["score"] > 2 * p[1]["score"]:
                chosen.append((word, strokes))
                break
        if len(chosen) == count:
            break
    assert chosen, f"no drawing of {words} is recognised with a margin"
    return chosen


def stroke_actions(driver, canvas, strokes, release_last=True):
    """Pointer input for `strokes` on the canvas: move to each stroke's start, press, move through its points,
    release (the last one only if `release_last`)."""
    mouse = PointerInput(interaction.POINTER_MOUSE, "mouse")
    actions = ActionBuilder(driver, mouse=mouse, duration=15)
    for i, (xs, ys) in enumerate(strokes):
        # Offsets are from the element's centre.
        actions.pointer_action.move_to(canvas, xs[0] - CANVAS // 2, ys[0] - CANVAS // 2)
        actions.pointer_action.pointer_down()
        for x, y in zip(xs[1:], ys[1:]):
            actions.pointer_action.move_to(canvas, x - CANVAS // 2, y - CANVAS // 2)
        if i < len(strokes) - 1 or release_last:
            actions.pointer_action.pointer_up()
    return actions


def guesses(driver):
    """The labels the page shows, read in one go (the list is replaced as answers arrive)."""
    return driver.execute_script("return Array.from(document.querySelectorAll('#guesses li'), li => li.dataset.label)")


def open_page(driver, url):
    driver.get(url)
    canvas = driver.find_element(By.ID, "canvas")
    driver.execute_script(f"arguments[0].style.width = '{CANVAS}px'; window.dispatchEvent(new Event('resize'));", canvas)
    WebDriverWait(driver, 10).until(lambda d: "recognise" in d.find_element(By.ID, "model").text)
    return canvas


def test_guesses_while_drawing_and_after(doodled, browser):
    word, strokes = confident(doodled["base"], ["cat", "apple", "house", "fish", "star"])[0]
    canvas = open_page(browser, doodled["base"])
    # Everything but the last stroke's release: the pen is still down when we look.
    stroke_actions(browser, canvas, strokes, release_last=False).perform()
    WebDriverWait(browser, 10).until(lambda d: word in guesses(d))
    during = guesses(browser)
    requests_during = browser.execute_script("return window.doodle.requests")
    browser.save_screenshot(str(OUT / f"drawing-{word}-during.png"))
    ActionChains(browser).release().perform()
    WebDriverWait(browser, 10).until(lambda d: d.execute_script("return window.doodle.answers") > requests_during - 1
                                     and word in guesses(d))
    after = guesses(browser)
    browser.save_screenshot(str(OUT / f"drawing-{word}-after.png"))
    assert word in during and word in after, (during, after)
    assert requests_during >= len(strokes), "a request at each stroke's end at least"
    # Undo and clear.
    browser.find_element(By.ID, "clear").click()
    assert guesses(browser) == []


def test_game_mode_success_message(doodled, browser):
    word, strokes = confident(doodled["base"], ["apple", "star", "house", "cat"])[0]
    canvas = open_page(browser, doodled["base"] + f"?prompt={word}")
    browser.find_element(By.ID, "play").click()
    assert word in browser.find_element(By.ID, "prompt").text
    stroke_actions(browser, canvas, strokes).perform()
    WebDriverWait(browser, 15).until(lambda d: d.find_element(By.ID, "game-message").text)
    browser.save_screenshot(str(OUT / f"game-{word}.png"))
    assert browser.find_element(By.ID, "game-message").text == f"Oh, I know, it's {word}!"


def test_page_served_from_another_origin(doodled, browser, tmp_path):
    """The page's files on a plain static server on another port, calling doodled across origins (CORS)."""
    for name in ("", "app.js", "app.css"):
        with urllib.request.urlopen(doodled["base"] + name) as response:
            (tmp_path / (name or "index.html")).write_bytes(response.read())
    server = ThreadingHTTPServer(("127.0.0.1", doodled["static_port"]), partial(SimpleHTTPRequestHandler, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        word, strokes = confident(doodled["base"], ["star", "fish", "cat"])[0]
        canvas = open_page(browser, f"http://127.0.0.1:{doodled['static_port']}/index.html?server={doodled['base']}")
        stroke_actions(browser, canvas, strokes).perform()
        WebDriverWait(browser, 10).until(lambda d: word in guesses(d))
        browser.save_screenshot(str(OUT / "other-origin.png"))
    finally:
        server.shutdown()


def test_page_behind_haproxy_under_a_path_prefix(doodled, browser, tmp_path):
    """HAProxy in HTTP mode in front of doodled, the page at /doodle/: the page's relative URLs reach the API."""
    port = free_port()
    backend = doodled["base"].rstrip("/").split("//")[1]
    config = tmp_path / "haproxy.cfg"
    config.write_text(f"""global
    maxconn 256
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend web
    bind 127.0.0.1:{port}
    default_backend doodled
backend doodled
    http-request replace-path /doodle(/.*)? \\1
    server one {backend}
""")
    proxy = subprocess.Popen(["haproxy", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until_up(f"http://127.0.0.1:{port}/doodle/healthz"), "HAProxy did not come up"
        word, strokes = confident(doodled["base"], ["fish", "star", "cat"])[0]
        canvas = open_page(browser, f"http://127.0.0.1:{port}/doodle/")
        stroke_actions(browser, canvas, strokes).perform()
        WebDriverWait(browser, 10).until(lambda d: word in guesses(d))
        browser.save_screenshot(str(OUT / "behind-haproxy.png"))
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)
