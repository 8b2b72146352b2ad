"""The analysis API's client: every call the site makes to the API goes through `ApiClient`.

The site is one more HTTP client of the API (issue 8's contract, /v1/...). Each site user has
their own API token (`portal.models.ApiAccount`); the admin token is used only to provision users.
Errors become `ApiError` with the API's plain-words `detail`, or `ApiUnavailable` when the API
cannot be reached at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import httpx
from django.conf import settings

# Tests swap in an `httpx.MockTransport` (a fake API) here; None means real HTTP.
TRANSPORT: httpx.BaseTransport | None = None

RESULT_TABLES = ("spectra", "peaks", "features")
# Creating an analysis or an upload with an idempotency key is retried this many times more
# after a transient failure (unreachable API, 503), `CREATE_RETRY_SECONDS` apart, then twice that:
# the key makes a retry return what a lost answer had created instead of a second one.
CREATE_RETRIES = 2
CREATE_RETRY_SECONDS = 1.0
DOWNLOAD_FORMATS = ("parquet", "csv")


class ApiError(Exception):
    """The API answered with an error status; `detail` is its message in plain words."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


class ApiUnavailable(ApiError):
    """The API could not be reached (connection refused, timeout)."""

    def __init__(self, reason: str):
        super().__init__(503, "The analysis service is not reachable right now. Please try again in a minute.")
        self.reason = reason


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or f"HTTP {response.status_code}"
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):  # FastAPI's validation errors
        parts = []
        for item in detail:
            if isinstance(item, dict):
                where = ".".join(str(p) for p in item.get("loc", [])[1:])
                parts.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(body)


@dataclass
class Download:
    """A streamed result file: iterate `chunks()` once; it closes the connection at the end."""

    response: httpx.Response
    client: httpx.Client

    @property
    def headers(self) -> httpx.Headers:
        return self.response.headers

    def chunks(self) -> Iterator[bytes]:
        try:
            yield from self.response.iter_bytes(64 * 1024)
        finally:
            self.close()

    def close(self) -> None:
        self.response.close()
        self.client.close()


