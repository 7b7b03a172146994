"""A W3C WebDriver client in the standard library: chromedriver (Debian's chromium-driver)
started on a free port, Debian's chromium headless behind it, talked to with urllib."""

import base64
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


def available():
    return bool(shutil.which(CHROMEDRIVER) and shutil.which(CHROMIUM))


class WebDriverError(Exception):
    pass


class Browser:
    def __init__(self, profile_dir, width=1280, height=800):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"
        self.driver = subprocess.Popen([CHROMEDRIVER, f"--port={port}"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.call("GET", "/status").get("ready"):
                    break
            except (OSError, WebDriverError):
                pass
            if time.monotonic() > deadline:
                self.driver.kill()
                raise WebDriverError("chromedriver did not start")
            time.sleep(0.1)
        options = {"binary": CHROMIUM,
                   "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                            "--disable-dev-shm-usage", f"--user-data-dir={profile_dir}",
                            f"--window-size={width},{height}"]}
        session = self.call("POST", "/session", {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": options}}})
        self.session = f"/session/{session['sessionId']}"

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return json.load(answer)["value"]
        except urllib.error.HTTPError as err:
            value = json.load(err).get("value", {})
            raise WebDriverError(f"{value.get('error')}: {value.get('message')}") from None

    def __call__(self, method, path, body=None):
        return self.call(method, self.session + path, body)

    def open(self, url):
        self("POST", "/url", {"url": url})

    def find_all(self, css, within=None):
        path = f"/element/{within}/elements" if within else "/elements"
        return [e[ELEMENT] for e in self("POST", path, {"using": "css selector", "value": css})]

    def find(self, css):
        return self("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]

    def attribute(self, element, name):
        return self("GET", f"/element/{element}/attribute/{name}")

    def text(self, element):
        return self("GET", f"/element/{element}/text")

    def click(self, element):
        self("POST", f"/element/{element}/click", {})

    def script(self, source, *args):
        return self("POST", "/execute/sync", {"script": source, "args": list(args)})

    def alert_text(self):
        """The text of an open alert, or None."""
        try:
            return self("GET", "/alert/text")
        except WebDriverError:
            return None

    def screenshot(self):
        return base64.b64decode(self("GET", "/screenshot"))

    def quit(self):
        try:
            self("DELETE", "")
        except (OSError, WebDriverError):
            pass
        self.driver.terminate()
        try:
            self.driver.wait(10)
        except subprocess.TimeoutExpired:
            self.driver.kill()
            self.driver.wait()
