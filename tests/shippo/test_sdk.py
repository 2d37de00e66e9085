"""The stand-in as Shippo's official Python SDK (shippo 3.9.0) sees it: shipments, rates
and tracks decode into the SDK's own models. (Its Transaction model decodes no body at
all, so transactions, refunds and webhooks are checked against JSON Schemas instead:
test_labels.py, test_webhooks.py.)"""

import json
import urllib.error
import urllib.request
import uuid
from decimal import Decimal

import pytest
import shippo
from shippo import utils
from shippo.models import components, errors

from conftest import PARCEL, TOKEN, WAREHOUSE, customer, validate


def create_request(metadata, zip_code="10001", is_return=False):
    return components.ShipmentCreateRequest(
        address_from=components.AddressCreateRequest(**WAREHOUSE),
        address_to=components.AddressCreateRequest(**customer(zip_code)),
        parcels=[components.ParcelCreateRequest(
            length=PARCEL["length"], width=PARCEL["width"], height=PARCEL["height"],
            distance_unit=components.DistanceUnitEnum.IN, weight=PARCEL["weight"],
            mass_unit=components.WeightUnitEnum.LB)],
        extra=components.ShipmentExtra(is_return=True) if is_return else None,
        metadata=metadata,
        async_=False,
    )


def test_a_shipment_with_async_false_decodes_with_its_rates(sdk, api, ref):
    shipment = sdk.shipments.create(create_request(ref))

    assert shipment.status == components.ShipmentStatus.SUCCESS
    assert shipment.metadata == ref
    assert shipment.address_to.zip == "10001" and shipment.address_from.city == "San Francisco"
    assert shipment.parcels[0].weight == "2" and shipment.parcels[0].mass_unit.value == "lb"
    tokens = {r.servicelevel.token: r for r in shipment.rates}
    assert set(tokens) == {"usps_ground_advantage", "usps_priority", "usps_priority_express",
                           "ups_ground"}
    for rate in shipment.rates:
        assert rate.shipment == shipment.object_id
        assert rate.currency == "USD" and Decimal(rate.amount) > 0
        assert rate.provider in ("USPS", "UPS")  # display names; carriers are tokens
    cheapest = [r for r in shipment.rates if components.Attributes.CHEAPEST in r.attributes]
    assert len(cheapest) == 1
    assert cheapest[0].amount == min((r.amount for r in shipment.rates), key=Decimal)
    # The raw body has exactly Shippo's fields too.
    validate("Shipment", api.ok("GET", "/shipments/" + shipment.object_id))


def test_a_heavier_parcel_costs_more(sdk, ref):
    light = sdk.shipments.create(create_request(ref))
    request = create_request(ref)
    request.parcels[0].weight = "10"
    heavy = sdk.shipments.create(request)

    def price(shipment, token):
        return Decimal(next(r.amount for r in shipment.rates if r.servicelevel.token == token))

    assert price(heavy, "usps_priority") > price(light, "usps_priority")


def test_a_return_shipment_keeps_is_return(sdk, ref):
    shipment = sdk.shipments.create(create_request(ref, is_return=True))
    assert shipment.extra.is_return is True
    assert shipment.rates


def test_an_address_without_rates_answers_no_rate_and_the_carriers_messages(sdk, ref):
    shipment = sdk.shipments.create(create_request(ref, zip_code="00000"))

    assert shipment.status == components.ShipmentStatus.SUCCESS
    assert shipment.rates == []
    assert {m.source for m in shipment.messages} == {"USPS", "UPS"}
    assert all(m.text for m in shipment.messages)


def test_async_shipments_answer_queued_then_rated(sdk, ref):
    request = create_request(ref)
    request.async_ = True
    queued = sdk.shipments.create(request)
    assert queued.status == components.ShipmentStatus.QUEUED and queued.rates == []

    rated = sdk.shipments.get(queued.object_id)
    assert rated.status == components.ShipmentStatus.SUCCESS and len(rated.rates) == 4


