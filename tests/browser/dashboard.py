#!/usr/bin/python3
"""Drives the decnet dashboard in headless Chromium (Debian's chromium + chromium-driver,
python3-selenium), against the `decnet up` that tests/dashboard_browser.rs started, while
that side attacks two real decky services whose events flow through the real pipeline.

Talks to the Rust side over stdin/stdout, one line each way:
  -> "ATTACK ssh <command>"  asks it to log in to the ssh decky as root and run <command>
  -> "ATTACK http <path>"    asks it to request <path> of the http decky with Basic auth
  <- "OK"                    the attack is done (its events are on their way, not stored)
  -> "SHOT <path>"           a screenshot was saved
  -> "PASS"                  every check held (the exit code says the same)
Anything else it prints is progress for the test log.
"""
import argparse
import os
import signal
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

# What the attacker types over ssh: markup that must stay text wherever it is shown.
MARKUP = "live-<img src=x onerror=window.__xss=1>-marker"
# A command typed while the live logs page tails the ssh events.
TAIL = "tail-marker"


def say(*words):
    print(*words, flush=True)


def attack(kind, what):
    say("ATTACK", kind, what)
    reply = sys.stdin.readline().strip()
    if reply != "OK":
        raise SystemExit(f"attack failed: {reply!r}")


def wait(driver, what, fn, timeout=25):
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.25).until(lambda d: fn(d))
    except TimeoutException:
        raise SystemExit(f"timed out waiting for {what}")


def text(driver, css):
    els = driver.find_elements(By.CSS_SELECTOR, css)
    return els[0].text if els else ""


def number(s):
    digits = "".join(c for c in s if c.isdigit())
    return int(digits) if digits else -1


