#!/usr/bin/env python3
"""localstripe (the stateful Stripe stand-in, pinned in requirements-dev.txt) for `make dev`
and `make test`.

Usage:
  stripe_standin.py --port 0 --ready-file FILE [--exit-with-parent]
      serve on 127.0.0.1 (port 0: a free one), write the base URL to FILE once listening
  stripe_standin.py --wait --ready-file FILE --pid PID [--timeout 30]
      print the URL once FILE exists and the server answers

Three changes to localstripe as it ships, all for running several at once on one
machine: it binds 127.0.0.1 (not every interface) on the port asked; it keeps its
objects in memory only, instead of pickling the whole store into /tmp/localstripe.pickle
on every write (a file every instance would share); and it posts an event to every
webhook endpoint registered for it at once, each with a 10 s timeout, instead of one
after another with aiohttp's 5-minute default. Every test registers its own endpoint at
the one shared instance, so with the shipped loop one endpoint that stopped answering
(a finished test's) held back every later endpoint's events, and a timeout, which is not
a ClientError, dropped them.
"""

import argparse
import os
import socket
import sys
import threading
import time
import urllib.request


def send_to_every_endpoint(event):
    """localstripe.webhooks._send_webhook, with the endpoints posted to concurrently."""
    import asyncio
    import hashlib
    import hmac
    import json
    import logging

    import aiohttp
    import localstripe.webhooks as webhooks

    async def send():
        payload = json.dumps(event._export(), indent=2, sort_keys=True).encode("utf-8")
        signed_payload = b"%d.%s" % (event.created, payload)
        # As localstripe does: the event is not sent before the call that made it answers.
        await asyncio.sleep(1)
        logger = logging.getLogger("aiohttp.access")

        async def post(session, webhook):
            signature = hmac.new(
                webhook.secret.encode("utf-8"), signed_payload, hashlib.sha256
            ).hexdigest()
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "Stripe-Signature": "t=%d,v1=%s" % (event.created, signature),
            }
            try:
                async with session.post(webhook.url, data=payload, headers=headers) as r:
                    logger.info('webhook "%s" to %s: %d', event.type, webhook.url, r.status)
            except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                logger.info('webhook "%s" to %s failed: %r', event.type, webhook.url, e)

        endpoints = [
            w
            for w in list(webhooks._webhooks.values())
            if w.events is None or event.type in w.events
        ]
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await asyncio.gather(*(post(session, w) for w in endpoints))

    return send()


def serve(args):
    import localstripe.resources as resources
    import localstripe.webhooks as webhooks
    from aiohttp import web
    from localstripe.server import app

    resources.Store.dump_to_disk = lambda self: None
    resources.Store.try_load_from_disk = lambda self: None
    webhooks._send_webhook = send_to_every_endpoint

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    url = "http://127.0.0.1:%d" % sock.getsockname()[1]

    if args.exit_with_parent:
        parent = os.getppid()

        def watch():
            while os.getppid() == parent:
                time.sleep(1)
            os._exit(0)

        threading.Thread(target=watch, daemon=True).start()

    async def ready(_app):
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(url)
        os.replace(tmp, args.ready_file)

    app.on_startup.append(ready)
    web.run_app(app, sock=sock, print=None, access_log=None)


def wait(args):
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        try:
            os.kill(args.pid, 0)
        except OSError:
            sys.exit("localstripe exited before it was ready")
        if os.path.exists(args.ready_file):
            with open(args.ready_file) as f:
                url = f.read().strip()
            request = urllib.request.Request(
                url + "/v1/customers", headers={"Authorization": "Bearer sk_test_ready"}
            )
            try:
                with urllib.request.urlopen(request, timeout=1) as response:
                    if response.status == 200:
                        print(url)
                        return
            except OSError:
                pass
        time.sleep(0.1)
    sys.exit("localstripe did not answer within %ss" % args.timeout)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--exit-with-parent", action="store_true")
    parser.add_argument("--wait", action="store_true")
    parser.add_argument("--pid", type=int)
    parser.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args()
    if args.wait:
        wait(args)
    else:
        serve(args)


if __name__ == "__main__":
    main()
