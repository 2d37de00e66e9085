"""Labels (transactions), their list, refunds, outages and the label counter, each body
checked against the JSON Schema transcribed from Shippo's OpenAPI description."""

import re
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from conftest import WAREHOUSE, customer, is_valid, shipment_body, validate


def test_buying_a_rate_answers_a_shippo_transaction_with_the_label(api, ref):
    quoted, transaction = api.buy(ref)

    validate("Transaction", transaction)
    cheapest = next(r for r in quoted["rates"] if "CHEAPEST" in r["attributes"])
    assert transaction["status"] == "SUCCESS" and transaction["object_state"] == "VALID"
    assert transaction["rate"] == cheapest["object_id"]
    assert transaction["metadata"] == ref
    assert re.fullmatch(r"9400\d{18}", transaction["tracking_number"])
    assert transaction["tracking_status"] == "PRE_TRANSIT"
    assert transaction["tracking_number"] in transaction["tracking_url_provider"]
    status, pdf, kind = api.call("GET", urllib.parse.urlsplit(transaction["label_url"]).path,
                                 token=None, raw=True)
    assert status == 200 and kind == "application/pdf" and pdf.startswith(b"%PDF-")
    assert transaction["tracking_number"].encode() in pdf
    assert api.labels(ref)["purchased"] == 1

    again = api.ok("GET", "/transactions/" + transaction["object_id"])
    validate("Transaction", again)
    assert again["tracking_number"] == transaction["tracking_number"]


def test_a_ups_rate_gets_a_ups_tracking_number(api, ref):
    quoted = api.ok("POST", "/shipments", shipment_body(ref))
    ups = next(r for r in quoted["rates"] if r["servicelevel"]["token"] == "ups_ground")
    transaction = api.ok("POST", "/transactions", {"rate": ups["object_id"], "async": False})
    assert re.fullmatch(r"1Z[0-9A-F]{16}", transaction["tracking_number"])
    track = api.ok("GET", "/tracks/ups/" + transaction["tracking_number"])
    validate("Track", track)
    assert track["carrier"] == "ups" and track["transaction"] == transaction["object_id"]


def test_the_one_call_form_buys_with_a_simplified_rate(api, ref):
    quoted = api.ok("POST", "/shipments", shipment_body(ref))
    usps_account = quoted["rates"][0]["carrier_account"]
    transaction = api.ok("POST", "/transactions", {
        "shipment": shipment_body(ref), "carrier_account": usps_account,
        "servicelevel_token": "usps_priority", "metadata": ref, "label_file_type": "PDF",
    })

    validate("Transaction", transaction)
    assert transaction["status"] == "SUCCESS"
    rate = transaction["rate"]
    assert rate["servicelevel_token"] == "usps_priority" and rate["provider"] == "USPS"
    assert Decimal(rate["amount"]) > 0 and rate["currency"] == "USD"
    assert api.labels(ref)["purchased"] == 1


def test_the_one_call_form_with_a_service_the_account_lacks_is_an_error_transaction(api, ref):
    quoted = api.ok("POST", "/shipments", shipment_body(ref))
    ups_account = next(r["carrier_account"] for r in quoted["rates"] if r["provider"] == "UPS")
    transaction = api.ok("POST", "/transactions", {
        "shipment": shipment_body(ref), "carrier_account": ups_account,
        "servicelevel_token": "usps_priority", "metadata": ref,
    })
    validate("Transaction", transaction)
    assert transaction["status"] == "ERROR" and transaction["messages"]
    assert api.labels(ref)["purchased"] == 0


def test_a_bad_address_is_refused_at_purchase_with_the_carriers_message(api, ref):
    quoted = api.ok("POST", "/shipments", shipment_body(ref, zip_code="00001"))
    assert quoted["rates"], "Shippo quotes addresses it has not validated"
    transaction = api.ok("POST", "/transactions",
                         {"rate": quoted["rates"][0]["object_id"], "async": False, "metadata": ref})

    validate("Transaction", transaction)
    assert transaction["status"] == "ERROR"
    assert transaction["tracking_number"] == "" and transaction["label_url"] == ""
    assert transaction["messages"][0]["source"] == "USPS"
    assert "address" in transaction["messages"][0]["text"]
    assert api.labels(ref)["purchased"] == 0


