#!/usr/bin/env python3
"""A Shippo stand-in for `make dev` and `make test`: the subset of Shippo's API the Orders
service uses, in Shippo's own shapes, plus control routes that play the carrier.

Usage:
  shippo_standin.py --port 0 --ready-file FILE [--exit-with-parent] [--token T ...]
      serve on 127.0.0.1 (port 0: a free one), write the base URL to FILE once listening
  shippo_standin.py --wait --ready-file FILE --pid PID [--timeout 30]
      print the URL once FILE exists and the server answers

Shippo routes (`Authorization: ShippoToken <token>`; any `shippo_test_*` token unless
--token names the accepted ones), each with or without the trailing slash:
  POST /shipments               rates (send async: false), GET /shipments/{id}
  POST /transactions            buy a label: {"rate": id} or the one-call form
  GET  /transactions/{id}, GET /transactions (?rate= &object_status= &tracking_status=
                                 &results= &page=, newest first)
  POST /tracks                  register a tracking number for webhooks
  GET  /tracks/{carrier}/{tracking_number}
  POST /refunds                 void a label, GET /refunds/{id}
Control routes (no token): /_control/webhooks, /_control/tracks/{carrier}/{number}
(move a parcel and post `track_updated`), /_control/faults (outages), /_control/labels
(labels bought), /_control/reset, /_control/health; label files at /_labels/{id}.pdf.
tests/shippo/README.md describes every shape, test address and control route.

Field names follow Shippo's OpenAPI description (public-api.yaml, API version 2018-02-08)
and its Python SDK models; tests/shippo/ checks them with the official SDK and with JSON
Schemas transcribed from that description. Like Shippo, nothing is deduplicated: every
successful POST /transactions buys one more label, whatever its rate or metadata.

State is in memory, in this one process, behind one lock. Webhooks are posted with the
lock released, so the receiver may call back (it reads the tracking back) meanwhile.
"""

import argparse
import json
import os
import secrets
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OWNER = "orders-standin@shippo.test"
MAX_BODY_BYTES = 1024 * 1024
WEBHOOK_TIMEOUT_SECONDS = 10
TRACKING_STATUSES = ("UNKNOWN", "PRE_TRANSIT", "TRANSIT", "DELIVERED", "RETURNED", "FAILURE")
# Tracking statuses after which the carrier has the parcel: the label can't be refunded.
CARRIER_HAS_IT = ("TRANSIT", "DELIVERED", "RETURNED", "FAILURE")
CARRIERS = (
    "usps", "ups", "fedex", "dhl_express", "dhl_ecommerce", "canada_post", "ontrac",
    "lasership", "shippo",
)
WEBHOOK_EVENTS = ("track_updated", "transaction_created", "transaction_updated")

# Test addresses (address_to.zip) that make Shippo refuse, as documented in the notes.
ZIP_NO_RATES = "00000"
ZIP_BAD_ADDRESS = "00001"

ACCOUNTS = {"usps": "a1b2c3d4e5f60718293a4b5c6d7e8f90", "ups": "0f9e8d7c6b5a49382716a5b4c3d2e1f0"}
# (token, carrier, provider, name, days, duration terms, base USD, USD per lb)
SERVICE_LEVELS = (
    ("usps_ground_advantage", "usps", "USPS", "Ground Advantage", 5,
     "Delivery in 2 to 5 business days.", "4.95", "0.55"),
    ("usps_priority", "usps", "USPS", "Priority Mail", 2,
     "Delivery in 1 to 3 business days.", "7.45", "0.85"),
    ("usps_priority_express", "usps", "USPS", "Priority Mail Express", 1,
     "Overnight delivery to most U.S. locations.", "26.35", "1.90"),
    ("ups_ground", "ups", "UPS", "Ground", 3,
     "Delivery times vary. Delivered usually in 1-5 business days.", "9.15", "0.75"),
)
POUNDS_PER = {"lb": Decimal("1"), "oz": Decimal("0.0625"), "kg": Decimal("2.20462"),
              "g": Decimal("0.00220462")}
DISTANCE_UNITS = ("cm", "in", "ft", "m", "mm", "yd")
LABEL_FILE_TYPES = ("PNG", "PNG_2.3x7.5", "PDF", "PDF_2.3x7.5", "PDF_4x6", "PDF_4x8", "PDF_A4",
                    "PDF_A5", "PDF_A6", "ZPLII")
TRACKING_URLS = {
    "usps": "https://tools.usps.com/go/TrackConfirmAction_input?origTrackNum={}",
    "ups": "https://www.ups.com/track?tracknum={}",
}
DEFAULT_DETAILS = {
    "UNKNOWN": "The carrier has not reported this tracking number yet.",
    "PRE_TRANSIT": "Shipping label created, the carrier awaits the item.",
    "TRANSIT": "Your package is moving within the carrier network.",
    "DELIVERED": "Your item was delivered.",
    "RETURNED": "Your item is being returned to the sender.",
    "FAILURE": "The carrier could not deliver your item.",
}
# Shippo's test tracking numbers (carrier "shippo"): a fixed status each, they never move.
SHIPPO_TEST_NUMBERS = {"SHIPPO_" + s: s for s in TRACKING_STATUSES}


class ShippoError(Exception):
    """An answer other than success: HTTP status and Shippo's JSON body."""

    def __init__(self, status, body):
        super().__init__(status)
        self.status = status
        self.body = body


def field_error(field, message):
    return ShippoError(400, {field: [message]})


