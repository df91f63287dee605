#!/usr/bin/env python3
"""Drives the approvals page in headless Chromium (Debian's chromium and chromium-driver, through
Selenium), as an approver would: opens PATH, logs in on the real OIDC provider's login page by
typing SUBJECT, then decides on an approval with a reason.

usage: approvals_page.py BASE SUBJECT [--path /approvals] [--approval ID] [--start CMD]
                         [--verdict approve|deny] [--reason TEXT]
--start: a shell command run once the page is open (a psql whose statement is then held): the
script waits for its request to appear on the page without a reload, and reports its exit.
Prints one JSON object: what the page showed, what the decision answered."""
import argparse
import json
import subprocess
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait


def browser():
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                 "--disable-extensions", "--window-size=1280,1024"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("base")
    p.add_argument("subject")
    p.add_argument("--path", default="/approvals")
    p.add_argument("--approval")
    p.add_argument("--start")
    p.add_argument("--verdict", choices=["approve", "deny"])
    p.add_argument("--reason", default="")
    a = p.parse_args()
    report = {}
    driver = browser()
    started = None
    try:
        wait = WebDriverWait(driver, 30)
        driver.get(a.base + a.path)
        # Not logged in: the page sent us to the provider's login form.
        login = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "input[name=sub]")))
        report["login_page"] = driver.current_url.split("?")[0]
        login.send_keys(a.subject)
        login.send_keys(Keys.RETURN)
        wait.until(lambda d: d.current_url.startswith(a.base) and d.find_elements(By.TAG_NAME, "main"))
        report["after_login"] = driver.current_url[len(a.base):]
        report["title"] = driver.title
        report["signed_in_as"] = driver.find_element(By.CSS_SELECTOR, "header").text
        if a.start:
            # The page stays as it is; the script's polling must bring the new request in.
            driver.execute_script("window.__notReloaded = true;")
            started = subprocess.Popen(a.start, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            article = WebDriverWait(driver, 60).until(
                EC.presence_of_element_located((By.CSS_SELECTOR, "#pending article.approval")))
            report["appeared_without_reload"] = driver.execute_script("return window.__notReloaded === true;")
            a.approval = article.get_attribute("id")[len("approval-"):]
            report["approval"] = a.approval
        if a.approval:
            article = wait.until(EC.presence_of_element_located((By.ID, "approval-" + a.approval)))
            report["statement"] = article.find_element(By.CSS_SELECTOR, "pre.sql").text
            report["keywords"] = [e.text for e in article.find_elements(By.CSS_SELECTOR, "pre.sql .kw")]
            report["scripts_in_statement"] = len(article.find_elements(By.CSS_SELECTOR, "pre.sql script"))
            report["subject"] = article.find_element(By.CSS_SELECTOR, ".subject").text
            report["rule"] = article.find_element(By.CSS_SELECTOR, ".rule").text
            report["requirement"] = article.find_element(By.CSS_SELECTOR, ".requirement").text
            report["time_left"] = article.find_element(By.CSS_SELECTOR, ".time-left").text
            report["context"] = " | ".join(e.text for e in article.find_elements(By.CSS_SELECTOR, "details.context li"))
            forms = article.find_elements(By.CSS_SELECTOR, "form.decide")
            report["has_form"] = bool(forms)
            report["note"] = " ".join(e.text for e in article.find_elements(By.CSS_SELECTOR, ".note"))
        if a.verdict and a.approval:
            reason = driver.find_element(By.ID, "reason-" + a.approval)
            # The label names the field (accessibility: a labelled input).
            report["reason_label"] = driver.find_element(By.CSS_SELECTOR, f"label[for='reason-{a.approval}']").text
            reason.send_keys(a.reason)
            driver.find_element(By.CSS_SELECTOR, f"#approval-{a.approval} button[value={a.verdict}]").click()
            flash = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".flash, .message")))
            report["answer"] = flash.text
            report["after_decision"] = driver.current_url[len(a.base):]
            report["recent"] = driver.find_element(By.ID, "recent-title").find_element(By.XPATH, "..").text
        if started:
            out, err = started.communicate(timeout=60)
            report["command"] = {"status": started.returncode, "stdout": out, "stderr": err}
    except TimeoutException as e:
        report["error"] = f"timed out at {driver.current_url}: {e.msg}"
        report["page"] = driver.page_source[:4000]
    finally:
        driver.quit()
        if started and started.poll() is None:
            started.kill()
    print(json.dumps(report))
    return 0 if "error" not in report else 1


if __name__ == "__main__":
    sys.exit(main())