def test_shippo_deduplicates_nothing_the_same_rate_twice_is_two_labels(api, ref):
    quoted = api.ok("POST", "/shipments", shipment_body(ref))
    rate = quoted["rates"][0]["object_id"]
    first = api.ok("POST", "/transactions", {"rate": rate, "async": False, "metadata": ref})
    second = api.ok("POST", "/transactions", {"rate": rate, "async": False, "metadata": ref})

    assert first["object_id"] != second["object_id"]
    assert first["tracking_number"] != second["tracking_number"]
    counted = api.labels(ref)
    assert counted["purchased"] == 2
    assert set(counted["transactions"]) == {first["object_id"], second["object_id"]}


def test_async_by_default_a_purchase_answers_queued_then_succeeds(api, ref):
    quoted = api.ok("POST", "/shipments", shipment_body(ref))
    queued = api.ok("POST", "/transactions", {"rate": quoted["rates"][0]["object_id"], "metadata": ref})
    validate("Transaction", queued)
    assert queued["status"] == "QUEUED" and queued["label_url"] == ""

    done = api.ok("GET", "/transactions/" + queued["object_id"])
    assert done["status"] == "SUCCESS" and done["label_url"] and done["tracking_number"]


def test_the_list_finds_a_label_by_its_rate_and_pages_newest_first(api, ref):
    quoted, transaction = api.buy(ref)
    found = api.ok("GET", "/transactions?rate=" + transaction["rate"])
    validate("TransactionPaginatedList", found)
    assert [t["object_id"] for t in found["results"]] == [transaction["object_id"]]

    _, newer = api.buy(ref)
    page = api.ok("GET", "/transactions/?results=1&page=1")
    validate("TransactionPaginatedList", page)
    assert page["results"][0]["object_id"] == newer["object_id"]
    assert page["previous"] is None and page["next"]
    following = api.ok("GET", urllib.parse.urlsplit(page["next"]).path + "?" +
                       urllib.parse.urlsplit(page["next"]).query)
    assert following["results"][0]["object_id"] == transaction["object_id"]
    assert following["previous"]

    delivered = api.ok("GET", "/transactions?tracking_status=DELIVERED&rate=" + transaction["rate"])
    assert delivered["results"] == []


def test_missing_and_unknown_rates_are_400_field_errors(api):
    status, body = api.call("POST", "/transactions", {"async": False})
    assert (status, body) == (400, {"rate": ["This field is required."]})
    validate("BadRequest", body)
    status, body = api.call("POST", "/transactions", {"rate": "0" * 32, "label_file_type": "GIF"})
    assert (status, body) == (400, {"label_file_type": ['"GIF" is not a valid choice.']})
    status, body = api.call("POST", "/transactions", {"rate": "0" * 32})
    assert status == 400 and body["rate"][0].startswith('Invalid pk "0000')
    assert api.call("GET", "/transactions/" + "0" * 32) == (404, {"detail": "Not found."})


def test_shipment_input_errors_are_400_field_errors(api, ref):
    assert api.call("POST", "/shipments", {}) == (400, {
        "address_from": ["This field is required."], "address_to": ["This field is required."],
        "parcels": ["This field is required."]})
    parcel_without_weight = {"length": "1", "width": "1", "height": "1", "distance_unit": "in",
                             "mass_unit": "lb"}
    status, body = api.call("POST", "/shipments", {
        "address_from": WAREHOUSE, "address_to": customer(), "parcels": [parcel_without_weight]})
    assert (status, body) == (400, {"parcels": [{"weight": ["This field is required."]}]})
    validate("BadRequest", body)
    status, body = api.call("POST", "/shipments", dict(shipment_body(ref), metadata="x" * 101))
    assert status == 400 and "metadata" in body


def test_a_refund_voids_the_label_once(api, ref):
    _, transaction = api.buy(ref)
    refund = api.ok("POST", "/refunds", {"transaction": transaction["object_id"], "async": False})

    validate("Refund", refund)
    assert refund["status"] == "SUCCESS" and refund["transaction"] == transaction["object_id"]
    assert api.ok("GET", "/refunds/" + refund["object_id"]) == refund
    voided = api.ok("GET", "/transactions/" + transaction["object_id"])
    assert voided["status"] == "REFUNDED"
    assert api.labels(ref) == {"purchased": 1, "refunded": 1, "returns": 0,
                               "transactions": [transaction["object_id"]]}

    status, body = api.call("POST", "/refunds", {"transaction": transaction["object_id"]})
    assert status == 400 and "already been requested" in body["transaction"][0]