def not_found():
    return ShippoError(404, {"detail": "Not found."})


def now():
    return datetime.now(timezone.utc)


def stamp(moment):
    """Shippo's object timestamps: ISO 8601, milliseconds, Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (moment.microsecond // 1000)


def whole_seconds(moment):
    """Carriers report tracking events in whole seconds."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_date(value):
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def new_id():
    return secrets.token_hex(16)


def money(value):
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


class Store:
    """Everything the stand-in knows; every method runs under `lock`."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.shipments = {}
        self.rates = {}
        self.transactions = {}  # id -> transaction dict; insertion order = purchase order
        self.refunds = {}
        self.tracks = {}  # (carrier, number) -> track state
        self.webhooks = {}  # id -> {"id", "url", "events"}
        self.faults = []

    # -- shipments and rates ------------------------------------------------------------

    def create_shipment(self, body, rate_now=True):
        request = expect_object(body)
        missing = {f: ["This field is required."]
                   for f in ("address_from", "address_to", "parcels") if request.get(f) is None}
        if missing:
            raise ShippoError(400, missing)
        address_from = address(request, "address_from")
        address_to = address(request, "address_to")
        parcels = parcel_list(request)
        metadata = metadata_of(request)
        extra = request.get("extra", {})
        if not isinstance(extra, dict):
            raise field_error("extra", "Expected a dictionary of items.")
        moment = now()
        shipment_id = new_id()
        shipment = {
            "object_id": shipment_id,
            "object_owner": OWNER,
            "object_created": stamp(moment),
            "object_updated": stamp(moment),
            "status": "SUCCESS",
            "address_from": address_from,
            "address_to": address_to,
            "address_return": address_from,
            "parcels": parcels,
            "shipment_date": stamp(moment),
            "extra": extra,
            "carrier_accounts": [],
            "metadata": metadata,
            "messages": [],
            "rates": [],
            "test": True,
        }
        if address_to.get("zip", "").strip() == ZIP_NO_RATES:
            shipment["messages"] = [
                {"source": provider, "code": "",
                 "text": "No rates available for this address: the destination "
                         "postal code is not served."}
                for provider in ("USPS", "UPS")
            ]
        else:
            pounds = sum(parcel_pounds(p) for p in parcels)
            shipment["rates"] = self._quote(shipment_id, moment, pounds)
        self.shipments[shipment_id] = shipment
        for rate in shipment["rates"]:
            self.rates[rate["object_id"]] = rate
        if not rate_now:
            # async: rates are generated in the background; the answer has none yet.
            queued = dict(shipment, status="QUEUED", rates=[])
            return queued
        return shipment

    def _quote(self, shipment_id, moment, pounds):
        rates = []
        for token, carrier, provider, name, days, terms, base, per_lb in SERVICE_LEVELS:
            amount = money(Decimal(base) + Decimal(per_lb) * pounds)
            rates.append({
                "object_id": new_id(),
                "object_owner": OWNER,
                "object_created": stamp(moment),
                "shipment": shipment_id,
                "attributes": [],
                "amount": amount,
                "currency": "USD",
                "amount_local": amount,
                "currency_local": "USD",
                "provider": provider,
                "provider_image_75": "https://shippo-static.s3.amazonaws.com/providers/75/%s.png" % provider,
                "provider_image_200": "https://shippo-static.s3.amazonaws.com/providers/200/%s.png" % provider,
                "servicelevel": {
                    "name": name,
                    "token": token,
                    "terms": "",
                    "extended_token": token,
                    "parent_servicelevel": None,
                },
                "estimated_days": days,
                "arrives_by": None,
                "duration_terms": terms,
                "messages": [],
                "carrier_account": ACCOUNTS[carrier],
                "included_insurance_price": None,
                "test": True,
                "zone": "1",
            })
        by_amount = sorted(rates, key=lambda r: Decimal(r["amount"]))
        by_amount[0]["attributes"].append("CHEAPEST")
        min(rates, key=lambda r: r["estimated_days"])["attributes"].append("FASTEST")
        next(r for r in rates if r["servicelevel"]["token"] == "usps_priority")[
            "attributes"].append("BESTVALUE")
        return rates

    def get_shipment(self, shipment_id):
        shipment = self.shipments.get(shipment_id)
        if shipment is None:
            raise not_found()
        return shipment

    # -- transactions (labels) -----------------------------------------------------------

    def create_transaction(self, body):
        """Answers (transaction, events): the webhook events to post afterwards."""
        request = expect_object(body)
        metadata = metadata_of(request)
        label_file_type = request.get("label_file_type") or "PDF"
        if label_file_type not in LABEL_FILE_TYPES:
            raise field_error("label_file_type", '"%s" is not a valid choice.' % label_file_type)
        if "shipment" in request:
            return self._instalabel(request, metadata, label_file_type)
        rate_id = request.get("rate")
        if rate_id is None or rate_id == "":
            raise field_error("rate", "This field is required.")
        if not isinstance(rate_id, str):
            raise field_error("rate", "Incorrect type. Expected pk value.")
        rate = self.rates.get(rate_id)
        if rate is None:
            raise field_error("rate", 'Invalid pk "%s" - object does not exist.' % rate_id)
        is_async = request.get("async", True)
        shipment = self.shipments[rate["shipment"]]
        transaction = self._buy(shipment, rate, rate_id, metadata, label_file_type)
        events = self._events_for_purchase(transaction)
        if is_async is not False and transaction["status"] == "SUCCESS":
            # Shippo answers an async purchase at once, before the label exists.
            answer = dict(transaction, status="QUEUED", tracking_number="", label_url="",
                          tracking_url_provider="", tracking_status="UNKNOWN", eta=None)
            return answer, events
        return transaction, events

    def _instalabel(self, request, metadata, label_file_type):
        account = request.get("carrier_account")
        token = request.get("servicelevel_token")
        errors = {}
        if not account:
            errors["carrier_account"] = ["This field is required."]
        if not token:
            errors["servicelevel_token"] = ["This field is required."]
        if errors:
            raise ShippoError(400, errors)
        try:
            shipment = self.create_shipment(request["shipment"])
        except ShippoError as refused:
            if refused.status == 400:
                raise ShippoError(400, {"shipment": refused.body})
            raise
        rate = next(
            (r for r in shipment["rates"]
             if r["carrier_account"] == account and r["servicelevel"]["token"] == token),
            None,
        )
        if rate is None:
            transaction = self._failed(
                shipment, None, metadata, label_file_type,
                shipment["messages"] or [{
                    "source": "Shippo", "code": "",
                    "text": "The service level %s is not available for carrier account %s "
                            "on this shipment." % (token, account),
                }],
            )
            return transaction, []
        core_rate = {
            "object_id": rate["object_id"],
            "amount": rate["amount"],
            "currency": rate["currency"],
            "amount_local": rate["amount_local"],
            "currency_local": rate["currency_local"],
            "provider": rate["provider"],
            "carrier_account": rate["carrier_account"],
            "servicelevel_name": rate["servicelevel"]["name"],
            "servicelevel_token": rate["servicelevel"]["token"],
        }
        transaction = self._buy(shipment, rate, core_rate, metadata, label_file_type)
        return transaction, self._events_for_purchase(transaction)

    def _buy(self, shipment, rate, rate_field, metadata, label_file_type):
        address_to = shipment["address_to"]
        missing = [f for f in ("name", "street1", "city", "zip") if not address_to.get(f)]
        if address_to.get("zip", "").strip() == ZIP_BAD_ADDRESS or missing:
            text = ("The address as submitted could not be found. Please check for "
                    "excess abbreviations in the street address or a wrong ZIP code.")
            if missing:
                text = "address_to is incomplete: %s missing." % ", ".join(missing)
            return self._failed(shipment, rate_field, metadata, label_file_type,
                                [{"source": rate["provider"], "code": "", "text": text}])
        moment = now()
        transaction_id = new_id()
        carrier = carrier_of(rate)
        number = self._tracking_number(carrier)
        days = rate["estimated_days"]
        eta = whole_seconds((moment + timedelta(days=days)).replace(hour=20, minute=0, second=0))
        transaction = {
            "object_id": transaction_id,
            "object_owner": OWNER,
            "object_created": stamp(moment),
            "object_updated": stamp(moment),
            "object_state": "VALID",
            "status": "SUCCESS",
            "rate": rate_field,
            "parcel": shipment["parcels"][0]["object_id"],
            "metadata": metadata,
            "label_file_type": label_file_type,
            "tracking_number": number,
            "tracking_status": "PRE_TRANSIT",
            "tracking_url_provider": TRACKING_URLS.get(carrier, "").format(number),
            "eta": eta,
            "label_url": "",  # filled in by the handler: it knows the base URL
            "commercial_invoice_url": "",
            "qr_code_url": "",
            "messages": [],
            "created_by": None,
            "test": True,
        }
        self.transactions[transaction_id] = transaction
        servicelevel = {"token": rate["servicelevel"]["token"], "name": rate["servicelevel"]["name"]}
        track = self._track(carrier, number, create=True)
        track.update(transaction=transaction_id, metadata=metadata, servicelevel=servicelevel,
                     eta=eta, original_eta=eta,
                     address_from=location_of(shipment["address_from"]),
                     address_to=location_of(shipment["address_to"]),
                     is_return=bool(shipment["extra"].get("is_return")))
        self._report(track, "PRE_TRANSIT", moment, DEFAULT_DETAILS["PRE_TRANSIT"], None)
        return transaction

    def _failed(self, shipment, rate_field, metadata, label_file_type, messages):
        moment = now()
        transaction = {
            "object_id": new_id(),
            "object_owner": OWNER,
            "object_created": stamp(moment),
            "object_updated": stamp(moment),
            "object_state": "INVALID",
            "status": "ERROR",
            "rate": rate_field if rate_field is not None else "",
            "parcel": shipment["parcels"][0]["object_id"],
            "metadata": metadata,
            "label_file_type": label_file_type,
            "tracking_number": "",
            "tracking_status": "UNKNOWN",
            "tracking_url_provider": "",
            "eta": None,
            "label_url": "",
            "commercial_invoice_url": "",
            "qr_code_url": "",
            "messages": messages,
            "created_by": None,
            "test": True,
        }
        self.transactions[transaction["object_id"]] = transaction
        return transaction

    def _tracking_number(self, carrier):
        while True:
            if carrier == "ups":
                number = "1Z" + secrets.token_hex(8).upper()
            else:
                number = "9400" + "".join(str(secrets.randbelow(10)) for _ in range(18))
            if (carrier, number) not in self.tracks:
                return number

    def _events_for_purchase(self, transaction):
        if transaction["status"] != "SUCCESS":
            return []
        return [("transaction_created", lambda: self.transaction_view(transaction["object_id"]))]

    def transaction_view(self, transaction_id):
        transaction = self.transactions.get(transaction_id)
        if transaction is None:
            raise not_found()
        view = dict(transaction)
        if view["status"] != "ERROR":
            track = self.tracks.get((carrier_of_transaction(self, view), view["tracking_number"]))
            if track is not None and track["tracking_status"] is not None:
                view["tracking_status"] = track["tracking_status"]["status"]
        return view

    def list_transactions(self, query):
        def one(name):
            values = query.get(name)
            return values[-1] if values else None

        try:
            page = max(1, int(one("page") or 1))
            per_page = min(100, max(1, int(one("results") or 25)))
        except ValueError:
            raise ShippoError(400, {"detail": "page and results must be integers."})
        rate, status, tracking = one("rate"), one("object_status"), one("tracking_status")
        found = []
        for transaction_id in reversed(list(self.transactions)):  # newest first
            view = self.transaction_view(transaction_id)
            if rate and rate_id_of(view) != rate:
                continue
            if status and view["status"] != status:
                continue
            if tracking and view["tracking_status"] != tracking:
                continue
            found.append(view)
        start = (page - 1) * per_page
        return found[start:start + per_page], page, per_page, len(found)

    # -- tracking ------------------------------------------------------------------------

    def _track(self, carrier, number, create):
        key = (carrier, number)
        track = self.tracks.get(key)
        if track is None and create:
            track = {
                "carrier": carrier,
                "tracking_number": number,
                "transaction": None,
                "metadata": None,
                "servicelevel": {"token": None, "name": None},
                "eta": None,
                "original_eta": None,
                "address_from": None,
                "address_to": None,
                "is_return": False,
                "tracking_status": None,  # the status reported last
                "history": [],
                "last_webhook": None,
                "created": now(),
            }
            self.tracks[key] = track
        return track

    def _report(self, track, status, status_date, details, location):
        moment = now()
        event = {
            "object_id": new_id(),
            "object_created": stamp(moment),
            "object_updated": stamp(moment),
            "status": status,
            "status_details": details,
            "status_date": whole_seconds(status_date),
            "substatus": None,
            "location": location,
        }
        track["tracking_status"] = event
        track["history"].append(event)
        track["history"].sort(key=lambda e: e["status_date"])  # stable: same second keeps order
        transaction = self.transactions.get(track["transaction"] or "")
        if transaction is not None:
            transaction["object_updated"] = stamp(moment)

    def register_track(self, body):
        request = expect_object(body)
        errors = {}
        for name in ("carrier", "tracking_number"):
            value = request.get(name)
            if value is None or value == "":
                errors[name] = ["This field is required."]
            elif not isinstance(value, str):
                errors[name] = ["Not a valid string."]
        if errors:
            raise ShippoError(400, errors)
        carrier = valid_carrier(request["carrier"])
        number = request["tracking_number"].strip()
        if carrier == "shippo":
            return self.track_view(carrier, number)
        track = self._track(carrier, number, create=True)
        if "metadata" in request:
            track["metadata"] = metadata_of(request)
        return self.track_view(carrier, number)

    def track_view(self, carrier, number):
        carrier = valid_carrier(carrier)
        if carrier == "shippo" and number in SHIPPO_TEST_NUMBERS:
            return self._test_track(number)
        track = self.tracks.get((carrier, number))
        if track is None:
            # Never bought, registered nor moved here: the carrier knows nothing yet.
            track = {
                "carrier": carrier, "tracking_number": number, "transaction": None,
                "metadata": None, "servicelevel": {"token": None, "name": None},
                "eta": None, "original_eta": None, "address_from": None,
                "address_to": None, "tracking_status": None, "history": [],
                "created": now(),
            }
        status = track["tracking_status"]
        if status is None:
            created = stamp(track["created"])
            status = {
                "object_id": "", "object_created": created, "object_updated": created,
                "status": "UNKNOWN", "status_details": DEFAULT_DETAILS["UNKNOWN"],
                "status_date": whole_seconds(track["created"]), "substatus": None,
                "location": None,
            }
        return {
            "carrier": track["carrier"],
            "tracking_number": track["tracking_number"],
            "address_from": track["address_from"],
            "address_to": track["address_to"],
            "transaction": track["transaction"],
            "original_eta": track["original_eta"],
            "eta": track["eta"],
            "servicelevel": dict(track["servicelevel"]),
            "metadata": track["metadata"],
            "tracking_status": dict(status),
            "tracking_history": [dict(e) for e in track["history"]],
            "messages": [],
        }

    def _test_track(self, number):
        status = SHIPPO_TEST_NUMBERS[number]
        moment = datetime(2024, 1, 2, 15, 4, 5, tzinfo=timezone.utc)
        event = {
            "object_id": "0" * 32, "object_created": stamp(moment),
            "object_updated": stamp(moment), "status": status,
            "status_details": DEFAULT_DETAILS[status], "status_date": whole_seconds(moment),
            "substatus": None,
            "location": {"city": "San Francisco", "state": "CA", "zip": "94103", "country": "US"},
        }
        return {
            "carrier": "shippo", "tracking_number": number,
            "address_from": {"city": "Las Vegas", "state": "NV", "zip": "89101", "country": "US"},
            "address_to": {"city": "San Francisco", "state": "CA", "zip": "94103", "country": "US"},
            "transaction": None, "original_eta": None, "eta": None,
            "servicelevel": {"token": "shippo_priority", "name": "Priority Mail"},
            "metadata": "Shippo test webhook",
            "tracking_status": event,
            "tracking_history": [] if status == "UNKNOWN" else [event],
            "messages": [],
        }

    def move(self, carrier, number, body):
        """The carrier reports a status. Answers the webhook body to post."""
        request = expect_object(body)
        carrier = valid_carrier(carrier)
        if carrier == "shippo":
            raise ShippoError(409, {"detail": "Shippo's test tracking numbers never move."})
        status = request.get("status")
        if status not in TRACKING_STATUSES:
            raise field_error("status", "Must be one of %s." % ", ".join(TRACKING_STATUSES))
        try:
            status_date = parse_date(request["status_date"]) if request.get("status_date") else now()
        except (TypeError, ValueError):
            raise field_error("status_date", "An ISO 8601 date and time is required.")
        details = request.get("status_details") or DEFAULT_DETAILS[status]
        location = request.get("location")
        if location is not None and not isinstance(location, dict):
            raise field_error("location", "Expected {city, state, zip, country}.")
        if location is not None:
            location = {k: location.get(k) for k in ("city", "state", "zip", "country")}
        track = self._track(carrier, number, create=True)
        self._report(track, status, status_date, details, location)
        return self.track_view(carrier, number)

    def remember_webhook(self, carrier, number, body):
        track = self.tracks.get((carrier, number))
        if track is not None:
            track["last_webhook"] = body

    def last_webhook(self, carrier, number):
        track = self.tracks.get((valid_carrier(carrier), number))
        if track is None or track["last_webhook"] is None:
            raise ShippoError(404, {"detail": "No webhook was sent for this tracking number."})
        return track["last_webhook"]

    # -- refunds -------------------------------------------------------------------------

    def refund(self, body):
        request = expect_object(body)
        transaction_id = request.get("transaction")
        if transaction_id is None or transaction_id == "":
            raise field_error("transaction", "This field is required.")
        transaction = self.transactions.get(transaction_id) if isinstance(transaction_id, str) else None
        if transaction is None:
            raise field_error("transaction",
                              'Invalid pk "%s" - object does not exist.' % (transaction_id,))
        if transaction["status"] in ("REFUNDED", "REFUNDPENDING"):
            raise field_error("transaction",
                              "A refund for this transaction has already been requested.")
        if transaction["status"] != "SUCCESS":
            raise field_error("transaction", "Only a successfully purchased label can be refunded.")
        view = self.transaction_view(transaction_id)
        if view["tracking_status"] in CARRIER_HAS_IT:
            raise field_error("transaction",
                              "This label has been used by the carrier and cannot be refunded.")
        queued = request.get("async", True) is not False
        moment = now()
        refund = {
            "object_id": new_id(),
            "object_owner": OWNER,
            "object_created": stamp(moment),
            "object_updated": stamp(moment),
            "status": "QUEUED" if queued else "SUCCESS",
            "transaction": transaction_id,
            "test": True,
        }
        self.refunds[refund["object_id"]] = refund
        transaction["status"] = "REFUNDPENDING" if queued else "REFUNDED"
        transaction["object_updated"] = stamp(moment)
        events = [("transaction_updated", lambda: self.transaction_view(transaction_id))]
        return refund, events

    def get_refund(self, refund_id):
        refund = self.refunds.get(refund_id)
        if refund is None:
            raise not_found()
        return refund

    # -- control -------------------------------------------------------------------------

    def labels(self, query):
        exact = (query.get("metadata") or [None])[-1]
        contains = (query.get("metadata_contains") or [None])[-1]
        bought = [
            t for t in self.transactions.values()
            if t["status"] in ("SUCCESS", "REFUNDED", "REFUNDPENDING")
            and (exact is None or t["metadata"] == exact)
            and (contains is None or contains in (t["metadata"] or ""))
        ]
        def is_return(transaction):
            track = self.tracks.get((carrier_of_transaction(self, transaction),
                                     transaction["tracking_number"]))
            return bool(track and track["is_return"])

        return {
            "purchased": len(bought),
            "refunded": sum(1 for t in bought if t["status"] != "SUCCESS"),
            "returns": sum(1 for t in bought if is_return(t)),
            "transactions": [t["object_id"] for t in bought],
        }

    def add_fault(self, body):
        request = expect_object(body)
        try:
            fault = {
                "id": new_id(),
                "method": (request.get("method") or "").upper() or None,
                "path": normalise_path(request["path"]) if request.get("path") else None,
                "contains": request.get("contains") or None,
                "status": int(request.get("status", 503)),
                "times": int(request.get("times", 1)),
                "when": request.get("when", "before"),
            }
        except (TypeError, ValueError):
            raise ShippoError(400, {"detail": "status and times must be integers."})
        if fault["when"] not in ("before", "after") or fault["times"] < 1 \
                or not 400 <= fault["status"] <= 599:
            raise ShippoError(400, {"detail": "when: before|after, times >= 1, status 4xx/5xx."})
        self.faults.append(fault)
        return fault

    def take_fault(self, method, path, text):
        for fault in self.faults:
            if fault["method"] and fault["method"] != method:
                continue
            if fault["path"] and not (path == fault["path"] or path.startswith(fault["path"] + "/")):
                continue
            if fault["contains"] and fault["contains"] not in text:
                continue
            fault["times"] -= 1
            if fault["times"] == 0:
                self.faults.remove(fault)
            return fault
        return None

    def add_webhook(self, body):
        request = expect_object(body)
        url = request.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise field_error("url", "An http(s) URL is required.")
        events = request.get("events") or ["track_updated"]
        if not isinstance(events, list) or any(e not in WEBHOOK_EVENTS for e in events):
            raise field_error("events", "Each must be one of %s." % ", ".join(WEBHOOK_EVENTS))
        hook = {"id": request.get("id") or new_id(), "url": url, "events": events}
        self.webhooks[hook["id"]] = hook
        return hook

    def subscribers(self, event):
        return [h["url"] for h in self.webhooks.values() if event in h["events"]]


# -- request parsing -------------------------------------------------------------------------


def expect_object(body):
    if not isinstance(body, dict):
        raise ShippoError(400, {"non_field_errors": ["Invalid data. Expected a dictionary."]})
    return body


def metadata_of(request):
    metadata = request.get("metadata", "")
    if metadata is None:
        return ""
    if not isinstance(metadata, str):
        raise field_error("metadata", "Not a valid string.")
    if len(metadata) > 100:
        raise field_error("metadata", "Ensure this field has no more than 100 characters.")
    return metadata


def address(request, field):
    value = request.get(field)
    if value is None:
        raise field_error(field, "This field is required.")
    if isinstance(value, str):
        raise field_error(field, "Address object ids are not supported by the stand-in; "
                                 "send the address itself.")
    if not isinstance(value, dict):
        raise field_error(field, "Expected a dictionary of items.")
    if not value.get("country"):
        raise ShippoError(400, {field: {"country": ["This field is required."]}})
    moment = stamp(now())
    known = ("name", "company", "street1", "street2", "street3", "street_no", "city", "state",
             "zip", "country", "phone", "email", "is_residential", "metadata")
    result = {k: value[k] for k in known if k in value and value[k] is not None}
    for k in ("zip", "phone"):
        if k in result:
            result[k] = str(result[k])
    missing = [f for f in ("name", "street1", "city", "zip") if not result.get(f)]
    result.update({
        "object_id": new_id(),
        "object_owner": OWNER,
        "object_created": moment,
        "object_updated": moment,
        "is_complete": not missing,
        "validation_results": {},
        "test": True,
    })
    return result


def decimal_text(value, field, index):
    error = ShippoError(400, {"parcels": [{}] * index + [{field: ["A valid number is required."]}]})
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise error
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise error
    if not number.is_finite() or number <= 0:
        raise error
    return str(value).strip() if isinstance(value, str) else format(number.normalize(), "f")


def parcel_list(request):
    parcels = request.get("parcels")
    if parcels is None:
        raise field_error("parcels", "This field is required.")
    if isinstance(parcels, dict):
        parcels = [parcels]  # Shippo takes one parcel object too
    if not isinstance(parcels, list) or not parcels:
        raise field_error("parcels", "At least one parcel is required.")
    result = []
    for index, parcel in enumerate(parcels):
        if not isinstance(parcel, dict):
            raise field_error("parcels", "Parcel object ids and templates are not supported "
                                         "by the stand-in; send the parcel itself.")
        missing = [f for f in ("length", "width", "height", "distance_unit", "weight", "mass_unit")
                   if parcel.get(f) in (None, "")]
        if missing:
            raise ShippoError(400, {"parcels": [{}] * index + [
                {f: ["This field is required."] for f in missing}]})
        if parcel["mass_unit"] not in POUNDS_PER:
            raise ShippoError(400, {"parcels": [{}] * index + [
                {"mass_unit": ['"%s" is not a valid choice.' % parcel["mass_unit"]]}]})
        if parcel["distance_unit"] not in DISTANCE_UNITS:
            raise ShippoError(400, {"parcels": [{}] * index + [
                {"distance_unit": ['"%s" is not a valid choice.' % parcel["distance_unit"]]}]})
        moment = stamp(now())
        echoed = {f: decimal_text(parcel[f], f, index) for f in ("length", "width", "height", "weight")}
        echoed.update({
            "distance_unit": parcel["distance_unit"],
            "mass_unit": parcel["mass_unit"],
            "object_id": new_id(),
            "object_owner": OWNER,
            "object_created": moment,
            "object_updated": moment,
            "object_state": "VALID",
            "metadata": parcel.get("metadata") or "",
            "extra": parcel.get("extra") or {},
            "test": True,
        })
        result.append(echoed)
    return result


def parcel_pounds(parcel):
    return Decimal(parcel["weight"]) * POUNDS_PER[parcel["mass_unit"]]


def location_of(addr):
    return {k: addr.get(k) for k in ("city", "state", "zip", "country")}


def carrier_of(rate):
    return next(c for t, c, *_ in SERVICE_LEVELS if t == rate["servicelevel"]["token"])


def rate_id_of(transaction):
    rate = transaction["rate"]
    return rate.get("object_id") if isinstance(rate, dict) else rate


def carrier_of_transaction(store, transaction):
    rate_id = rate_id_of(transaction)
    rate = store.rates.get(rate_id)
    return carrier_of(rate) if rate else None


def valid_carrier(carrier):
    if carrier not in CARRIERS:
        raise field_error("carrier", '"%s" is not a valid choice.' % carrier)
    return carrier


def normalise_path(path):
    path = path.split("?", 1)[0]
    return path.rstrip("/") or "/"


# -- webhooks --------------------------------------------------------------------------------


def post_json(url, body):
    data = json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "Shippo-Standin/1"},
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
            return {"url": url, "status": response.status}
    except urllib.error.HTTPError as answered:
        return {"url": url, "status": answered.code}
    except (OSError, ValueError) as failed:
        return {"url": url, "error": str(failed)}


# -- HTTP ------------------------------------------------------------------------------------


def label_pdf(transaction):
    """A one-page PDF that says what the label is (byte offsets computed, so it opens)."""
    text = "Shippo stand-in label %s  tracking %s" % (
        transaction["object_id"], transaction["tracking_number"])
    stream = ("BT /F1 12 Tf 36 200 Td (%s) Tj ET" % text).encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 432 288] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections
    server_version = "ShippoStandin/1"
    store = None  # set in serve()
    tokens = None  # None: any shippo_test_ token

    def do_GET(self):
        self.handle_request("GET")

    def do_POST(self):
        self.handle_request("POST")

    def do_DELETE(self):
        self.handle_request("DELETE")

    def do_PUT(self):
        self.handle_request("PUT")

    def log_message(self, fmt, *args):
        sys.stderr.write("shippo-standin: %s\n" % (fmt % args))

    def base_url(self):
        return "http://%s" % (self.headers.get("Host") or "127.0.0.1:%d" % self.server.server_port)

    def handle_request(self, method):
        parsed = urllib.parse.urlsplit(self.path)
        path = normalise_path(parsed.path)
        query = urllib.parse.parse_qs(parsed.query)
        try:
            raw = self.read_body()
            if path.startswith("/_control/") or path.startswith("/_labels/"):
                status, body, after = self.control(method, path, query, raw)
            else:
                self.authorize()
                status, body, after = self.shippo(method, path, query, raw)
        except ShippoError as error:
            status, body, after = error.status, error.body, []
        except Exception as error:  # a bug here: say so instead of dropping the connection
            self.log_message("error on %s %s: %r", method, self.path, error)
            status, body, after = 500, {"detail": "stand-in error: %r" % (error,)}, []
        if isinstance(body, bytes):
            self.answer(status, body, "application/pdf")
        else:
            self.answer(status, json.dumps(body).encode(), "application/json")
        self.deliver(after)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body would be taken for the next request
            raise ShippoError(413, {"detail": "Request body too large."})
        return self.rfile.read(length) if length else b""

    def answer(self, status, data, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if status == 401:
            self.send_header("WWW-Authenticate", "ShippoToken")
        self.end_headers()
        self.wfile.write(data)

    def authorize(self):
        header = self.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme != "ShippoToken" or not token.strip():
            raise ShippoError(401, {"detail": "Authentication credentials were not provided."})
        token = token.strip()
        accepted = token in self.tokens if self.tokens else token.startswith("shippo_test_")
        if not accepted:
            raise ShippoError(401, {"detail": "Invalid token."})

    def json_body(self, raw):
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError as error:
            raise ShippoError(400, {"detail": "JSON parse error - %s" % error})

    # -- Shippo's routes, with injected faults ---------------------------------------------

    def shippo(self, method, path, query, raw):
        store = self.store
        text = "%s?%s %s" % (path, urllib.parse.urlsplit(self.path).query, raw.decode("utf-8", "replace"))
        with store.lock:
            fault = store.take_fault(method, path, text)
        if fault and fault["when"] == "before":
            raise ShippoError(fault["status"], {"detail": "Service Unavailable"})
        status, body, after = self.route(method, path, query, raw)
        if fault:  # when == "after": done (its webhooks still go out), but the answer is lost
            return fault["status"], {"detail": "Service Unavailable"}, after
        return status, body, after

    def route(self, method, path, query, raw):
        store = self.store
        parts = path.strip("/").split("/")
        resource, rest = parts[0], parts[1:]
        allowed = {
            ("shipments", 0): ("POST",), ("shipments", 1): ("GET",),
            ("transactions", 0): ("GET", "POST"), ("transactions", 1): ("GET",),
            ("tracks", 0): ("POST",), ("tracks", 2): ("GET",),
            ("refunds", 0): ("POST",), ("refunds", 1): ("GET",),
        }.get((resource, len(rest)))
        if allowed is None:
            raise not_found()
        if method not in allowed:
            raise ShippoError(405, {"detail": 'Method "%s" not allowed.' % method})
        body = self.json_body(raw) if method == "POST" else None
        with store.lock:
            if resource == "shipments" and method == "POST":
                return 201, store.create_shipment(body, rate_now=body_async(body, True) is False), []
            if resource == "shipments":
                return 200, store.get_shipment(rest[0]), []
            if resource == "transactions" and method == "POST":
                transaction, events = store.create_transaction(body)
                return 201, self.with_label_url(transaction), self.bind(events)
            if resource == "transactions" and rest:
                return 200, self.with_label_url(store.transaction_view(rest[0])), []
            if resource == "transactions":
                results, page, per_page, total = store.list_transactions(query)
                return 200, self.page_of(query, results, page, per_page, total), []
            if resource == "tracks" and method == "POST":
                return 200, store.register_track(body), []
            if resource == "tracks":
                return 200, store.track_view(rest[0], urllib.parse.unquote(rest[1])), []
            if resource == "refunds" and method == "POST":
                refund, events = store.refund(body)
                return 201, refund, self.bind(events)
            return 200, store.get_refund(rest[0]), []

    def with_label_url(self, transaction):
        if transaction.get("status") in ("SUCCESS", "REFUNDED", "REFUNDPENDING") \
                and transaction.get("tracking_number"):
            transaction = dict(transaction, label_url="%s/_labels/%s.pdf" % (
                self.base_url(), transaction["object_id"]))
        return transaction

    def page_of(self, query, results, page, per_page, total):
        def link(number):
            params = {k: v[-1] for k, v in query.items()}
            params.update(page=str(number), results=str(per_page))
            return "%s/transactions/?%s" % (self.base_url(), urllib.parse.urlencode(params))

        return {
            "next": link(page + 1) if page * per_page < total else None,
            "previous": link(page - 1) if page > 1 else None,
            "results": [self.with_label_url(t) for t in results],
        }

    def bind(self, events):
        """Webhook events of a Shippo call: (urls, body) computed now, under the lock."""
        bound = []
        for event, data in events:
            urls = self.store.subscribers(event)
            if urls:
                body = {"event": event, "test": True, "data": self.with_label_url(data())}
                bound.extend((url, body) for url in urls)
        return bound

    def deliver(self, after):
        for url, body in after:
            post_json(url, body)

    # -- control routes -------------------------------------------------------------------

    def control(self, method, path, query, raw):
        store = self.store
        parts = path.strip("/").split("/")
        if parts[0] == "_labels" and len(parts) == 2 and method == "GET" \
                and parts[1].endswith(".pdf"):
            with store.lock:
                transaction = store.transactions.get(parts[1][:-4])
                if transaction is None or not transaction["tracking_number"]:
                    raise not_found()
                return 200, label_pdf(transaction), []
        name, rest = parts[1], parts[2:]
        body = self.json_body(raw) if method in ("POST", "PUT") else None
        if name == "health" and method == "GET":
            return 200, {"ok": True}, []
        if name == "reset" and method == "POST":
            with store.lock:
                store.reset()
            return 200, {"ok": True}, []
        if name == "labels" and method == "GET":
            with store.lock:
                return 200, store.labels(query), []
        if name == "faults" and not rest and method == "POST":
            with store.lock:
                return 201, store.add_fault(body), []
        if name == "faults" and not rest and method == "DELETE":
            with store.lock:
                store.faults.clear()
            return 200, {"ok": True}, []
        if name == "webhooks" and not rest and method == "POST":
            with store.lock:
                return 201, store.add_webhook(body), []
        if name == "webhooks" and not rest and method == "GET":
            with store.lock:
                return 200, {"results": list(store.webhooks.values())}, []
        if name == "webhooks" and len(rest) == 1 and method == "DELETE":
            with store.lock:
                if store.webhooks.pop(rest[0], None) is None:
                    raise not_found()
            return 200, {"ok": True}, []
        if name == "tracks" and len(rest) in (2, 3) and method == "POST":
            carrier, number = rest[0], urllib.parse.unquote(rest[1])
            if len(rest) == 3 and rest[2] != "resend":
                raise not_found()
            return self.carrier_reports(carrier, number, body, resend=len(rest) == 3)
        raise not_found()

    def carrier_reports(self, carrier, number, request, resend):
        """Moves a parcel (or resends its last webhook), then posts the webhook(s) before
        answering, so a test sees the receiver's effect as soon as this call returns."""
        store = self.store
        request = expect_object(request)
        with store.lock:
            if resend:
                webhook = store.last_webhook(carrier, number)
                track = webhook["data"]
            else:
                track = store.move(carrier, number, request)
                webhook = {"event": "track_updated", "test": True, "data": track}
                store.remember_webhook(carrier, number, webhook)
            target = request.get("webhook_url")
            deliver = request.get("deliver", True) is not False
            urls = [target] if target else store.subscribers("track_updated")
            extra = []
            transaction_id = track.get("transaction")
            if deliver and not target and transaction_id and not resend:
                extra = self.bind([("transaction_updated",
                                    lambda: store.transaction_view(transaction_id))])
        deliveries = [post_json(url, webhook) for url in urls] if deliver else []
        self.deliver(extra)
        return 200, {"track": track, "webhook": webhook, "deliveries": deliveries}, []


