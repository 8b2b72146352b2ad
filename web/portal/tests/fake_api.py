"""An in-memory stand-in for the analysis API (issue 8's contract), served to the site's real
`ApiClient` through `httpx.MockTransport`. It enforces what the site relies on: bearer tokens,
per-user isolation (another user's upload or analysis is a 404), the admin-only user creation,
409 for results of an unfinished analysis, and the Idempotency-Key rules of `POST /v1/analyses`
and `POST /v1/uploads`. It can be told to fail those creations transiently (503, a dropped
connection). The end-to-end test runs against the real API."""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

PARAMETERS = {
    "defaults": {"min_snr": 0.0, "deconvolve": True, "charge_range": None, "ms_levels": [], "signal": "auto",
                 "max_missing": 1},
    "help": {
        "min_snr": {"type": "number", "default": 0.0, "help": "Minimum signal-to-noise of a centroid"},
        "deconvolve": {"type": "boolean", "default": True, "help": "Charge-state deconvolution"},
        "charge_range": {"type": "array[integer, integer] | null", "default": None,
                         "help": "Charges to consider, e.g. `1-8` or `1-60` for intact proteins"},
        "ms_levels": {"type": "array[integer]", "default": [], "help": "MS levels to keep, comma separated"},
        "signal": {"type": "string", "default": "auto", "choices": ["auto", "declared", "profile", "centroid"],
                   "help": "How to decide profile vs centroid"},
        "max_missing": {"type": "integer", "default": 1, "help": "Points that may be missing on each side"},
    },
    "presets": {
        "peptides": {"min_snr": 1.0, "charge_range": [1, 8]},
        "intact_protein": {"charge_range": [1, 60]},
        "metabolomics": {"ms_levels": [1], "deconvolve": False, "min_snr": 3.0},
    },
}

SPECTRA_COLUMNS = ["spectrum_index", "native_id", "ms_level", "rt_seconds", "signal", "n_points", "n_peaks", "tic",
                   "base_peak_mz", "precursor_mz", "precursor_charge", "n_features"]