def test_an_async_refund_is_queued(api, ref):
    _, transaction = api.buy(ref)
    refund = api.ok("POST", "/refunds", {"transaction": transaction["object_id"]})
    validate("Refund", refund)
    assert refund["status"] == "QUEUED"
    assert api.ok("GET", "/transactions/" + transaction["object_id"])["status"] == "REFUNDPENDING"


def test_a_label_the_carrier_has_cannot_be_refunded(api, ref):
    _, transaction = api.buy(ref)
    api.ok("POST", "/_control/tracks/usps/" + transaction["tracking_number"],
           {"status": "TRANSIT", "deliver": False})
    status, body = api.call("POST", "/refunds", {"transaction": transaction["object_id"]})
    assert status == 400 and "cannot be refunded" in body["transaction"][0]
    assert api.ok("GET", "/transactions/" + transaction["object_id"])["tracking_status"] == "TRANSIT"
    status, body = api.call("POST", "/refunds", {"transaction": "nope"})
    assert status == 400 and body["transaction"][0].startswith('Invalid pk "nope"')


def test_an_outage_before_fails_the_call_and_buys_nothing(api, ref):
    quoted = api.ok("POST", "/shipments", shipment_body(ref))
    api.ok("POST", "/_control/faults",
           {"method": "POST", "path": "/transactions", "contains": ref, "status": 503})
    other = api.ok("POST", "/transactions", {"rate": quoted["rates"][0]["object_id"],
                                             "async": False, "metadata": "someone else"})
    assert other["status"] == "SUCCESS", "a fault scoped by `contains` spares other calls"

    body = {"rate": quoted["rates"][0]["object_id"], "async": False, "metadata": ref}
    assert api.call("POST", "/transactions", body) == (503, {"detail": "Service Unavailable"})
    assert api.labels(ref)["purchased"] == 0
    assert api.ok("POST", "/transactions", body)["status"] == "SUCCESS", "one time only"
    assert api.labels(ref)["purchased"] == 1


def test_an_outage_after_buys_the_label_but_loses_the_answer(api, ref):
    quoted = api.ok("POST", "/shipments", shipment_body(ref))
    api.ok("POST", "/_control/faults",
           {"path": "/transactions/", "contains": ref, "status": 504, "when": "after"})
    body = {"rate": quoted["rates"][0]["object_id"], "async": False, "metadata": ref}
    assert api.call("POST", "/transactions", body)[0] == 504

    counted = api.labels(ref)
    assert counted["purchased"] == 1
    found = api.ok("GET", "/transactions?rate=" + body["rate"])["results"]
    assert [t["object_id"] for t in found] == counted["transactions"]


@pytest.mark.parametrize("fault", [
    {"when": "sometime"}, {"status": 200}, {"times": 0}, {"status": "many"}])
def test_a_bad_fault_is_refused(api, fault):
    assert api.call("POST", "/_control/faults", fault)[0] == 400


def test_the_schemas_have_teeth(api, ref):
    """Mutations Shippo would never answer fail the schemas: so passing means something."""
    _, transaction = api.buy(ref)
    assert is_valid("Transaction", transaction)
    # The JS SDK's known trap: a tracking_status object where Shippo sends the enum string.
    assert not is_valid("Transaction", dict(transaction, tracking_status={"status": "TRANSIT"}))
    assert not is_valid("Transaction", dict(transaction, status="DONE"))
    assert not is_valid("Transaction", dict(transaction, tracking_url="https://x"))  # invented
    assert not is_valid("Transaction", dict(transaction, object_created="yesterday"))
    refund = api.ok("POST", "/refunds", {"transaction": transaction["object_id"], "async": False})
    assert not is_valid("Refund", dict(refund, status="REFUNDED"))


def test_return_labels_are_counted_apart(api, ref):
    api.buy(ref)
    api.buy(ref, is_return=True)
    counted = api.labels(ref)
    assert (counted["purchased"], counted["returns"]) == (2, 1)


def test_concurrent_purchases_are_each_one_label(api, ref):
    quoted = api.ok("POST", "/shipments", shipment_body(ref))
    body = {"rate": quoted["rates"][1]["object_id"], "async": False, "metadata": ref}
    with ThreadPoolExecutor(max_workers=8) as pool:
        bought = list(pool.map(lambda _: api.ok("POST", "/transactions", body), range(8)))

    assert len({t["object_id"] for t in bought}) == 8
    assert len({t["tracking_number"] for t in bought}) == 8
    assert api.labels(ref)["purchased"] == 8