def body_async(body, default):
    if isinstance(body, dict) and "async" in body:
        return body["async"]
    return default


# -- process ---------------------------------------------------------------------------------


def serve(args):
    Handler.store = Store()
    Handler.tokens = set(args.token) if args.token else None
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    url = "http://127.0.0.1:%d" % server.server_port

    if args.exit_with_parent:
        parent = os.getppid()

        def watch():
            while os.getppid() == parent:
                time.sleep(1)
            os._exit(0)

        threading.Thread(target=watch, daemon=True).start()

    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(url)
        os.replace(tmp, args.ready_file)
    sys.stderr.write("shippo-standin: listening on %s\n" % url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


def wait(args):
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        try:
            os.kill(args.pid, 0)
        except OSError:
            sys.exit("the Shippo stand-in exited before it was ready")
        if os.path.exists(args.ready_file):
            with open(args.ready_file) as f:
                url = f.read().strip()
            try:
                with urllib.request.urlopen(url + "/_control/health", timeout=1) as response:
                    if response.status == 200:
                        print(url)
                        return
            except OSError:
                pass
        time.sleep(0.1)
    sys.exit("the Shippo stand-in did not answer within %ss" % args.timeout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file")
    parser.add_argument("--exit-with-parent", action="store_true")
    parser.add_argument("--token", action="append", default=[],
                        help="an accepted token (repeatable; default: any shippo_test_ token)")
    parser.add_argument("--wait", action="store_true")
    parser.add_argument("--pid", type=int)
    parser.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args()
    if args.wait:
        if not args.ready_file or args.pid is None:
            parser.error("--wait needs --ready-file and --pid")
        wait(args)
    else:
        serve(args)


if __name__ == "__main__":
    main()
