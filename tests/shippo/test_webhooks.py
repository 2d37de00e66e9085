"""The carrier's side: moving a parcel posts Shippo's `track_updated` webhook (body checked
against WebhookPayloadTrack and decoded by the SDK's Track model), resends, out-of-order
reports, and the transaction webhooks."""

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from shippo import utils
from shippo.models import components

from conftest import shipment_body, validate


@pytest.fixture
def hook(api, receiver):
    """The receiver registered as the stand-in's webhook, with its `?token=`."""
    registered = api.ok("POST", "/_control/webhooks",
                        {"url": receiver.url + "/api/shipping/shippo/webhook?token=t0k",
                         "id": uuid.uuid4().hex})
    yield registered
    api.call("DELETE", "/_control/webhooks/" + registered["id"])


def fresh_number():
    return "9400" + str(uuid.uuid4().int)[:18]


def test_moving_a_parcel_posts_track_updated_as_shippo_does(api, receiver, hook, ref):
    _, transaction = api.buy(ref)
    number = transaction["tracking_number"]
    # After the label's PRE_TRANSIT (stamped now), in whole seconds as carriers report.
    delivered_at = (datetime.now(timezone.utc) + timedelta(minutes=5)).replace(microsecond=0)
    moved = api.ok("POST", "/_control/tracks/usps/" + number, {
        "status": "DELIVERED", "status_date": delivered_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "status_details": "Delivered, In/At Mailbox",
        "location": {"city": "New York", "state": "NY", "zip": "10001", "country": "US"}})

    (request,) = receiver.wait_for(1)
    assert request["path"] == "/api/shipping/shippo/webhook?token=t0k"
    assert request["content_type"] == "application/json"
    body = request["body"]
    validate("WebhookPayloadTrack", body)
    assert body["event"] == "track_updated" and body["test"] is True
    assert body == moved["webhook"]
    assert moved["deliveries"] == [{"url": hook["url"], "status": 200}]

    track = utils.unmarshal_json(json.dumps(body["data"]), components.Track)
    assert track.tracking_number == number and track.carrier == "usps"
    assert track.transaction == transaction["object_id"] and track.metadata == ref
    assert track.tracking_status.status == components.TrackingStatusEnum.DELIVERED
    assert track.tracking_status.status_details == "Delivered, In/At Mailbox"
    assert track.tracking_status.status_date == delivered_at
    assert [s.status.value for s in track.tracking_history] == ["PRE_TRANSIT", "DELIVERED"]

    # What the API reads back is what the webhook said, and the label follows it.
    assert api.ok("GET", "/tracks/usps/" + number) == body["data"]
    assert api.ok("GET", "/transactions/" + transaction["object_id"])["tracking_status"] == "DELIVERED"


def test_a_resend_posts_the_same_body_again(api, receiver, hook):
    number = fresh_number()
    first = api.ok("POST", "/_control/tracks/usps/%s" % number, {"status": "TRANSIT"})
    again = api.ok("POST", "/_control/tracks/usps/%s/resend" % number, {})

    one, two = receiver.wait_for(2)
    assert one["body"] == two["body"] == first["webhook"] == again["webhook"]
    assert len(api.ok("GET", "/tracks/usps/" + number)["tracking_history"]) == 1


def test_a_late_report_is_the_current_status_with_its_older_date(api, hook):
    number = fresh_number()
    api.ok("POST", "/_control/tracks/usps/" + number,
           {"status": "DELIVERED", "status_date": "2026-12-03T18:00:00Z"})
    api.ok("POST", "/_control/tracks/usps/" + number,
           {"status": "TRANSIT", "status_date": "2026-12-02T09:00:00Z"})

    track = api.ok("GET", "/tracks/usps/" + number)
    validate("Track", track)
    assert (track["tracking_status"]["status"], track["tracking_status"]["status_date"]) == \
        ("TRANSIT", "2026-12-02T09:00:00Z")
    assert [(s["status"], s["status_date"]) for s in track["tracking_history"]] == [
        ("TRANSIT", "2026-12-02T09:00:00Z"), ("DELIVERED", "2026-12-03T18:00:00Z")]