class Run:
    def __init__(self, args):
        self.args = args
        opts = webdriver.ChromeOptions()
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--window-size=1440,960", "--force-device-scale-factor=1",
                  "--disable-extensions", "--no-first-run", "--password-store=basic"):
            opts.add_argument(a)
        opts.binary_location = args.chromium
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = Service(executable_path=args.driver)
        self.d = webdriver.Chrome(options=opts, service=service)
        # The Rust side sends SIGTERM when it gives up; quit so no browser outlives the test.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated by the test"))
        self.d.set_page_load_timeout(30)
        self.errors = []
        os.makedirs(args.shots, exist_ok=True)

    def collect_console(self):
        for entry in self.d.get_log("browser"):
            if entry.get("level") != "SEVERE":
                continue
            msg = entry.get("message", "")
            unhealthy = "/api/v1/health" in msg and "503" in msg
            # The test's own wrong password, on purpose.
            refused = "/api/v1/auth/login" in msg and "401" in msg
            if not (unhealthy or refused):
                self.errors.append(msg)

    def shot(self, name):
        # Let animations (row highlight, counter flash) settle so the picture is stable.
        time.sleep(0.4)
        theme = self.d.execute_script("return document.documentElement.dataset.theme")
        path = os.path.join(self.args.shots, f"{name}-{theme}.png")
        self.d.save_screenshot(path)
        say("SHOT", path)

    def both_themes(self, name):
        self.shot(name)
        self.toggle_theme()
        self.shot(name)
        self.toggle_theme()

    def toggle_theme(self):
        before = self.d.execute_script("return document.documentElement.dataset.theme")
        self.d.find_element(By.ID, "theme-toggle").click()
        after = self.d.execute_script("return document.documentElement.dataset.theme")
        if {before, after} != {"dark", "light"}:
            raise SystemExit(f"theme toggle went {before} -> {after}")

    def nav(self, route, ready_css):
        self.d.find_element(By.CSS_SELECTOR, f'a[data-nav="{route}"]').click()
        wait(self.d, f"page {route}", lambda d: d.find_elements(By.CSS_SELECTOR, ready_css))
        wait(self.d, f"{route} loaded", lambda d: not d.find_elements(By.XPATH, "//*[text()='Loading…']"))

    def login(self):
        d = self.d
        d.get(self.args.url + "/")
        wait(d, "login form", lambda d: d.find_elements(By.ID, "login-submit"))
        self.both_themes("01-login")
        d.find_element(By.ID, "username").clear()
        d.find_element(By.ID, "username").send_keys("admin")
        d.find_element(By.ID, "password").send_keys("wrong-password-123")
        d.find_element(By.ID, "login-submit").click()
        wait(d, "login error", lambda d: "Incorrect" in text(d, ".error"))
        d.find_element(By.ID, "password").clear()
        d.find_element(By.ID, "password").send_keys(self.args.password)
        d.find_element(By.ID, "login-submit").click()
        wait(d, "forced password change", lambda d: d.find_elements(By.ID, "new-password"))
        self.both_themes("02-change-password")
        d.find_element(By.ID, "new-password").send_keys(self.args.new_password)
        d.find_element(By.ID, "confirm-password").send_keys(self.args.new_password)
        d.find_element(By.ID, "change-submit").click()
        wait(d, "overview", lambda d: d.find_elements(By.ID, "stat-total_logs"))
        token = d.execute_script("return localStorage.getItem('token')")
        if not token:
            raise SystemExit("no token stored after login")

    def overview_updates_live(self):
        d = self.d
        wait(d, "initial stats", lambda d: number(text(d, "#stat-total_logs")) >= 0)
        before = number(text(d, "#stat-total_logs"))
        # Where the panels sit; live data must not move them.
        layout = ("return [...document.querySelectorAll('.page > *, .page .panel')]"
                  ".map(e => { const r = e.getBoundingClientRect(); return [r.top, r.height]; })")
        placed = d.execute_script(layout)
        say("overview shows", before, "events; mode", d.find_element(By.ID, "live-mode").text)
        # A command an attacker types: markup in it must stay text.
        attack("ssh", f"echo '{MARKUP}'")
        wait(d, "counter to rise", lambda d: number(text(d, "#stat-total_logs")) > before, timeout=30)
        wait(d, "feed to show the attacker's command", lambda d: MARKUP in text(d, "#feed"), timeout=30)
        if d.execute_script("return window.__xss === 1 || document.querySelectorAll('#feed img').length > 0"):
            raise SystemExit("attacker markup was rendered as HTML")
        seen = number(text(d, "#stat-total_logs"))
        attack("http", "/admin/login.php")
        wait(d, "counter to count the http request", lambda d: number(text(d, "#stat-total_logs")) > seen, timeout=30)
        if d.execute_script(layout) != placed:
            raise SystemExit("the overview's layout moved when live data arrived")
        rows = len(d.find_elements(By.CSS_SELECTOR, "#feed .feed-row"))
        say("overview updated live:", number(text(d, "#stat-total_logs")), "events,", rows, "feed rows")
        self.both_themes("03-overview")

    def live_logs(self):
        d = self.d
        self.nav("/logs", "#log-search")
        body = d.find_element(By.TAG_NAME, "body")
        body.send_keys("/")
        if d.switch_to.active_element.get_attribute("id") != "log-search":
            raise SystemExit("'/' did not focus the search")
        box = d.switch_to.active_element
        box.send_keys("service:ssh", Keys.ENTER)
        # Read the cells in one script call: the table is replaced when the search answers.
        cells = "return [...document.querySelectorAll('tbody td:nth-child(3)')].map(e => e.textContent)"
        wait(d, "only ssh rows after searching service:ssh", lambda d: set(d.execute_script(cells)) == {"ssh"})
        say("search service:ssh:", text(d, "#log-total"))
        attack("ssh", f"echo {TAIL}")
        wait(d, "live tail rows", lambda d: TAIL in text(d, "tbody"), timeout=30)
        d.find_element(By.CSS_SELECTOR, "tbody tr.clickable").click()
        wait(d, "row detail", lambda d: d.find_elements(By.CSS_SELECTOR, "tr.detail pre.json"))
        self.both_themes("04-live-logs")

    def tab(self, label, what, fn):
        d = self.d
        d.find_element(By.XPATH, f"//div[@class='tabs']/button[text()='{label}']").click()
        wait(d, what, fn, timeout=30)

    def attackers(self):
        d = self.d
        self.nav("/attackers", "#attacker-search")
        row = "//tbody/tr[contains(@class, 'clickable')][.//td[text()='127.0.0.1'] or .//span[text()='127.0.0.1']]"
        wait(d, "the attacker listed", lambda d: d.find_elements(By.XPATH, row), timeout=30)
        self.both_themes("05-attackers")
        d.find_element(By.XPATH, row).click()
        wait(d, "attacker detail", lambda d: text(d, "#attacker-ip") == "127.0.0.1")
        wait(d, "timeline", lambda d: TAIL in text(d, ".tabs + div"), timeout=30)
        self.both_themes("06-attacker-detail")
        creds = lambda d: all(s in text(d, ".tabs + div tbody") for s in ("root", self.args.ssh_password, self.args.web_user))
        self.tab("Credentials", "the ssh and http credentials", creds)
        self.both_themes("07-attacker-credentials")
        cmds = lambda d: all(s in text(d, ".tabs + div tbody") for s in (MARKUP, f"echo {TAIL}", "uname -a"))
        self.tab("Commands", "the commands typed over ssh", cmds)
        if d.execute_script("return window.__xss === 1 || document.querySelectorAll('.tabs + div img').length > 0"):
            raise SystemExit("attacker markup was rendered as HTML")
        self.both_themes("08-attacker-commands")

    def swarm(self):
        # `decnet up` enrols this host as `local`; its agent heartbeats over loopback mTLS.
        d = self.d
        self.nav("/swarm", "#enrol-submit")
        wait(d, "the local host active", lambda d: "local" in text(d, "#swarm-hosts") and "active" in text(d, "#swarm-hosts"))
        d.find_element(By.ID, "enrol-name").send_keys("browser-w1")
        d.find_element(By.ID, "enrol-submit").click()
        command = lambda d: (d.find_elements(By.ID, "enrol-command") or [None])[0]
        wait(d, "the one-liner", lambda d: command(d) is not None
             and command(d).get_attribute("value").startswith("curl -fsSL http://")
             and command(d).get_attribute("value").endswith(".sh | sudo sh"))
        wait(d, "the new worker listed", lambda d: d.find_elements(By.CSS_SELECTOR, '[data-decommission="browser-w1"]'))
        self.both_themes("12-swarm")
        d.find_element(By.CSS_SELECTOR, '[data-decommission="browser-w1"]').click()
        wait(d, "the confirmation", lambda d: d.find_elements(By.CSS_SELECTOR, "dialog[open] button.danger"))
        d.find_element(By.CSS_SELECTOR, "dialog[open] button.danger").click()
        wait(d, "the worker decommissioned", lambda d: not d.find_elements(By.CSS_SELECTOR, '[data-decommission="browser-w1"]'))

    def simple(self, route, ready, name):
        self.nav(route, ready)
        self.both_themes(name)

    def keyboard(self):
        d = self.d
        body = d.find_element(By.TAG_NAME, "body")
        body.send_keys("g")
        body.send_keys("o")
        wait(d, "g o to overview", lambda d: d.find_elements(By.ID, "stat-total_logs"))

    def run(self):
        try:
            self.login()
            self.overview_updates_live()
            self.live_logs()
            self.attackers()
            self.simple("/credentials", "#credential-search", "09-credentials")
            self.simple("/bounty", "#bounty-search", "10-bounty")
            self.simple("/fleet", "#decky-cards", "11-fleet")
            self.swarm()
            self.nav("/config", ".settings")
            wait(self.d, "users table", lambda d: "admin" in text(d, "tbody"))
            self.both_themes("13-users-config")
            self.keyboard()
            self.d.set_window_size(420, 900)
            self.shot("14-overview-narrow")
            self.collect_console()
        finally:
            self.d.quit()
        if self.errors:
            raise SystemExit("console errors:\n" + "\n".join(self.errors))
        say("PASS")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--new-password", required=True)
    p.add_argument("--web-user", required=True)
    p.add_argument("--ssh-password", required=True)
    p.add_argument("--shots", required=True)
    p.add_argument("--chromium", default="/usr/bin/chromium")
    p.add_argument("--driver", default="/usr/bin/chromedriver")
    Run(p.parse_args()).run()


if __name__ == "__main__":
    main()
