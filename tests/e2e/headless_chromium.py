"""Debian's headless Chromium, driven over the DevTools protocol through a pipe.

``--remote-debugging-pipe`` makes Chromium read commands on fd 3 and write answers on fd 4,
each a JSON object ended by a NUL byte: no websocket library and no downloaded browser.

Every browser test finds Chromium through one rule (:func:`browser_decision`): run where it
is; where it is not (``make test`` installs it only as root with apt-get), skip with one line
saying why, except under CI (``CI=true``), where a missing browser is a failure.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import pytest

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


class ChromiumUnavailable(RuntimeError):
    """No Chromium here, or it would not start."""


def find_chromium() -> str | None:
    """``$CHROMIUM``, else Debian's chromium, else one on PATH; None if there is none."""
    for candidate in (
        os.environ.get("CHROMIUM"),
        *CHROMIUM_CANDIDATES,
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def chromium_path() -> str:
    executable = find_chromium()
    if executable is None:
        raise ChromiumUnavailable("chromium is not installed (apt-get install -y chromium)")
    return executable


@dataclass(frozen=True)
class BrowserDecision:
    """What a browser test does here: run, skip (saying why) or fail (under CI)."""

    action: Literal["run", "skip", "fail"]
    reason: str = ""


def browser_decision(
    executable: str | None,
    *,
    ci: bool,
    root: bool,
    apt_get: bool,
    start_error: str | None = None,
) -> BrowserDecision:
    """The rule every browser test follows (see the module's docstring)."""
    if executable is not None and start_error is None:
        return BrowserDecision("run")
    if start_error is not None:
        problem = f"chromium ({executable}) would not start: {start_error}"
    elif not root:
        problem = "chromium is not installed, and `make test` installs it only as root"
    elif not apt_get:
        problem = "chromium is not installed, and there is no apt-get here to install it"
    else:
        problem = "chromium is not installed: `make test` tried apt-get install chromium and it failed"
    if ci:
        return BrowserDecision("fail", f"{problem}; CI runs every browser test")
    return BrowserDecision("skip", f"browser tests skipped: {problem}")


def is_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require_chromium(start_error: str | None = None) -> str:
    """Chromium's path, or skip (fail under CI) the calling test with the rule's one line."""
    executable = find_chromium()
    decision = browser_decision(
        executable,
        ci=is_ci(),
        root=os.geteuid() == 0,
        apt_get=shutil.which("apt-get") is not None,
        start_error=start_error,
    )
    if decision.action == "fail":
        pytest.fail(decision.reason, pytrace=False)
    if decision.action == "skip":
        pytest.skip(decision.reason)
    assert executable is not None
    return executable


class Page:
    """One tab: navigate, read, fill in, click with the mouse, wait for the next page."""

    def __init__(self, browser: Browser, session: str) -> None:
        self._browser = browser
        self._session = session

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        return self._browser.send(method, params, self._session)

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def navigate(self, url: str) -> None:
        self._browser.drop_events("Page.loadEventFired")
        self.send("Page.navigate", url=url)
        self.wait_for_load()

    def wait_for_load(self, timeout: float = 15.0) -> None:
        self._browser.wait_event("Page.loadEventFired", self._session, timeout)

    def text(self, selector: str = "body") -> str:
        return str(self.evaluate(f"document.querySelector({json.dumps(selector)})?.innerText ?? ''"))

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element (pressed and released)."""
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.scrollIntoView();"
            " const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        x, y = box
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def type_into(self, selector: str, text: str) -> None:
        self.click(selector)
        self.send("Input.insertText", text=text)

    def set_viewport(self, width: int, height: int, mobile: bool = False) -> None:
        """The window as a desktop (``mobile`` False) or a phone (touch, device scale 3) sees it."""
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=3 if mobile else 1,
            mobile=mobile,
        )
        if mobile:
            self.send("Emulation.setTouchEmulationEnabled", enabled=True, maxTouchPoints=5)

    def watch_requests(self) -> None:
        """Record every request the page makes from now on (:meth:`requests`)."""
        self.send("Network.enable")

    def requests(self) -> list[str]:
        """The URLs of the requests the page made since :meth:`watch_requests`."""
        return self._browser.events_of("Network.requestWillBeSent", self._session, "request", "url")

    def screenshot(self, full_page: bool = True) -> bytes:
        """A PNG of the page (the whole page when ``full_page``, else the first viewport)."""
        result = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=full_page)
        return base64.b64decode(result["data"])

    def click_and_wait(self, selector: str) -> None:
        self._browser.drop_events("Page.loadEventFired")
        self.click(selector)
        self.wait_for_load()


class Browser:
    def __init__(self, process: subprocess.Popen[bytes], to_browser: int, from_browser: int) -> None:
        self._process = process
        self._out = to_browser
        self._in = from_browser
        self._next_id = 0
        self._buffer = b""
        self._events: list[dict[str, Any]] = []

    def _read_message(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._in], [], [], remaining)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._in, 1 << 16)
            if not chunk:
                raise ChromiumUnavailable("chromium closed its pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        parsed: dict[str, Any] = json.loads(message)
        return parsed

    def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        self._next_id += 1
        command: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            command["sessionId"] = session
        os.write(self._out, json.dumps(command).encode() + b"\0")
        while True:
            message = self._read_message(15.0)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self._events.append(message)

    def events_of(self, method: str, session: str, *path: str) -> list[Any]:
        """A field (``path``) of each event of ``method`` received so far for ``session``."""
        values = []
        for event in self._events:
            if event.get("method") == method and event.get("sessionId") == session:
                value: Any = event.get("params", {})
                for key in path:
                    value = value.get(key) if isinstance(value, dict) else None
                values.append(value)
        return values

    def drop_events(self, method: str) -> None:
        self._events = [e for e in self._events if e.get("method") != method]

    def wait_event(self, method: str, session: str | None, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for event in self._events:
                if event.get("method") == method and event.get("sessionId") == session:
                    self._events.remove(event)
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {method} within {timeout}s")
            self._events.append(self._read_message(remaining))

    def new_page(self) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        page.send("Page.enable")
        page.send("Runtime.enable")
        return page

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.send("Browser.close")
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)
        os.close(self._out)
        os.close(self._in)


@contextlib.contextmanager
def headless_chromium() -> Iterator[Browser]:
    """Start Debian's chromium headless with a throwaway profile; ChromiumUnavailable if it cannot."""
    executable = chromium_path()
    with tempfile.TemporaryDirectory(prefix="canaryfleet-chromium-") as profile:
        commands_read, commands_write = os.pipe()  # chromium reads fd 3
        answers_read, answers_write = os.pipe()  # chromium writes fd 4
        arguments = [
            executable,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--no-proxy-server",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]

        def child_fds() -> None:
            # Out of the way first (either may be fd 3 or 4), then onto 3 and 4, inheritable.
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (commands_read, answers_write)]
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        try:
            process = subprocess.Popen(  # a fixed local executable
                arguments,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                close_fds=False,  # only fds 3 and 4 are inheritable (PEP 446)
                preexec_fn=child_fds,  # noqa: PLW1509  # only dup2 before exec
            )
        except OSError as exc:
            raise ChromiumUnavailable(f"chromium would not start: {exc}") from None
        finally:
            os.close(commands_read)
            os.close(answers_write)
        browser = Browser(process, commands_write, answers_read)
        try:
            try:
                browser.send("Browser.getVersion")
            except (TimeoutError, ChromiumUnavailable) as exc:
                raise ChromiumUnavailable(f"chromium started but does not answer: {exc}") from None
            yield browser
        finally:
            browser.close()
