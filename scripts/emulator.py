#!/usr/bin/env python3
"""Local AWS emulator for `make dev` and `make test`: moto's server, with DynamoDB serialised.

    .venv/bin/python scripts/emulator.py [--host 127.0.0.1] [--port 4566]
                                         [--ready-file PATH] [--log-file PATH] [--log-requests]
                                         [--exit-with-parent]
    .venv/bin/python scripts/emulator.py --wait [--ready-file PATH | --url URL]
                                         [--pid PID] [--timeout 30]

Serve mode runs the same WSGI app as `moto_server` (moto/server.py) on a threaded werkzeug
server, wrapped in one middleware: every DynamoDB and DynamoDB Streams request is handled
under a single lock.

WHY THE LOCK: moto's DynamoDB backend evaluates a ConditionExpression and then applies the
write as two separate Python steps, with no lock around them, while the werkzeug server
runs each request on its own thread. Two concurrent conditional writes can therefore both
pass their condition (two orders for one cart, an order both cancelled and shipped) even
though real DynamoDB makes each conditional write and each transaction atomic. Handling
one DynamoDB request at a time restores that guarantee, so the concurrency tests exercise
the product's conditions and not moto's races. The response body is materialised inside
the lock because moto builds it lazily from live backend state. SQS, EventBridge and the
rest stay fully concurrent (long polls must not block the table).

WHY THE STREAM PATCH: moto's TransactWriteItems deep-copies every table it names before
it starts and, when the transaction is cancelled (a condition that did not hold: a replayed
create, a redelivered reservation), puts the copy back in the table's place. The copy
carries a copy of the table's stream shard, so every shard iterator already handed out
(the local stack's stream poller holds one) keeps reading the old shard, which never grows
again: the event pipeline silently stops. `_keep_streams_across_rollbacks` gives the
restored table the live shard back, without the records of the writes it rolled back, and
spares the copy of the stream's records (which also made every transaction slower as the
stream grew).

Outside that lock, a second middleware counts and times the DynamoDB requests at
`/_bench/requests` and `/_bench/timings` (for `make bench` and `make load`; see below).

`--port 0` binds a free port; with `--ready-file` the URL actually bound is written there
once the socket listens, which is how scripts/with-emulator.sh avoids port races.

Wait mode polls until an emulator answers a DynamoDB ListTables (URL from --url, or read from
--ready-file once it appears), prints its URL and exits 0; exits 1 after --timeout seconds
or as soon as process --pid has died.

Stops cleanly on SIGTERM and SIGINT (exit status 0). Everything is in memory: a restart is
a new, empty AWS.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request

SERIALISED_TARGET_PREFIXES = ("DynamoDB_", "DynamoDBStreams_")


class SerialiseDynamoDB:
    """WSGI middleware: one DynamoDB / DynamoDB Streams request at a time (see module doc)."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith(SERIALISED_TARGET_PREFIXES):
            return self.app(environ, start_response)

        # Read the request body before taking the lock so that a slow client cannot
        # hold every other DynamoDB caller up while it sends.
        body = _read_body(environ)
        if body is not None:
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))

        waiting = time.perf_counter()
        with self.lock:
            serving = time.perf_counter()
            result = self.app(environ, start_response)
            try:
                chunks = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            # For CountRequests' timings (make load): queueing and serving, apart.
            environ[LOCK_WAIT_KEY] = serving - waiting
            environ[SERVICE_KEY] = time.perf_counter() - serving
        return [chunks]


