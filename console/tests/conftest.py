"""Fixtures of the console's browser tests: the stack that scripts/console_test.sh
started (a make dev stack on free ports), headless Debian Chromium driven by Playwright,
axe-core for the accessibility checks, and helpers that arrange orders through the API
and the emulator as a shop's checkout would."""

import base64
import hashlib
import hmac
import json
import os
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest
from playwright.sync_api import sync_playwright

BASE = os.environ.get("CONSOLE_BASE_URL", "")
STRIPE = os.environ.get("STRIPE_API_BASE", "")
SHOTS = Path(os.environ.get("CONSOLE_SCREENSHOTS", "target/console-screenshots"))
AXE_JS = os.environ.get("AXE_JS", ".cache/console/node_modules/axe-core/axe.min.js")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# make dev's defaults (README, "Settings").
JWT_SECRET = os.environ.get("JWT_SECRET", "orders-local-dev-secret-change-me")
CARTS_TABLE = os.environ.get("CARTS_TABLE", "carts")
STRIPE_KEY = "sk_test_orders_local"

ADDRESS = {
    "name": "Jane Doe",
    "address": "123 Main St",
    "city": "New York",
    "state": "NY",
    "zip": "10001",
    "country": "US",
}
DEMO_LINES = [("p001", "USB Cable", 2, "10.00"), ("p002", "Keyboard", 1, "55.00")]


def pytest_configure(config):
    if not BASE:
        raise pytest.UsageError("run these tests with scripts/console_test.sh (it starts the stack)")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(sub: str, scope: str = "", ttl: float = 3600) -> str:
    """An HS256 token as make dev prints them, for any caller."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    now = int(time.time())
    claims = {"sub": sub, "iat": now, "exp": now + int(ttl)}
    if scope:
        claims["scope"] = scope
    payload = _b64(json.dumps(claims).encode())
    signature = hmac.new(JWT_SECRET.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def api(method: str, path: str, token: str, body=None, headers=None):
    """One API call: (status, headers, JSON body or None)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
            return response.status, response.headers, (json.loads(text) if text else None)
    except urllib.error.HTTPError as error:
        text = error.read()
        return error.code, error.headers, (json.loads(text) if text else None)


def wait_for(check, what: str, timeout: float = 60):
    """Polls `check` until it answers something truthy, or fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.25)


def put_cart(cart_id: str, user_id: str, lines=DEMO_LINES, currency="USD"):
    """A cart in the carts table, as the Shopping Cart API's store holds it."""
    client = boto3.client("dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    client.put_item(
        TableName=CARTS_TABLE,
        Item={
            "cart_id": {"S": cart_id},
            "user_id": {"S": user_id},
            "currency": {"S": currency},
            "items": {
                "L": [
                    {
                        "M": {
                            "product_id": {"S": product_id},
                            "name": {"S": name},
                            "quantity": {"N": str(quantity)},
                            "price": {"N": price},
                        }
                    }
                    for product_id, name, quantity, price in lines
                ]
            },
        },
    )


class Shop:
    """Orders placed the way a checkout places them, each by a customer of its own (the
    create limit is per caller)."""

    admin = os.environ.get("ADMIN_TOKEN") or mint("admin", "orders:admin")

    def place(self, lines=DEMO_LINES, payment_method="bank_transfer"):
        """Places an order; answers (order_id, customer token, payment or None)."""
        user = f"u-{uuid.uuid4().hex[:10]}"
        cart = f"cart-{uuid.uuid4().hex[:10]}"
        put_cart(cart, user, lines)
        token = mint(user)
        status, _, body = api(
            "POST",
            "/api/orders",
            token,
            {"cart_id": cart, "payment_method": payment_method, "shipping_address": ADDRESS},
            {"Idempotency-Key": cart},
        )
        assert status == 201, body
        return body["order_id"], token, body.get("payment")

    def order(self, order_id):
        status, headers, body = api("GET", f"/api/orders/{order_id}", self.admin)
        assert status == 200, body
        return body

    def pay(self, order_id, payment):
        """The customer pays by card at localstripe; its signed event confirms the order."""
        intent = payment["intent_id"]
        auth = "Basic " + base64.b64encode(f"{STRIPE_KEY}:".encode()).decode()
        for path, data in ((f"/v1/payment_intents/{intent}", b"payment_method=pm_card_visa"),
                           (f"/v1/payment_intents/{intent}/confirm", b"")):
            request = urllib.request.Request(STRIPE + path, data=data, method="POST")
            request.add_header("Authorization", auth)
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 200
        return wait_for(
            lambda: (o := self.order(order_id))["payment_status"] == "paid" and o,
            f"{order_id} to be paid",
        )


@pytest.fixture(scope="session")
def shop():
    return Shop()


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            # This machine's network is closed: no background connections.
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh tab (no session). Records every JavaScript dialog (alert, confirm…) and
    every script error or CSP violation, which must never happen."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US", timezone_id="UTC")
    # axe-core as an init script: it runs beside the page's own, past its CSP (which
    # would refuse an injected <script>).
    context.add_init_script(path=AXE_JS)
    page = context.new_page()
    page.js_dialogs = []
    page.problems = []

    def on_dialog(dialog):
        page.js_dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: "Content Security Policy" in message.text
        and page.problems.append(f"CSP: {message.text}"),
    )
    yield page
    context.close()
    assert page.problems == [], page.problems
