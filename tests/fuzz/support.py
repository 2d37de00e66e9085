#!/usr/bin/env python3
"""Helpers for scripts/fuzz.sh (the schemathesis run of `make test`).

    support.py cart-api --ready-file PATH   a stand-in Shopping Cart API on a free port
    support.py token --secret S --sub SUB [--scope SCOPE]   an HS256 bearer token (1 h)
    support.py free-port                     a free loopback TCP port

The cart API answers `GET /api/carts/{cart_id}` for ANY cart id with a one-line USD cart
of the user `fuzzer` (the sub of the tokens the fuzz run uses), so that the creates
schemathesis generates can succeed and its stateful phase can follow the links of
`POST /api/orders` to the order. The contract is the Shopping Cart API's as
docs/openapi.yaml and the README describe it; prices go out as decimal JSON text.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import socket
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CART_USER = "fuzzer"


class CartApi(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        prefix = "/api/carts/"
        path = urllib.parse.urlsplit(self.path).path
        if not path.startswith(prefix) or "/" in path[len(prefix) :]:
            self._send(404, '{"message":"not found"}')
            return
        cart_id = urllib.parse.unquote(path[len(prefix) :])
        body = (
            '{"cart_id":%s,"user_id":"%s","currency":"USD","items":'
            '[{"product_id":"p001","name":"USB Cable","quantity":2,"price":10.00}]}'
        ) % (json.dumps(cart_id), CART_USER)
        self._send(200, body)

    def _send(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


def serve_cart_api(ready_file: str) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), CartApi)
    with open(ready_file + ".tmp", "w") as f:
        f.write(f"http://127.0.0.1:{server.server_address[1]}")
    os.replace(ready_file + ".tmp", ready_file)
    server.serve_forever()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(secret: str, sub: str, scope: str, seconds: int = 3600) -> str:
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    now = int(time.time())
    claims = {"sub": sub, "iat": now, "exp": now + seconds}
    if scope:
        claims["scope"] = scope
    payload = b64(json.dumps(claims).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"


def main() -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    cart = sub.add_parser("cart-api")
    cart.add_argument("--ready-file", required=True)
    tok = sub.add_parser("token")
    tok.add_argument("--secret", required=True)
    tok.add_argument("--sub", required=True)
    tok.add_argument("--scope", default="")
    sub.add_parser("free-port")
    args = parser.parse_args()
    if args.command == "cart-api":
        serve_cart_api(args.ready_file)
    elif args.command == "token":
        print(token(args.secret, args.sub, args.scope))
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            print(s.getsockname()[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