# --- make bench / make load: DynamoDB request counting and timing ---------------------------
# `GET /_bench/requests` answers every DynamoDB / DynamoDB Streams request seen since the last
# `POST /_bench/reset` (at most BENCH_MAX_RECORDS, oldest dropped): its X-Amz-Target, the
# tables its body names, its HTTP status, the ConsumedCapacity its response carried, if any,
# and its timing (below); plus counts per target. Used by bench/ to count DynamoDB requests
# per API call.
# `GET /_bench/timings` answers, per operation (the target's last part: GetItem, Query…),
# the durations in milliseconds of every request since the last reset (at most
# BENCH_MAX_TIMINGS per operation, oldest dropped), as three parallel lists:
#   total_ms    from the request's arrival in the WSGI app (before its body is read) to its
#               response being ready: what the emulator adds to the caller's latency;
#   wait_ms     of which waiting for the DynamoDB lock (queueing behind other requests);
#   service_ms  of which moto working on it, under the lock.
# Used by bench/'s `load` to put the emulator's own latency beside the API's.
# It only reads what passes by: it takes its own small lock, never the DynamoDB lock, and
# changes neither request nor response. ("_bench" can never be an S3 bucket name, so no clash.)

BENCH_PATH_PREFIX = "/_bench/"
BENCH_MAX_RECORDS = 10_000
BENCH_MAX_TIMINGS = 1_000_000
# Where SerialiseDynamoDB leaves its two durations (seconds) for CountRequests.
LOCK_WAIT_KEY = "orders.emulator.lock_wait"
SERVICE_KEY = "orders.emulator.service"


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
        if path.startswith(BENCH_PATH_PREFIX):
            return self._control(environ, path, start_response)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith(SERIALISED_TARGET_PREFIXES):
            return self.app(environ, start_response)

        arrived = time.perf_counter()
        body = _read_body(environ)
        if body is not None:
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        record = {"target": target, "tables": _tables_named(body), "status": None}

        def recording_start_response(status, headers, exc_info=None):
            record["status"] = int(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        result = self.app(environ, recording_start_response)
        try:
            chunks = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
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
            del self.records[:-BENCH_MAX_RECORDS]
            timing = self.timings.setdefault(operation, {"total_ms": [], "wait_ms": [], "service_ms": []})
            for name, value in (("total_ms", total_ms), ("wait_ms", wait_ms), ("service_ms", service_ms)):
                samples = timing[name]
                samples.append(round(value, 3))
                del samples[:-BENCH_MAX_TIMINGS]
        return [chunks]

    def _control(self, environ, path, start_response):
        import json

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
    import json

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


def _consumed_capacity(response: bytes):
    import json

    if b"ConsumedCapacity" not in response:
        return None
    try:
        return json.loads(response).get("ConsumedCapacity")
    except (ValueError, AttributeError):
        return None


def _keep_streams_across_rollbacks() -> None:
    """Patches moto's DynamoDB so that a cancelled transaction leaves streams readable.

    See the module doc (WHY THE STREAM PATCH). The copy moto takes shares the live shard
    instead of copying it; if the transaction is cancelled, the shard loses the records of
    the writes the rollback undid, and follows the restored table.
    """
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import StreamShard

    # deepcopy(table) keeps the shard itself (and so every iterator's view of it).
    StreamShard.__deepcopy__ = lambda self, memo: self

    cancel = DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        before = {
            name: (table, table.stream_shard, len(table.stream_shard.items))
            for name, table in self.tables.items()
            if table.stream_shard is not None
        }
        try:
            return cancel(self, transact_items)
        except Exception:
            for name, (table, shard, length) in before.items():
                restored = self.tables.get(name)
                if restored is not None and restored is not table:
                    del shard.items[length:]
                    shard.table = restored
                    restored.stream_shard = shard
            raise

    DynamoDBBackend.transact_write_items = transact_write_items


def _read_body(environ) -> bytes | None:
    stream = environ.get("wsgi.input")
    if stream is None:
        return None
    length = environ.get("CONTENT_LENGTH") or ""
    if length.isdigit():
        return stream.read(int(length))
    if environ.get("wsgi.input_terminated"):  # chunked transfer encoding
        return stream.read()
    return None


def _exit_on_signal(signum, frame):
    raise SystemExit(0)


def _watch_parent(parent_pid: int) -> None:
    """Stop the emulator when the process that started it is gone (even after SIGKILL)."""
    while True:
        time.sleep(1)
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGTERM)
            return


