"""Fixtures of the Shippo stand-in's contract tests (run by scripts/shippo_contract.sh).

The stand-in under test is SHIPPO_STANDIN_URL when set (the script starts one on a free
port), else one started here. Never SHIPPO_API_URL: that may be the real Shippo.
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema
import pytest
import shippo

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((Path(__file__).parent / "shippo.schema.json").read_text())
TOKEN = "shippo_test_contract_tests"
DEADLINE_SECONDS = 10

WAREHOUSE = {
    "name": "Orders Warehouse", "street1": "215 Clayton St.", "city": "San Francisco",
    "state": "CA", "zip": "94117", "country": "US",
}
PARCEL = {"length": "10", "width": "8", "height": "4", "distance_unit": "in",
          "weight": "2", "mass_unit": "lb"}


def customer(zip_code="10001"):
    return {"name": "Ada Buyer", "street1": "350 5th Ave", "city": "New York",
            "state": "NY", "zip": zip_code, "country": "US"}


def shipment_body(metadata, zip_code="10001", is_return=False):
    body = {"address_from": WAREHOUSE, "address_to": customer(zip_code), "parcels": [PARCEL],
            "async": False, "metadata": metadata}
    if is_return:
        body["extra"] = {"is_return": True}
    return body


def validate(name, instance):
    """Validates `instance` against $defs/name of tests/shippo/shippo.schema.json."""
    schema = {"$schema": SCHEMA["$schema"], "$defs": SCHEMA["$defs"], "$ref": "#/$defs/" + name}
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    assert not errors, "not a Shippo %s:\n%s" % (
        name, "\n".join("%s: %s" % (list(e.absolute_path), e.message) for e in errors[:10]))


def is_valid(name, instance):
    try:
        validate(name, instance)
    except AssertionError:
        return False
    return True


class Api:
    """Plain HTTP to the stand-in, for what the SDK cannot decode and for control routes."""

    def __init__(self, url):
        self.url = url

    def call(self, method, path, body=None, token=TOKEN, raw=False):
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = "ShippoToken " + token
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=DEADLINE_SECONDS) as response:
                status, content, kind = response.status, response.read(), response.headers.get("Content-Type")
        except urllib.error.HTTPError as answered:
            status, content, kind = answered.code, answered.read(), answered.headers.get("Content-Type")
        if raw:
            return status, content, kind
        return status, json.loads(content)

    def ok(self, method, path, body=None, expect=(200, 201)):
        status, answer = self.call(method, path, body)
        assert status in expect, (status, answer)
        return answer

    def buy(self, metadata, **shipment):
        """Rates, then a label for the cheapest rate (async: false): (shipment, transaction)."""
        quoted = self.ok("POST", "/shipments/", shipment_body(metadata, **shipment))
        rate = next(r for r in quoted["rates"] if "CHEAPEST" in r["attributes"])
        transaction = self.ok("POST", "/transactions/",
                              {"rate": rate["object_id"], "async": False, "metadata": metadata})
        return quoted, transaction

    def labels(self, metadata):
        return self.ok("GET", "/_control/labels?metadata=" + urllib.request.quote(metadata))


@pytest.fixture(scope="session")
def standin_url():
    given = os.environ.get("SHIPPO_STANDIN_URL")
    if given:
        yield given.rstrip("/")
        return
    with tempfile.TemporaryDirectory() as work:
        ready = os.path.join(work, "url")
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "shippo_standin.py"), "--port", "0",
             "--ready-file", ready, "--exit-with-parent"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            waited = subprocess.run(
                [sys.executable, str(ROOT / "scripts" / "shippo_standin.py"), "--wait",
                 "--ready-file", ready, "--pid", str(process.pid), "--timeout", "30"],
                capture_output=True, text=True, check=True)
            yield waited.stdout.strip()
        finally:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture
def api(standin_url):
    return Api(standin_url)


@pytest.fixture
def sdk(standin_url):
    return shippo.Shippo(api_key_header="ShippoToken " + TOKEN, server_url=standin_url)


@pytest.fixture
def ref():
    """Metadata unique to one test, as the Orders service puts its ids in metadata."""
    return "order %s" % uuid.uuid4().hex[:12]


class Receiver:
    """Where the stand-in posts webhooks: records each request, answers `status`."""

    def __init__(self):
        self.requests = []
        self.status = 200
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.changed:
                    receiver.requests.append({
                        "path": self.path,
                        "content_type": self.headers.get("Content-Type"),
                        "body": json.loads(body),
                    })
                    receiver.changed.notify_all()
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count):
        """The first `count` requests, waiting up to a deadline for them to arrive."""
        deadline = time.monotonic() + DEADLINE_SECONDS
        with self.changed:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                assert left > 0, "only %d of %d webhooks arrived" % (len(self.requests), count)
                self.changed.wait(left)
            return list(self.requests[:count])


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()
