"""The bench counters of scripts/emulator.py: DynamoDB requests counted and timed, for
`make bench` and `make load` (bench/src/emulator.rs is their client).

`GET /_bench/requests` answers every DynamoDB / DynamoDB Streams request seen since the last
`POST /_bench/reset` (at most MAX_RECORDS, oldest dropped): its X-Amz-Target, the tables its
body names, its HTTP status, whether a read was strongly consistent (`consistent`) and how many
items a transaction or batch named (`items`), the ConsumedCapacity its response carried, if any,
and its timing (below); plus counts per target. Used by `bench` to count DynamoDB requests per API call.

`GET /_bench/timings` answers, per operation (the target's last part: GetItem, Query…), the
durations in milliseconds of every request since the last reset (at most MAX_TIMINGS per
operation, oldest dropped), as three parallel lists:
  total_ms    from the request's arrival in the WSGI app (before its body is read) to its
              response being ready: what the emulator adds to the caller's latency;
  wait_ms     of which waiting for the DynamoDB lock (queueing behind other requests);
  service_ms  of which moto working on it, under the lock.
Used by `load` to put the emulator's own latency beside the API's.

`CountRequests` wraps the DynamoDB lock (emulator_moto.SerialiseDynamoDB), outside it: it only
reads what passes by, takes its own small lock, never the DynamoDB lock, and changes neither
request nor response. ("_bench" can never be an S3 bucket name, so no clash.)
"""

from __future__ import annotations

import json
import threading
import time

from emulator_moto import LOCK_WAIT_KEY, SERVICE_KEY, is_dynamodb, materialise, read_body

PATH_PREFIX = "/_bench/"
MAX_RECORDS = 10_000
MAX_TIMINGS = 1_000_000


class CountRequests:
    """WSGI middleware: records and times DynamoDB requests for `make bench` and `make load`."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.records: list[dict] = []
        # operation -> {"total_ms": [...], "wait_ms": [...], "service_ms": [...]}
        self.timings: dict[str, dict[str, list[float]]] = {}

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(PATH_PREFIX):
            return self._control(environ, path, start_response)
        if not is_dynamodb(environ):
            return self.app(environ, start_response)

        arrived = time.perf_counter()
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        body = read_body(environ)
        record = {"target": target, "tables": _tables_named(body), "status": None, **_shape(body)}

        def recording_start_response(status, headers, exc_info=None):
            record["status"] = int(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        chunks = materialise(self.app(environ, recording_start_response))
        total_ms = (time.perf_counter() - arrived) * 1000
        wait_ms = environ.get(LOCK_WAIT_KEY, 0.0) * 1000
        service_ms = environ.get(SERVICE_KEY, 0.0) * 1000
        record["consumed_capacity"] = _consumed_capacity(chunks)
        record["total_ms"] = round(total_ms, 3)
        record["wait_ms"] = round(wait_ms, 3)
        record["service_ms"] = round(service_ms, 3)
        operation = target.rsplit(".", 1)[-1]
        with self.lock:
            self.records.append(record)
            del self.records[:-MAX_RECORDS]
            timing = self.timings.setdefault(operation, {"total_ms": [], "wait_ms": [], "service_ms": []})
            for name, value in (("total_ms", total_ms), ("wait_ms", wait_ms), ("service_ms", service_ms)):
                samples = timing[name]
                samples.append(round(value, 3))
                del samples[:-MAX_TIMINGS]
        return [chunks]

    def _control(self, environ, path, start_response):
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/_bench/requests" and method == "GET":
            with self.lock:
                records = list(self.records)
            counts: dict[str, int] = {}
            for r in records:
                counts[r["target"]] = counts.get(r["target"], 0) + 1
            payload = json.dumps({"requests": records, "counts": counts}).encode()
            status = "200 OK"
        elif path == "/_bench/timings" and method == "GET":
            with self.lock:
                timings = {op: {k: list(v) for k, v in t.items()} for op, t in self.timings.items()}
            payload = json.dumps({"operations": timings}).encode()
            status = "200 OK"
        elif path == "/_bench/reset" and method == "POST":
            with self.lock:
                self.records.clear()
                self.timings.clear()
            payload, status = b"{}", "200 OK"
        else:
            payload, status = b'{"message": "unknown bench endpoint"}', "404 Not Found"
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]


def _tables_named(body: bytes | None) -> list[str]:
    """TableName, or the tables of RequestItems / TransactItems."""
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return []
    if not isinstance(request, dict):
        return []
    if isinstance(request.get("TableName"), str):
        return [request["TableName"]]
    tables = list(request.get("RequestItems") or {})
    for item in request.get("TransactItems") or []:
        for op in (item or {}).values():
            if isinstance(op, dict) and isinstance(op.get("TableName"), str):
                tables.append(op["TableName"])
    return sorted(set(tables))


def _shape(body: bytes | None) -> dict:
    """What a request's capacity depends on besides item sizes: `consistent`, whether a
    read asked for strong consistency (GetItem, Query, Scan; BatchGetItem if any of its
    tables did), and `items`, how many items a transaction or batch names."""
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return {}
    if not isinstance(request, dict):
        return {}
    shape = {}
    if "ConsistentRead" in request:
        shape["consistent"] = request["ConsistentRead"] is True
    batch = request.get("RequestItems")
    if isinstance(batch, dict):
        reads = [r for r in batch.values() if isinstance(r, dict)]
        if reads:
            shape["consistent"] = any(r.get("ConsistentRead") is True for r in reads)
            shape["items"] = sum(len(r.get("Keys") or []) for r in reads)
        else:
            shape["items"] = sum(len(w) for w in batch.values() if isinstance(w, list))
    if isinstance(request.get("TransactItems"), list):
        shape["items"] = len(request["TransactItems"])
    return shape


def _consumed_capacity(response: bytes):
    if b"ConsumedCapacity" not in response:
        return None
    try:
        return json.loads(response).get("ConsumedCapacity")
    except (ValueError, AttributeError):
        return None
