#!/usr/bin/env python3
"""Receives callvault's webhook events: checks each Standard Webhooks signature, drops
duplicates, and for every `archived` event reads the recording's files from a local archive
and checks their sha256 against the event; an `erased` event lists what to forget, a
`verify_failed` one what is damaged; a type it does not know is acknowledged and ignored.
Python 3 standard library only.

    CALLVAULT_WEBHOOK_SECRET=whsec_... python3 consume_events.py --port 9000 --archive ./archive
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import pathlib
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_SECONDS = 300
MAX_BODY = 4 * 1024 * 1024


def signing_key(secret):
    if not secret.startswith("whsec_"):
        raise SystemExit("CALLVAULT_WEBHOOK_SECRET must start with whsec_")
    return base64.b64decode(secret[len("whsec_"):])


def verify(key, headers, body):
    """True when one of the v1 signatures matches and the timestamp is recent."""
    msg_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for candidate in headers.get("webhook-signature", "").split():
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False


def fetch(archive, key):
    """The object at `key` (local archive; use your S3 or Azure SDK's GET elsewhere)."""
    return (archive / key).read_bytes()


def handle_archived(archive, event):
    data = event["data"]
    manifest = fetch(archive, data["manifest"]["key"])
    print(f"{event['subject']}: manifest {data['manifest']['key']} ({len(manifest)} bytes)")
    for chunk in data.get("chunks", []):
        for part in ("media", "metadata"):
            obj = chunk[part]
            body = fetch(archive, obj["key"])
            ok = len(body) == obj["bytes"] and hashlib.sha256(body).hexdigest() == obj["sha256"]
            print(f"  chunk {chunk['index']} {part}: {obj['key']} {'ok' if ok else 'MISMATCH'}")
    # Hand the files to transcription or indexing here.


def handle_erased(archive, event):
    """Forget the recording: delete every copy and transcript made of the objects it lists."""
    data = event["data"]
    print(f"{event['subject']}: erased by {data['actor']} ({data['origin']}): {data['reason']}")
    for obj in data.get("objects", []):
        print(f"  delete what was made of {obj['key']} (sha256 {obj['sha256']})")
    tombstone = fetch(archive, data["tombstone"]["key"])
    ok = hashlib.sha256(tombstone).hexdigest() == data["tombstone"]["sha256"]
    print(f"  tombstone {data['tombstone']['key']} {'ok' if ok else 'MISMATCH'}")


def handle_verify_failed(event):
    """An archived object is missing or altered: alert whoever keeps the archive."""
    data = event["data"]
    for obj in data.get("objects", []):
        expected = (obj.get("expected") or {}).get("sha256")
        found = (obj.get("found") or {}).get("sha256")
        print(f"{event['subject']}: {obj['problem']} {obj['key']} "
              f"(expected {expected}, found {found})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--archive", type=pathlib.Path, default=pathlib.Path("archive"))
    args = parser.parse_args()
    key = signing_key(os.environ.get("CALLVAULT_WEBHOOK_SECRET", ""))
    seen = set()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY:
                return self.answer(413)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            if not verify(key, headers, body):
                return self.answer(401)
            event = json.loads(body)
            if event["id"] in seen:  # at-least-once delivery: acknowledge a duplicate
                return self.answer(204)
            try:
                if event["type"] == "com.callvault.recording.archived":
                    handle_archived(args.archive, event)
                elif event["type"] == "com.callvault.recording.failed":
                    print(f"{event['subject']}: chunk {event['data']['chunkIndex']} "
                          f"{event['data']['state']}: {event['data']['reason']}")
                elif event["type"] == "com.callvault.recording.erased":
                    handle_erased(args.archive, event)
                elif event["type"] == "com.callvault.recording.verify_failed":
                    handle_verify_failed(event)
                else:  # a type added later: acknowledge it, do nothing
                    print(f"{event['subject']}: ignoring {event['type']}")
            except OSError as err:  # not readable yet: 503 makes callvault try again later
                print(f"cannot read the files: {err}")
                return self.answer(503)
            seen.add(event["id"])
            self.answer(204)

        def answer(self, status):
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_):
            pass

    print(f"listening on 127.0.0.1:{args.port}")
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