@dataclass
class FakeApi:
    admin_token: str = "admin-token"
    users: dict[str, dict] = field(default_factory=dict)  # token -> user
    uploads: dict[int, dict] = field(default_factory=dict)
    upload_bodies: dict[int, bytes] = field(default_factory=dict)
    analyses: dict[int, dict] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    responses: list[httpx.Response] = field(default_factory=list)  # every answer given, in order
    # Called with the request before an upload is looked at; a response it returns is the answer
    # (the real API's checks of the received file: 413, 415).
    upload_hook: Any = None
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    # Idempotency keys, as the real API (keys of analyses and uploads apart):
    # (path, user id, key) -> (id of what the key created, the request's fingerprint).
    created_by_key: dict[tuple[str, int, str], tuple[int, str]] = field(default_factory=dict)
    # The next this many creations at a path ("/v1/analyses", "/v1/uploads") fail transiently:
    # 503, or the connection drops when `fail_with` is "connection". With a key and
    # `fail_after_commit`, after creating it: a COMMIT whose answer was lost.
    fail_creates: dict[str, int] = field(default_factory=dict)
    fail_after_commit: bool = False
    fail_with: str = "503"

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    # helpers for tests
    def add_user(self, email: str) -> str:
        token = f"token-{len(self.users) + 1}-{email}"
        self.users[token] = {"id": next(self.ids), "email": email, "is_admin": False}
        return token

    def add_analysis(self, token: str, status: str = "succeeded", error: str | None = None, **extra: Any) -> dict:
        a = {
            "id": next(self.ids), "name": extra.pop("name", None), "status": status, "upload_ids": [],
            "params": {"min_snr": 1.0}, "error": error, "backend": "local", "created_at": "2026-01-01T00:00:00Z",
            "started_at": None, "finished_at": None, "result_location": None,
            "summary": {"spectra_per_level": {"1": 2, "2": 1}, "spectra": 3, "peaks": 30, "features": 4, "warnings": []}
            if status == "succeeded" else None,
            "owner": self.users[token]["id"], **extra,
        }
        self.analyses[a["id"]] = a
        return a

    def keyed_create(self, request: httpx.Request, user: dict, table: dict[int, dict], fingerprint: Any,
                     create: Any) -> httpx.Response:
        """`create()` (the new id, or a refusal) under the real API's key rules: a repeat of the
        request with its key replays what the first one created (201, Idempotent-Replayed: true),
        the key with another request is 422, a key whose item was deleted is free again."""
        path, key = request.url.path, request.headers.get("Idempotency-Key")
        slot = (path, user["id"], key)
        if self.fail_creates.get(path):
            self.fail_creates[path] -= 1
            if self.fail_after_commit and key:
                created = create()
                if not isinstance(created, httpx.Response):
                    self.created_by_key[slot] = (created, fingerprint)
            if self.fail_with == "connection":
                raise httpx.ReadError("connection reset by peer", request=request)
            return self.err(503, "the database is unavailable; retry shortly")
        earlier = self.created_by_key.get(slot) if key else None
        if earlier is not None and earlier[0] in table:
            item_id, earlier_fingerprint = earlier
            if earlier_fingerprint != fingerprint:
                what = "upload" if path == "/v1/uploads" else "analysis"
                return self.err(422, f"Idempotency-Key {key!r} was already used for a different request "
                                     f"(it created {what} {item_id}); send a new key for a new request")
            return httpx.Response(201, json=self.public(table[item_id]), headers={"Idempotent-Replayed": "true"})
        created = create()
        if isinstance(created, httpx.Response):
            return created
        if key:
            self.created_by_key[slot] = (created, fingerprint)
        return httpx.Response(201, json=self.public(table[created]))

    def create_upload(self, filename: str, data: bytes, user: dict) -> int:
        up = {"id": next(self.ids), "filename": filename, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
              "format": "mgf" if filename.endswith(".mgf") else "mzml", "created_at": "2026-01-01T00:00:00Z",
              "owner": user["id"]}
        self.uploads[up["id"]] = up
        self.upload_bodies[up["id"]] = data
        return up["id"]

    def create(self, body: dict, user: dict) -> int:
        a = {"id": next(self.ids), "name": body.get("name"), "status": "queued", "upload_ids": body["upload_ids"],
             "params": {**PARAMETERS["defaults"], **body["params"]}, "error": None, "backend": "local",
             "created_at": "2026-01-01T00:00:00Z", "started_at": None, "finished_at": None,
             "result_location": None, "summary": None, "owner": user["id"]}
        self.analyses[a["id"]] = a
        return a["id"]

    # the HTTP side
    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = self.answer(request)
        self.responses.append(response)
        return response

    def answer(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path in ("/readyz", "/healthz"):
            return httpx.Response(200, json={"status": "ready"})
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ")
        if path == "/v1/users" and request.method == "POST":
            if token != self.admin_token:
                return self.err(403, "admin token required")
            body = json.loads(request.content)
            if any(u["email"] == body["email"] for u in self.users.values()):
                return self.err(409, f"user {body['email']} exists")
            new_token = f"secret-token-{body['email']}"
            user = {"id": next(self.ids), "email": body["email"], "is_admin": False}
            self.users[new_token] = user
            return httpx.Response(201, json={"id": user["id"], "email": user["email"], "token": new_token})
        if (m := re.fullmatch(r"/v1/users/([^/]+)/tokens", path)) and request.method == "POST":
            if token != self.admin_token:
                return self.err(403, "admin token required")
            for existing in list(self.users.values()):
                if m[1] in (existing["email"], str(existing["id"])):
                    new_token = f"another-token-{len(self.users)}-{existing['email']}"
                    self.users[new_token] = existing
                    return httpx.Response(201, json={"id": existing["id"], "email": existing["email"],
                                                     "token": new_token})
            return self.err(404, f"no user {m[1]}")
        user = self.users.get(token)
        if user is None:
            return self.err(401, "missing or unknown token")
        return self.route(request, user)

    @staticmethod
    def err(status: int, detail: str) -> httpx.Response:
        return httpx.Response(status, json={"detail": detail})

    def own(self, table: dict, item_id: int, user: dict) -> dict | None:
        item = table.get(item_id)
        return item if item is not None and item["owner"] == user["id"] else None

    @staticmethod
    def public(item: dict) -> dict:
        # "owner" and "_"-prefixed test settings (an analysis's `_indices`) are not the API's.
        return {k: v for k, v in item.items() if k != "owner" and not k.startswith("_")}

    def route(self, request: httpx.Request, user: dict) -> httpx.Response:
        path, method, q = request.url.path, request.method, request.url.params
        if path == "/v1/me":
            return httpx.Response(200, json=user)
        if path == "/v1/parameters":
            return httpx.Response(200, json=PARAMETERS)
        if path == "/v1/uploads" and method == "POST":
            if self.upload_hook and (refused := self.upload_hook(request)) is not None:
                return refused
            filename, data = parse_multipart(request)
            # The real API's fingerprint of an upload: the file's name and its SHA-256.
            fingerprint = (filename, hashlib.sha256(data).hexdigest())
            return self.keyed_create(request, user, self.uploads, fingerprint,
                                     lambda: self.create_upload(filename, data, user))
        if path == "/v1/uploads":
            # Newest first, a page of at most 1000 (the real API's limits).
            off, lim = int(q.get("offset", 0)), int(q.get("limit", 100))
            if not 1 <= lim <= 1000 or off < 0:
                return self.err(422, "query.limit: Input should be less than or equal to 1000")
            items = [self.public(u) for u in sorted(self.uploads.values(), key=lambda u: -u["id"])
                     if u["owner"] == user["id"]]
            return httpx.Response(200, json={"items": items[off:off + lim], "total": len(items), "limit": lim,
                                             "offset": off})
        if m := re.fullmatch(r"/v1/uploads/(\d+)", path):
            up = self.own(self.uploads, int(m[1]), user)
            if up is None:
                return self.err(404, f"upload {m[1]} not found")
            if method == "DELETE":
                busy = [a["id"] for a in self.analyses.values()
                        if up["id"] in a["upload_ids"] and a["status"] in ("queued", "running")]
                if busy:
                    return self.err(409, f"upload {up['id']} is used by unfinished analysis {busy[0]}")
                del self.uploads[up["id"]]
                return httpx.Response(204)
            return httpx.Response(200, json=self.public(up))
        if path == "/v1/analyses" and method == "POST":
            body = json.loads(request.content)

            def create() -> int | httpx.Response:
                for uid in body["upload_ids"]:
                    if self.own(self.uploads, uid, user) is None:
                        return self.err(404, f"upload {uid} not found")
                unknown = set(body["params"]) - set(PARAMETERS["help"])
                if unknown:
                    return self.err(422, f"unknown parameter {sorted(unknown)[0]!r}")
                if body["params"].get("min_snr", 0) < 0:
                    return self.err(422, "min_snr must be at least 0")
                return self.create(body, user)

            return self.keyed_create(request, user, self.analyses, json.dumps(body, sort_keys=True), create)
        if path == "/v1/analyses":
            items = [self.public(a) for a in sorted(self.analyses.values(), key=lambda a: -a["id"])
                     if a["owner"] == user["id"]]
            off, lim = int(q.get("offset", 0)), int(q.get("limit", 100))
            return httpx.Response(200, json={"items": items[off:off + lim], "total": len(items), "limit": lim,
                                             "offset": off})
        m = re.fullmatch(r"/v1/analyses/(\d+)(/.*)?", path)
        if not m:
            return self.err(404, "not found")
        a = self.own(self.analyses, int(m[1]), user)
        if a is None:
            return self.err(404, f"analysis {m[1]} not found")
        rest = m[2] or ""
        if rest == "":
            if method == "DELETE":
                if a["status"] in ("succeeded", "failed"):
                    return self.err(409, f"analysis {a['id']} is {a['status']}")
                a["status"] = "cancelled"
            return httpx.Response(200, json=self.public(a))
        if a["status"] != "succeeded":
            return self.err(409, f"analysis {a['id']} is {a['status']}")
        if m2 := re.fullmatch(r"/results/(spectra|peaks|features)", rest):
            fmt = q.get("format", "parquet")
            if fmt == "json":
                # Spectrum indices are the file's own: `_indices` gives gaps (spectra left out).
                # `_no_rt`: spectra whose file gives no retention time (null rt_seconds).
                rows = [[i, f"scan={i + 1}", 1 if i != 1 else 2, None if i in a.get("_no_rt", ()) else 10.0 * i,
                         "profile", 100, 10 * (i + 1),
                         1000.0 * (i + 1), 445.12, None if i != 1 else 445.12, None if i != 1 else 2, i]
                        for i in a.get("_indices", range(3))]
                off, lim = int(q.get("offset", 0)), int(q.get("limit", 1000))
                return httpx.Response(200, json={"columns": SPECTRA_COLUMNS, "rows": rows[off:off + lim],
                                                 "total": len(rows), "limit": lim, "offset": off})
            body = b"PAR1fake-parquet" if fmt == "parquet" else b"spectrum_index,mz\n0,445.12\n"
            name = f"analysis-{a['id']}-{m2[1]}.{fmt}"
            return httpx.Response(200, content=body, headers={
                "content-type": "application/vnd.apache.parquet" if fmt == "parquet" else "text/csv",
                "content-disposition": f'attachment; filename="{name}"'})
        if m2 := re.fullmatch(r"/spectra/(\d+)", rest):
            i = int(m2[1])
            if i not in a.get("_indices", range(3)):
                return self.err(404, f"spectrum {i} not found")
            return httpx.Response(200, json={
                "index": i, "native_id": f"scan={i + 1}", "ms_level": 1,
                "rt_seconds": None if i in a.get("_no_rt", ()) else 10.0 * i, "signal": "profile",
                "profile": {"mz": [445.0, 445.1, 445.2], "intensity": [0.0, 50.0, 0.0]},
                "centroids": {"mz": [445.1, 445.6, 500.0], "intensity": [50.0, 30.0, 5.0], "charge": [2, 2, None],
                              "envelope_id": [0, 0, None]},
                "features": [{"envelope_id": 0, "neutral_mass": 888.19, "mz": 445.1, "charge": 2,
                              "intensity": 80.0, "score": 0.95}]})
        return self.err(404, "not found")


def parse_multipart(request: httpx.Request) -> tuple[str, bytes]:
    body = request.read()
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    for part in msg.iter_parts():
        if part.get_param("name", header="content-disposition") == "file":
            return part.get_filename(), part.get_payload(decode=True)
    raise AssertionError("no file part in the upload")