def test_a_registered_number_is_tracked_as_unknown_until_the_carrier_reports(sdk, api, ref):
    number = "9400" + str(uuid.uuid4().int)[:18]
    track = sdk.tracking_status.create(carrier="usps", tracking_number=number, metadata=ref)
    assert track.carrier == "usps" and track.metadata == ref
    assert track.tracking_status.status == components.TrackingStatusEnum.UNKNOWN
    assert track.tracking_history == []

    api.ok("POST", "/_control/tracks/usps/" + number,
           {"status": "TRANSIT", "status_date": "2026-12-01T10:00:00Z", "deliver": False,
            "location": {"city": "Memphis", "state": "TN", "zip": "38118", "country": "US"}})
    moved = sdk.tracking_status.get(tracking_number=number, carrier="usps")
    assert moved.tracking_status.status == components.TrackingStatusEnum.TRANSIT
    assert moved.tracking_status.location.city == "Memphis"
    assert moved.tracking_status.status_date.isoformat() == "2026-12-01T10:00:00+00:00"
    assert [s.status.value for s in moved.tracking_history] == ["TRANSIT"]


def test_a_label_bought_here_is_tracked_from_pre_transit(sdk, api, ref):
    _, transaction = api.buy(ref)
    track = sdk.tracking_status.get(tracking_number=transaction["tracking_number"], carrier="usps")

    assert track.transaction == transaction["object_id"]
    assert track.servicelevel.token == "usps_ground_advantage"
    assert track.tracking_status.status == components.TrackingStatusEnum.PRE_TRANSIT
    assert track.address_to.zip == "10001" and track.eta is not None


def test_shippo_test_numbers_answer_their_fixed_status(sdk):
    for status in ("PRE_TRANSIT", "TRANSIT", "DELIVERED", "RETURNED", "FAILURE", "UNKNOWN"):
        track = sdk.tracking_status.get(tracking_number="SHIPPO_" + status, carrier="shippo")
        assert track.tracking_status.status.value == status


def test_an_unknown_carrier_is_refused_as_shippo_does(sdk, api):
    with pytest.raises(errors.SDKError) as refused:
        sdk.tracking_status.get(tracking_number="123", carrier="pony_express")
    assert refused.value.status_code == 400
    body = json.loads(refused.value.body)
    assert body == {"carrier": ['"pony_express" is not a valid choice.']}
    validate("BadRequest", body)


@pytest.mark.parametrize("header_token, detail", [
    ("shippo_live_not_ours", "Invalid token."),
    (None, "Authentication credentials were not provided."),
])
def test_a_wrong_or_missing_token_is_401_with_shippos_body(standin_url, api, header_token, detail):
    if header_token:
        client = shippo.Shippo(api_key_header="ShippoToken " + header_token, server_url=standin_url)
        with pytest.raises(errors.SDKError) as refused:
            client.tracking_status.get(tracking_number="SHIPPO_TRANSIT", carrier="shippo")
        assert refused.value.status_code == 401
        assert json.loads(refused.value.body) == {"detail": detail}
    else:
        assert api.call("GET", "/tracks/shippo/SHIPPO_TRANSIT", token=None) == (401, {"detail": detail})


def test_the_token_scheme_must_be_shippotoken(api):
    # Bearer is not Shippo's scheme for API tokens.
    request = urllib.request.Request(api.url + "/tracks/shippo/SHIPPO_TRANSIT",
                                     headers={"Authorization": "Bearer " + TOKEN})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401


def test_the_sdk_decode_has_teeth():
    """A status Shippo never sends, or a missing required field, fails the SDK's decode:
    so the decodes above prove something."""
    good = {"carrier": "usps", "tracking_number": "1", "messages": [], "tracking_history": [],
            "tracking_status": {"object_id": "x", "object_created": "2026-12-01T10:00:00Z",
                                "object_updated": "2026-12-01T10:00:00Z", "status": "TRANSIT",
                                "status_details": "moving"}}
    assert utils.unmarshal_json(json.dumps(good), components.Track).tracking_status.status.value == "TRANSIT"

    lost = json.loads(json.dumps(good))
    lost["tracking_status"]["status"] = "LOST"
    with pytest.raises(Exception):
        utils.unmarshal_json(json.dumps(lost), components.Track)
    missing = dict(good)
    del missing["tracking_history"]
    with pytest.raises(Exception):
        utils.unmarshal_json(json.dumps(missing), components.Track)
