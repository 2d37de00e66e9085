"""Reading back what SES on the emulator sent, for `make dev` (which prints each message)
and the tests (tests/src/lib.rs: `sent_emails`).

`GET /_ses/messages[?to=ADDRESS][&after=N]` answers `{"count": <messages sent so far>,
"messages": [...]}`: every message SES (v1 or v2) accepted, oldest first, each
`{"index", "id", "from", "to": [...], "subject", "text", "html", "attachments":
[{"filename", "content_type", "size", "content_base64"}]}`, its MIME parsed here;
`to` keeps the messages to that address, `after` those past the first N (for polling).

moto keeps sent messages in its SES backends (`sent_messages`, which it documents as
the way to check what was sent) but has no API to read them; this middleware reads
them in place and changes nothing. ("_ses" can never be an S3 bucket name.)
"""

from __future__ import annotations

import base64
import email
import email.policy
import json
from urllib.parse import parse_qs

PATH = "/_ses/messages"


def _sent():
    from moto.ses.models import ses_backends

    messages = []
    for account in list(ses_backends.keys()):
        for region in list(ses_backends[account].keys()):
            messages.extend(ses_backends[account][region].sent_messages)
    return messages


def _describe(index: int, message) -> dict:
    described = {
        "index": index,
        "id": message.id,
        "from": message.source,
        "to": [],
        "subject": None,
        "text": None,
        "html": None,
        "attachments": [],
    }
    raw = getattr(message, "raw_data", None)
    if raw is None:  # SendEmail with simple content
        destinations = message.destinations or {}
        described["to"] = list(destinations.get("ToAddresses", []))
        described["subject"] = message.subject
        described["text"] = message.body
        return described
    parsed = email.message_from_string(raw, policy=email.policy.default)
    described["to"] = [str(a.addr_spec) for a in parsed["to"].addresses] if parsed["to"] else []
    described["subject"] = str(parsed["subject"] or "")
    for part in parsed.walk():
        if part.is_multipart():
            continue
        if part.get_content_disposition() == "attachment":
            payload = part.get_payload(decode=True) or b""
            described["attachments"].append(
                {
                    "filename": part.get_filename(),
                    "content_type": part.get_content_type(),
                    "size": len(payload),
                    "content_base64": base64.b64encode(payload).decode("ascii"),
                }
            )
        elif part.get_content_type() == "text/plain" and described["text"] is None:
            described["text"] = part.get_content()
        elif part.get_content_type() == "text/html" and described["html"] is None:
            described["html"] = part.get_content()
    return described


class SentEmails:
    """WSGI middleware: answers `GET /_ses/messages`; passes everything else on."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "") != PATH:
            return self.app(environ, start_response)
        query = parse_qs(environ.get("QUERY_STRING", ""))
        to = (query.get("to") or [None])[0]
        after = int((query.get("after") or ["0"])[0] or 0)
        sent = _sent()
        messages = []
        for index, message in enumerate(sent):
            if index < after:
                continue
            described = _describe(index, message)
            if to is None or any(to.lower() in address.lower() for address in described["to"]):
                messages.append(described)
        body = json.dumps({"count": len(sent), "messages": messages}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]