def serve(args) -> int:
    # Quiet by default: werkzeug logs every request at INFO, and the startup banner too.
    werkzeug_logger = logging.getLogger("werkzeug")
    if args.log_file:
        handler = logging.FileHandler(args.log_file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        werkzeug_logger.addHandler(handler)
    werkzeug_logger.setLevel(logging.INFO if args.log_requests else logging.WARNING)

    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    if args.exit_with_parent:
        threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()

    # Imported here so that --wait does not pay for importing moto.
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    _keep_streams_across_rollbacks()
    app = CountRequests(SerialiseDynamoDB(DomainDispatcherApplication(create_backend_app)))
    try:
        # What werkzeug's run_simple(threaded=True) does, minus the reloader and banner,
        # so that the bound port is known before serving.
        server = make_server(
            args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler
        )
    except OSError as err:
        print(
            f"emulator: cannot listen on {args.host}:{args.port}: {err.strerror or err}"
            " (another emulator running? pick another port, or point AWS_ENDPOINT_URL"
            " at the running one)",
            file=sys.stderr,
        )
        return 2

    host, port = server.server_address[:2]
    url = f"http://{host}:{port}"
    # moto uses MOTO_PORT when it calls itself (as moto_server does).
    os.environ.setdefault("MOTO_PORT", str(port))
    if args.ready_file:
        tmp = f"{args.ready_file}.tmp"
        with open(tmp, "w") as f:
            f.write(url + "\n")
        os.replace(tmp, args.ready_file)  # atomic: readers never see a partial URL
    print(f"emulator: moto listening on {url} (DynamoDB requests serialised)", file=sys.stderr, flush=True)

    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()
    return 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _answers(url: str) -> bool:
    # An unsigned request would be routed to S3: send a dummy SigV4 header naming DynamoDB.
    request = urllib.request.Request(
        url,
        data=b"{}",
        method="POST",
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
            "Authorization": "AWS4-HMAC-SHA256 Credential=test/20200101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status == 200 and b"TableNames" in response.read()
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait(args) -> int:
    deadline = time.monotonic() + args.timeout
    url = args.url
    delay = 0.02
    while True:
        if args.pid and not _pid_alive(args.pid):
            print(f"emulator: process {args.pid} exited before it was ready", file=sys.stderr)
            return 1
        if url is None and args.ready_file and os.path.exists(args.ready_file):
            with open(args.ready_file) as f:
                url = f.read().strip() or None
        if url is not None and _answers(url):
            print(url)
            return 0
        if time.monotonic() >= deadline:
            print(f"emulator: not ready after {args.timeout:g} s", file=sys.stderr)
            return 1
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("MOTO_PORT", "4566")),
        help="port to bind, 0 for any free one (default $MOTO_PORT or 4566)",
    )
    parser.add_argument("--ready-file", help="write the bound URL here once listening (serve); read it (--wait)")
    parser.add_argument("--log-file", help="append werkzeug logs (errors; requests with --log-requests) here")
    parser.add_argument("--log-requests", action="store_true", help="log every request")
    parser.add_argument("--exit-with-parent", action="store_true", help="stop when the parent process dies")
    parser.add_argument("--wait", action="store_true", help="wait for an emulator to answer, print its URL")
    parser.add_argument("--url", help="(--wait) the emulator's URL")
    parser.add_argument("--pid", type=int, help="(--wait) give up as soon as this process has died")
    parser.add_argument("--timeout", type=float, default=30.0, help="(--wait) seconds, default 30")
    args = parser.parse_args(argv)

    if args.wait:
        if not (args.url or args.ready_file):
            parser.error("--wait needs --url or --ready-file")
        return wait(args)
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