def test_webhook_url_sends_to_that_url_only_and_deliver_false_sends_nothing(api, receiver, ref):
    other = type(receiver)()
    try:
        registered = api.ok("POST", "/_control/webhooks", {"url": other.url + "/registered"})
        number = fresh_number()
        targeted = api.ok("POST", "/_control/tracks/ups/" + number,
                          {"status": "TRANSIT", "webhook_url": receiver.url + "/mine"})
        assert [d["url"] for d in targeted["deliveries"]] == [receiver.url + "/mine"]
        assert receiver.wait_for(1)[0]["body"]["data"]["carrier"] == "ups"

        silent = api.ok("POST", "/_control/tracks/ups/" + number,
                        {"status": "DELIVERED", "deliver": False})
        assert silent["deliveries"] == []
        validate("WebhookPayloadTrack", silent["webhook"])
        assert api.ok("GET", "/tracks/ups/" + number)["tracking_status"]["status"] == "DELIVERED"
        assert other.requests == [] and len(receiver.requests) == 1
        api.ok("DELETE", "/_control/webhooks/" + registered["id"])
    finally:
        other.server.shutdown()
        other.server.server_close()


def test_a_failing_or_unreachable_receiver_is_reported_not_retried(api, receiver):
    receiver.status = 500
    number = fresh_number()
    moved = api.ok("POST", "/_control/tracks/usps/" + number, {
        "status": "FAILURE", "webhook_url": receiver.url + "/x"})
    assert moved["deliveries"] == [{"url": receiver.url + "/x", "status": 500}]
    assert len(receiver.wait_for(1)) == 1

    gone = api.ok("POST", "/_control/tracks/usps/" + number, {
        "status": "RETURNED", "webhook_url": "http://127.0.0.1:9/nobody"})
    assert "error" in gone["deliveries"][0]


def test_transaction_webhooks_when_asked_for(api, receiver, ref):
    registered = api.ok("POST", "/_control/webhooks", {
        "url": receiver.url + "/tx", "events": ["transaction_created", "transaction_updated"]})
    try:
        _, transaction = api.buy(ref)
        created = receiver.wait_for(1)[0]["body"]
        validate("WebhookPayloadTransaction", created)
        assert created["event"] == "transaction_created"
        assert created["data"]["object_id"] == transaction["object_id"]

        api.ok("POST", "/refunds", {"transaction": transaction["object_id"], "async": False})
        updated = receiver.wait_for(2)[1]["body"]
        validate("WebhookPayloadTransaction", updated)
        assert updated["event"] == "transaction_updated" and updated["data"]["status"] == "REFUNDED"

        # An answer lost on the way back (a fault "after") still sends Shippo's webhook.
        quoted = api.ok("POST", "/shipments", shipment_body(ref))
        api.ok("POST", "/_control/faults", {"path": "/transactions", "contains": ref,
                                            "status": 502, "when": "after"})
        assert api.call("POST", "/transactions", {"rate": quoted["rates"][0]["object_id"],
                                                  "async": False, "metadata": ref})[0] == 502
        lost = receiver.wait_for(3)[2]["body"]
        assert lost["event"] == "transaction_created" and lost["data"]["metadata"] == ref
    finally:
        api.ok("DELETE", "/_control/webhooks/" + registered["id"])


@pytest.mark.parametrize("path, body, status", [
    ("/_control/tracks/usps/1", {"status": "LOST"}, 400),
    ("/_control/tracks/usps/1", {"status": "TRANSIT", "status_date": "soon"}, 400),
    ("/_control/tracks/pony/1", {"status": "TRANSIT"}, 400),
    ("/_control/tracks/shippo/SHIPPO_TRANSIT", {"status": "DELIVERED"}, 409),
    ("/_control/tracks/usps/never-moved/resend", {}, 404),
    ("/_control/webhooks", {"url": "ftp://x"}, 400),
    ("/_control/webhooks", {"url": "http://x", "events": ["all_the_things"]}, 400),
])
def test_bad_control_calls_are_refused(api, path, body, status):
    assert api.call("POST", path, body, token=None)[0] == status