class ApiClient:
    def __init__(self, token: str, base_url: str | None = None):
        self.token = token
        self.base_url = (base_url or settings.MZFORGE_API_URL).rstrip("/")

    def _client(self, read_timeout: float | None = None) -> httpx.Client:
        timeout = settings.MZFORGE_API_TIMEOUT_SECONDS
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=httpx.Timeout(timeout, read=read_timeout or timeout, write=read_timeout or timeout),
            transport=TRANSPORT,
        )

    def _request(self, method: str, path: str, *, read_timeout: float | None = None, **kwargs: Any) -> Any:
        try:
            with self._client(read_timeout) as client:
                response = client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiUnavailable(str(exc)) from exc
        if response.status_code >= 400:
            raise ApiError(response.status_code, _detail(response))
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def _create(
        self, path: str, idempotency_key: str | None, before_each: Callable[[], object] | None = None, **kwargs: Any
    ) -> Any:
        """POSTs to `path` to create something (an analysis, an upload). With `idempotency_key`
        (sent as the API's Idempotency-Key), a transient failure is retried `CREATE_RETRIES` times
        with the same key; without one it is tried once. `before_each` runs before every attempt."""
        attempts = 1 if idempotency_key is None else CREATE_RETRIES + 1
        if idempotency_key is not None:
            kwargs["headers"] = {"Idempotency-Key": idempotency_key}
        for attempt in range(attempts):
            if before_each is not None:
                before_each()
            try:
                return self._request("POST", path, **kwargs)
            except ApiError as exc:
                transient = isinstance(exc, ApiUnavailable) or exc.status == 503
                if not transient or attempt == attempts - 1:
                    raise
            time.sleep(CREATE_RETRY_SECONDS * (attempt + 1))
        raise AssertionError("unreachable")

    # users (admin token)
    def create_user(self, email: str) -> dict:
        return self._request("POST", "/v1/users", json={"email": email})

    def create_token(self, user: str | int) -> dict:
        """A new token for an existing API user (admin token; `POST /v1/users/{id or email}/tokens`)."""
        return self._request("POST", f"/v1/users/{user}/tokens")

    def me(self) -> dict:
        return self._request("GET", "/v1/me")

    # uploads
    def upload(
        self,
        filename: str,
        fileobj: IO[bytes],
        content_type: str = "application/octet-stream",
        idempotency_key: str | None = None,
    ) -> dict:
        """Streams `fileobj` to the API as multipart (httpx reads it in chunks, never whole). With
        `idempotency_key` (one per file of a form), a resubmitted form or a retry after a lost
        answer returns the same upload; transient failures are retried (`CREATE_RETRIES`), each
        attempt sending the file from its start (`fileobj` must be seekable)."""
        return self._create(
            "/v1/uploads",
            idempotency_key,
            before_each=lambda: fileobj.seek(0),
            files={"file": (filename, fileobj, content_type)},
            read_timeout=600,
        )

    def uploads(self, limit: int = 100, offset: int = 0) -> dict:
        return self._request("GET", "/v1/uploads", params={"limit": limit, "offset": offset})

    def get_upload(self, upload_id: int) -> dict:
        return self._request("GET", f"/v1/uploads/{upload_id}")

    def delete_upload(self, upload_id: int) -> None:
        self._request("DELETE", f"/v1/uploads/{upload_id}")

    # parameters and analyses
    def parameters(self) -> dict:
        return self._request("GET", "/v1/parameters")

    def create_analysis(
        self, upload_ids: list[int], params: dict, name: str | None = None, idempotency_key: str | None = None
    ) -> dict:
        """Starts an analysis. With `idempotency_key` (one per form the user submits), a resubmitted
        form or a retry after a lost answer returns the same analysis; transient failures are
        retried (`CREATE_RETRIES`)."""
        body: dict[str, Any] = {"upload_ids": upload_ids, "params": params}
        if name:
            body["name"] = name
        return self._create("/v1/analyses", idempotency_key, json=body)

    def analyses(self, limit: int = 100, offset: int = 0, status: str | None = None) -> dict:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if status:
            params["status"] = status
        return self._request("GET", "/v1/analyses", params=params)

    def analysis(self, analysis_id: int) -> dict:
        return self._request("GET", f"/v1/analyses/{analysis_id}")

    def cancel_analysis(self, analysis_id: int) -> dict:
        return self._request("DELETE", f"/v1/analyses/{analysis_id}")

    def results_json(self, analysis_id: int, table: str, **filters: Any) -> dict:
        if table not in RESULT_TABLES:
            raise ValueError(f"unknown result table {table!r}")
        params = {"format": "json", **{k: v for k, v in filters.items() if v is not None}}
        return self._request("GET", f"/v1/analyses/{analysis_id}/results/{table}", params=params)

    def spectrum(self, analysis_id: int, index: int, upload_id: int | None = None) -> dict:
        params = {} if upload_id is None else {"upload_id": upload_id}
        return self._request("GET", f"/v1/analyses/{analysis_id}/spectra/{index}", params=params)

    def download(self, analysis_id: int, table: str, fmt: str) -> Download:
        """Opens a streamed download of a result table; the caller iterates `chunks()`."""
        if table not in RESULT_TABLES or fmt not in DOWNLOAD_FORMATS:
            raise ValueError(f"unknown download {table}.{fmt}")
        client = self._client(read_timeout=600)
        try:
            request = client.build_request(
                "GET", f"/v1/analyses/{analysis_id}/results/{table}", params={"format": fmt}
            )
            response = client.send(request, stream=True)
        except httpx.TransportError as exc:
            client.close()
            raise ApiUnavailable(str(exc)) from exc
        if response.status_code >= 400:
            response.read()
            response.close()
            client.close()
            raise ApiError(response.status_code, _detail(response))
        return Download(response, client)

    def ready(self) -> bool:
        try:
            with self._client() as client:
                return client.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False


def admin_client() -> ApiClient:
    return ApiClient(settings.MZFORGE_API_ADMIN_TOKEN)
