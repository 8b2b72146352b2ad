"""The FastAPI application: ``create_app(settings)``; routes under ``/v1``, OpenAPI at
``/docs``. The contract is ``python/api/README.md``."""


import contextlib
import datetime as dt
import logging
import os
import pathlib
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from starlette.background import BackgroundTask
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import exc as sa_exc, func, select, text
from sqlalchemy.orm import Session

import mzforge

from . import idempotency, layout, params as params_mod, plotting, results
from .auth import create_user, new_token, user_for_token
from .db import (TERMINAL, Analysis, Upload, User, database_unavailable, make_engine, make_sessionmaker,
                 migrate, utcnow)
from .executors import make_executor
from .orphans import OrphanSweeper
from .settings import Settings
from .storage import make_storage
from .uploads import UploadRejected, receive_upload

log = logging.getLogger("mzforge.api")

MAX_ID = 2**31 - 1
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=10**9)]


# ---- schemas -------------------------------------------------------------------------------------

class UploadOut(BaseModel):
    id: int
    filename: str
    size: int
    sha256: str
    format: Literal["mzml", "mzml.gz", "mzml.bz2", "mgf", "mgf.gz", "mgf.bz2"]
    created_at: dt.datetime


class FailedInput(BaseModel):
    """An input of a succeeded analysis that has no result, and why (the others' results stand)."""
    upload_id: int
    filename: str
    error: Literal["Mzforge.BadInput", "Mzforge.MissingInput"]
    cause: str


class Summary(BaseModel):
    spectra_per_level: dict[str, int]
    spectra: int
    peaks: int
    features: int
    warnings: list[str]
    failed_inputs: list[FailedInput] = []


class AnalysisOut(BaseModel):
    id: int
    name: str | None
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    upload_ids: list[int]
    params: dict[str, Any]
    error: str | None
    backend: Literal["local", "stepfunctions"]
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    result_location: str | None
    summary: Summary | None


class AnalysisIn(BaseModel):
    upload_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(min_length=1, max_length=100)
    params: dict[str, Any] = Field(default_factory=dict)
    name: str | None = Field(default=None, max_length=200)

    @field_validator("name")
    @classmethod
    def _printable(cls, v: str | None) -> str | None:
        if v is not None and not v.isprintable():
            raise ValueError("name must be printable text")
        return v


class UserIn(BaseModel):
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s\x00]+@[^@\s\x00]+$")


class UserOut(BaseModel):
    id: int
    email: str
    token: str


class TokenOut(BaseModel):
    id: int
    email: str
    token: str


class Me(BaseModel):
    id: int
    email: str
    is_admin: bool


class UploadPage(BaseModel):
    items: list[UploadOut]
    total: int
    limit: int
    offset: int


class AnalysisPage(BaseModel):
    items: list[AnalysisOut]
    total: int
    limit: int
    offset: int


class JsonRows(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    total: int
    limit: int
    offset: int


def _utc(t: dt.datetime | None) -> dt.datetime | None:
    # SQLite hands back naive datetimes; every stored time is UTC.
    return t.replace(tzinfo=dt.timezone.utc) if t is not None and t.tzinfo is None else t


def upload_out(u: Upload) -> dict[str, Any]:
    return {"id": u.id, "filename": u.filename, "size": u.size, "sha256": u.sha256,
            "format": u.format, "created_at": _utc(u.created_at)}


def analysis_out(a: Analysis) -> dict[str, Any]:
    return {"id": a.id, "name": a.name, "status": a.status, "upload_ids": a.upload_ids,
            "params": a.params, "error": a.error, "backend": a.backend,
            "created_at": _utc(a.created_at), "started_at": _utc(a.started_at),
            "finished_at": _utc(a.finished_at),
            "result_location": a.result_location if a.status == "succeeded" else None,
            "summary": a.summary if a.status == "succeeded" else None}


class InflightLimit:
    """At most ``limit`` requests are handled at once (others wait here, holding nothing). Each
    handled request holds at most one database connection, and the pool has room for ``limit``
    plus headroom, so requests never wait for the pool while holding a connection (which can
    deadlock a pool shared with FastAPI's thread pool). Uploads (which use the database only
    briefly, at the end) and health probes are not counted."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.semaphore: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in ("/healthz", "/readyz") or (
            scope["method"] == "POST" and scope["path"] == "/v1/uploads"
        ):
            await self.app(scope, receive, send)
            return
        if self.semaphore is None:
            import asyncio

            self.semaphore = asyncio.Semaphore(self.limit)
        async with self.semaphore:
            await self.app(scope, receive, send)


# ---- the app -------------------------------------------------------------------------------------

ERRORS = {401: {"description": "missing or unknown token"}, 404: {"description": "not found"},
          503: {"description": "the database is unavailable; retry after Retry-After seconds"}}

def idempotency_key_parameter(what: str) -> dict[str, Any]:
    """The Idempotency-Key header of a POST that creates ``what`` (an analysis, an upload), for
    the OpenAPI schema. The route reads the header itself (``read_idempotency_key``): an invalid
    key is 400 with a plain message, not FastAPI's 422 list."""
    return {
        "name": idempotency.HEADER, "in": "header", "required": False,
        "description": "1-255 printable ASCII characters, new for each new request: a repeat of "
                       f"the request with the same key returns the {what} the first one created "
                       "(201, Idempotent-Replayed: true) instead of creating another; the same "
                       "key with another request is 422. Keys expire "
                       f"{idempotency.KEY_LIFETIME.total_seconds() / 3600:g} h after their {what} "
                       "was created.",
        "schema": {"type": "string", "minLength": 1, "maxLength": idempotency.KEY_MAX_LENGTH,
                   "pattern": idempotency.KEY_PATTERN},
    }


def replayed_header_doc(what: str) -> dict[str, Any]:
    return {idempotency.REPLAYED_HEADER: {
        "description": f"`true` when the {what} is the one an earlier request with the same "
                       "Idempotency-Key created",
        "schema": {"type": "string", "enum": ["true"]}}}


IDEMPOTENCY_ERRORS = {400: {"description": "invalid Idempotency-Key header"},
                      422: {"description": "an Idempotency-Key already used for another request"}}


def read_idempotency_key(request: Request) -> str | None:
    """The request's Idempotency-Key (None without one); ``InvalidKey`` (400) when invalid."""
    return idempotency.parse_key(request.headers.getlist(idempotency.HEADER))


def replayed(response: Response, out: dict[str, Any]) -> dict[str, Any]:
    """``out``, the answer about a row an earlier request with the same key created, marked so."""
    response.headers[idempotency.REPLAYED_HEADER] = "true"
    return out

# Seconds a client is asked to wait when the database is away (a restart or failover takes
# seconds; pooled connections are re-tested and replaced on the next request).
RETRY_AFTER_SECONDS = 5


def create_app(settings: Settings | None = None, *, run_migrations: bool = True) -> FastAPI:
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if run_migrations:
            await run_in_threadpool(migrate, settings.database_url)
        engine = make_engine(settings.database_url, pool_size=settings.max_inflight,
                             timeouts=settings.db_timeouts)
        app.state.engine = engine
        app.state.sessions = make_sessionmaker(engine)
        app.state.storage = make_storage(settings)
        app.state.orphans = OrphanSweeper(app.state.sessions, app.state.storage,
                                          scan_interval_seconds=settings.orphan_scan_seconds,
                                          scan_min_age_seconds=settings.orphan_min_age_seconds)
        app.state.orphans.start()
        app.state.executor = make_executor(settings, app.state.sessions, app.state.storage)
        app.state.executor.start()
        try:
            yield
        finally:
            app.state.executor.stop()
            app.state.orphans.stop()
            engine.dispose()

    app = FastAPI(
        title="mzforge analysis API",
        version=mzforge.__version__,
        description="Upload mzML/MGF runs, analyse them with the mzforge engine, fetch results.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_middleware(InflightLimit, limit=settings.max_inflight)

    async def database_away(request: Request, exc: Exception) -> Response:
        # A lost or refused connection (or a pool that stayed full for its timeout): the request
        # did nothing durable (its transaction is rolled back, or its COMMIT is in doubt and the
        # write is whole either way); it may be retried. The classes are db.database_unavailable's.
        log.warning("%s %s: the database is unavailable: %s", request.method, request.url.path,
                    str(exc).splitlines()[0])
        return JSONResponse({"detail": "the database is unavailable; retry shortly"}, status_code=503,
                            headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    for exc_class in (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError):
        app.add_exception_handler(exc_class, database_away)

    async def idempotency_refused(request: Request, exc: Exception) -> Response:
        status = 400 if isinstance(exc, idempotency.InvalidKey) else 422
        return JSONResponse({"detail": str(exc)}, status_code=status)

    for exc_class in (idempotency.InvalidKey, idempotency.KeyReused):
        app.add_exception_handler(exc_class, idempotency_refused)
    bearer = HTTPBearer(auto_error=False)

    def session(request: Request) -> Iterator[Session]:
        s = request.app.state.sessions()
        try:
            yield s
        finally:
            # Closing rolls back what the request left open; runs after the answer was sent. A
            # connection lost by then has nothing to roll back (the server discards the
            # transaction), and raising here would make the server drop the client's
            # keep-alive connection, failing its next request.
            try:
                s.close()
            except Exception as e:
                if not database_unavailable(e):
                    raise
                log.warning("%s %s: the database connection was lost after the answer: %s",
                            request.method, request.url.path, str(e).splitlines()[0])

    Db = Annotated[Session, Depends(session)]

    def current_user(s: Db, cred: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> User:
        user = user_for_token(s, cred.credentials) if cred else None
        # End the transaction: the connection goes back to the pool while the request waits for
        # a thread to run the endpoint (holding it there can exhaust the pool under load).
        s.commit()
        if user is None:
            raise HTTPException(401, "missing or unknown bearer token",
                                headers={"WWW-Authenticate": "Bearer"})
        return user

    Me_ = Annotated[User, Depends(current_user)]

    def own_upload(s: Session, user: User, upload_id: int) -> Upload:
        u = s.get(Upload, upload_id)
        if u is None or u.user_id != user.id:
            raise HTTPException(404, f"upload {upload_id} not found")
        return u

    def own_analysis(request: Request, s: Session, user: User, analysis_id: int) -> Analysis:
        a = s.get(Analysis, analysis_id)
        if a is None or a.user_id != user.id:
            raise HTTPException(404, f"analysis {analysis_id} not found")
        request.app.state.executor.reconcile(s, a)
        return a

    def succeeded(request: Request, s: Session, user: User, analysis_id: int) -> Analysis:
        a = own_analysis(request, s, user, analysis_id)
        if a.status != "succeeded":
            raise HTTPException(409, f"analysis {a.id} is {a.status}")
        # The rest reads storage only: the connection goes back to the pool meanwhile.
        s.commit()
        return a

    # Result requests read whole tables into memory (results.load); at most this many at once,
    # so their memory is bounded by MZFORGE_MAX_RESULT_READS, not by the requests in flight
    # (32 requests each reading a 15 MB table swung the server between 0.35 and 0.95 GB).
    result_reads = threading.BoundedSemaphore(settings.max_result_reads)

    # ---- health ----
    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"description": "a dependency is down"}})
    def readyz(request: Request) -> Response:
        problems = {}
        try:
            with request.app.state.engine.connect() as c:
                c.execute(text("SELECT 1"))
        except Exception as e:  # noqa: BLE001
            problems["database"] = str(e).splitlines()[0]
        try:
            request.app.state.storage.check()
        except Exception as e:  # noqa: BLE001
            problems["storage"] = str(e).splitlines()[0]
        if problems:
            return JSONResponse({"detail": "not ready", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready", "database": "ok", "storage": "ok"})

    # ---- users ----
    @app.get("/v1/me", response_model=Me, tags=["users"], responses=ERRORS)
    def me(user: Me_) -> dict[str, Any]:
        return {"id": user.id, "email": user.email, "is_admin": user.is_admin}

    @app.post("/v1/users", status_code=201, response_model=UserOut, tags=["users"],
              responses={**ERRORS, 403: {"description": "not an admin"}, 409: {"description": "email exists"}})
    def new_user(body: UserIn, s: Db, user: Me_) -> dict[str, Any]:
        if not user.is_admin:
            raise HTTPException(403, "creating users needs an admin token")
        try:
            created, token = create_user(s, body.email)
        except ValueError as e:
            raise HTTPException(409, str(e)) from None
        s.commit()
        return {"id": created.id, "email": created.email, "token": token}

    @app.post("/v1/users/{who}/tokens", status_code=201, response_model=TokenOut, tags=["users"],
              responses={**ERRORS, 403: {"description": "not an admin"}})
    def new_user_token(who: Annotated[str, Path(min_length=1, max_length=320)], s: Db, user: Me_) -> dict[str, Any]:
        """A new token for an existing user, by id or email (admin only; like `create-token`)."""
        if not user.is_admin:
            raise HTTPException(403, "creating tokens needs an admin token")
        target = None
        if who.isdigit() and int(who) <= MAX_ID:
            target = s.get(User, int(who))
        if target is None:
            target = s.scalars(select(User).where(User.email == who)).first()
        if target is None:
            raise HTTPException(404, f"user {who} not found")
        token = new_token(s, target)
        s.commit()
        return {"id": target.id, "email": target.email, "token": token}

    # ---- parameters ----
    @app.get("/v1/parameters", tags=["analyses"])
    def parameters() -> dict[str, Any]:
        return params_mod.describe()

    # ---- uploads ----
    @app.post("/v1/uploads", status_code=201, response_model=UploadOut, tags=["uploads"],
              responses={**ERRORS, **IDEMPOTENCY_ERRORS, 201: {"headers": replayed_header_doc("upload")},
                         413: {"description": "too large"}, 415: {"description": "not mzML/MGF"},
                         422: {"description": "no complete field 'file', or an Idempotency-Key "
                                              "already used for another request"}},
              openapi_extra={"parameters": [idempotency_key_parameter("upload")],
                             "requestBody": {"required": True, "content": {"multipart/form-data": {
                  "schema": {"type": "object", "required": ["file"],
                             "properties": {"file": {"type": "string", "format": "binary"}}}}}}})
    async def create_upload(request: Request, response: Response, user: Me_) -> dict[str, Any]:
        st = request.app.state
        idem_key = read_idempotency_key(request)
        # Staged next to local storage (the final move is a rename), else in the temp folder.
        staging = (settings.data_dir / "tmp" if st.storage.kind == "local"
                   else pathlib.Path(tempfile.gettempdir()) / "mzforge-api-uploads")
        try:
            got = await receive_upload(request, settings.max_upload_bytes, staging)
        except UploadRejected as e:
            return JSONResponse({"detail": e.detail}, status_code=e.status)
        # The same request: the same file (its SHA-256) under the same name.
        fingerprint = idempotency.request_sha256({"filename": got.filename, "sha256": got.sha256})

        def replay_before_storing() -> Upload | None:
            # A repeat is answered without storing the file again (it may be large, or on S3).
            with st.sessions() as s:
                return idempotency.earlier(s, Upload, user.id, idem_key, fingerprint)

        try:
            earlier = await run_in_threadpool(replay_before_storing) if idem_key else None
            if earlier is not None:
                return replayed(response, upload_out(earlier))
            key = layout.upload_key(user.id, got.filename)
            await run_in_threadpool(st.storage.put_file, "uploads", key, got.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(got.path)

        def record() -> dict[str, Any]:
            # Stored, then recorded: a row never names a missing file. If the INSERT fails (or
            # loses to a request with the same key) the file goes at once; if the COMMIT fails it
            # may have happened, and the sweeper decides once the database answers (orphans.py).
            with st.sessions() as s:
                u = Upload(user_id=user.id, filename=got.filename, size=got.size, sha256=got.sha256,
                           format=got.format, storage_key=key)
                try:
                    # Looked up again in this transaction: a racing request may have committed
                    # meanwhile, and an expired key is taken off its upload in the transaction
                    # that gives it to this one.
                    earlier = (idempotency.earlier(s, Upload, user.id, idem_key, fingerprint)
                               or idempotency.insert(s, u, idem_key, fingerprint))
                except Exception:
                    st.storage.delete("uploads", key)
                    raise
                if earlier is not None:
                    st.storage.delete("uploads", key)
                    return replayed(response, upload_out(earlier))
                try:
                    s.commit()
                except Exception:
                    st.orphans.note(key)
                    raise
                return upload_out(u)

        return await run_in_threadpool(record)

    @app.get("/v1/uploads", response_model=UploadPage, tags=["uploads"], responses=ERRORS)
    def list_uploads(s: Db, user: Me_, limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
        q = select(Upload).where(Upload.user_id == user.id)
        total = s.scalar(select(func.count()).select_from(q.subquery()))
        items = s.scalars(q.order_by(Upload.id.desc()).limit(limit).offset(offset)).all()
        return {"items": [upload_out(u) for u in items], "total": total, "limit": limit, "offset": offset}

    @app.get("/v1/uploads/{upload_id}", response_model=UploadOut, tags=["uploads"], responses=ERRORS)
    def get_upload(upload_id: Id, s: Db, user: Me_) -> dict[str, Any]:
        return upload_out(own_upload(s, user, upload_id))

    @app.delete("/v1/uploads/{upload_id}", status_code=204, tags=["uploads"],
                responses={**ERRORS, 409: {"description": "an unfinished analysis uses it"}})
    def delete_upload(request: Request, upload_id: Id, s: Db, user: Me_) -> Response:
        u = own_upload(s, user, upload_id)
        busy = [a.id for a in s.scalars(select(Analysis).where(
            Analysis.user_id == user.id, Analysis.status.in_(("queued", "running"))))
            if u.id in a.upload_ids]
        if busy:
            raise HTTPException(409, f"upload {u.id} is used by unfinished analysis {busy[0]}")
        # The row first, then the file: a failed COMMIT leaves the upload whole (or, if it
        # happened after all, its file to the sweeper), never a row without its file.
        key, st = u.storage_key, request.app.state
        s.delete(u)
        s.flush()
        try:
            s.commit()
        except Exception:
            st.orphans.note(key)
            raise
        try:
            st.storage.delete("uploads", key)
        except Exception:  # noqa: BLE001 - the upload is gone; the sweeper retries the file
            log.warning("deleting stored upload %s failed; retried later", key, exc_info=True)
            st.orphans.note(key)
        return Response(status_code=204)

    # ---- analyses ----
    def new_analysis(request: Request, s: Session, user: User, body: AnalysisIn) -> Analysis:
        """The analysis ``body`` asks for, validated, not yet added to the session."""
        try:
            resolved = params_mod.resolve(body.params)
        except mzforge.InvalidParameterError as e:
            raise HTTPException(422, str(e)) from None
        uploads = [own_upload(s, user, i) for i in body.upload_ids]
        if len(set(body.upload_ids)) != len(body.upload_ids):
            raise HTTPException(422, "upload_ids lists an upload twice")
        return Analysis(user_id=user.id, name=body.name, run_id=f"pending-{uuid.uuid4().hex}",
                        status="queued", upload_ids=body.upload_ids, params=resolved,
                        backend=request.app.state.executor.name,
                        inputs=[{"upload_id": u.id, "filename": u.filename, "key": u.storage_key}
                                for u in uploads])

    @app.post("/v1/analyses", status_code=201, response_model=AnalysisOut, tags=["analyses"],
              responses={**ERRORS, **IDEMPOTENCY_ERRORS, 201: {"headers": replayed_header_doc("analysis")},
                         422: {"description": "invalid parameters or uploads, or an "
                                              "Idempotency-Key already used for another request"}},
              openapi_extra={"parameters": [idempotency_key_parameter("analysis")]})
    def create_analysis(request: Request, response: Response, body: AnalysisIn, s: Db,
                        user: Me_) -> dict[str, Any]:
        key = read_idempotency_key(request)
        fingerprint = idempotency.request_sha256(body.model_dump(mode="json"))

        def replay(earlier: Analysis) -> dict[str, Any]:
            # The analysis as it is now (201, as its creation was).
            return replayed(response, analysis_out(own_analysis(request, s, user, earlier.id)))

        earlier = idempotency.earlier(s, Analysis, user.id, key, fingerprint)
        if earlier is not None:
            return replay(earlier)
        a = new_analysis(request, s, user, body)
        # A request with the same key that committed meanwhile wins the INSERT: its analysis is
        # the answer.
        earlier = idempotency.insert(s, a, key, fingerprint)
        if earlier is not None:
            return replay(earlier)
        a.run_id = layout.new_run_id(settings.environment, a.id)
        s.commit()
        executor = request.app.state.executor
        try:
            executor.submit(s, a)
        except Exception as e:
            log.exception("submitting analysis %s", a.id)
            a.status, a.error, a.finished_at = "failed", f"could not start the analysis: {e}", utcnow()
        s.commit()
        return analysis_out(a)

    @app.get("/v1/analyses", response_model=AnalysisPage, tags=["analyses"], responses=ERRORS)
    def list_analyses(request: Request, s: Db, user: Me_,
                      status: Literal["queued", "running", "succeeded", "failed", "cancelled"] | None = None,
                      limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
        if request.app.state.executor.name != "local":
            for a in s.scalars(select(Analysis).where(Analysis.user_id == user.id,
                                                      Analysis.status.in_(("queued", "running")))):
                request.app.state.executor.reconcile(s, a)
        q = select(Analysis).where(Analysis.user_id == user.id)
        if status:
            q = q.where(Analysis.status == status)
        total = s.scalar(select(func.count()).select_from(q.subquery()))
        items = s.scalars(q.order_by(Analysis.id.desc()).limit(limit).offset(offset)).all()
        return {"items": [analysis_out(a) for a in items], "total": total, "limit": limit, "offset": offset}

    @app.get("/v1/analyses/{analysis_id}", response_model=AnalysisOut, tags=["analyses"], responses=ERRORS)
    def get_analysis(request: Request, analysis_id: Id, s: Db, user: Me_) -> dict[str, Any]:
        return analysis_out(own_analysis(request, s, user, analysis_id))

    @app.delete("/v1/analyses/{analysis_id}", response_model=AnalysisOut, tags=["analyses"],
                responses={**ERRORS, 409: {"description": "already finished"}})
    def cancel_analysis(request: Request, analysis_id: Id, s: Db, user: Me_) -> dict[str, Any]:
        a = own_analysis(request, s, user, analysis_id)
        if a.status == "cancelled":
            return analysis_out(a)
        if a.status in TERMINAL:
            raise HTTPException(409, f"analysis {a.id} is {a.status}")
        a.status, a.finished_at = "cancelled", utcnow()
        s.commit()
        request.app.state.executor.cancel(a)
        st = request.app.state.storage
        st.delete_prefix("results", layout.results_prefix(a.run_id))
        st.delete("results", layout.summary_key(a.run_id))
        return analysis_out(a)

    # ---- results ----
    RT_FILTER = ("retention time bound in seconds (inclusive); spectra without a retention time "
                 "(null rt_seconds: the file gives none) are left out")

    @app.get("/v1/analyses/{analysis_id}/results/{table}", tags=["results"],
             responses={**ERRORS, 409: {"description": "the analysis has not succeeded"},
                        200: {"content": {"application/json": {"schema": JsonRows.model_json_schema()},
                                          "application/vnd.apache.parquet": {},
                                          "text/csv": {}}}})
    def get_results(request: Request, analysis_id: Id, table: Literal["spectra", "peaks", "features"],
                    s: Db, user: Me_,
                    format: Literal["json", "parquet", "csv"] = "json",
                    upload_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                    spectrum_index: Annotated[int | None, Query(ge=0, le=2**32 - 1)] = None,
                    min_mz: float | None = None, max_mz: float | None = None,
                    min_rt: Annotated[float | None, Query(description=RT_FILTER)] = None,
                    max_rt: Annotated[float | None, Query(description=RT_FILTER)] = None,
                    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
                    offset: Offset = 0) -> Response:
        """A result table of a succeeded analysis, every input's rows with an ``upload_id``
        column in front, as paged JSON, Parquet or CSV.

        Filters: ``upload_id``, ``spectrum_index``; ``min_mz``/``max_mz`` (the precursor m/z
        for spectra, the peak or feature m/z otherwise); ``min_rt``/``max_rt`` in seconds, on
        the spectrum's ``rt_seconds``. ``rt_seconds`` is null for a spectrum whose file gives
        no retention time: a retention-time filter leaves such spectra (and their peaks and
        features) out."""
        a = succeeded(request, s, user, analysis_id)
        if upload_id is not None and upload_id not in a.upload_ids:
            raise HTTPException(404, f"upload {upload_id} is not an input of analysis {a.id}")
        f = results.Filters(upload_id, spectrum_index, min_mz, max_mz, min_rt, max_rt)
        name = f"analysis-{a.id}-{table}"
        with result_reads:
            try:
                t = results.load(request.app.state.storage, a, table, f)
            except (LookupError, FileNotFoundError):
                raise HTTPException(404, f"analysis {a.id} has no {table} results") from None
            if format in ("parquet", "csv"):
                # Written to a temporary file and streamed from there (deleted after sending), so
                # a large table is not held a second time in memory as the response body.
                path = results.write_file(t, format, settings.data_dir / "tmp"
                                          if request.app.state.storage.kind == "local" else None)
                del t
                media = "application/vnd.apache.parquet" if format == "parquet" else "text/csv"
                return FileResponse(path, media_type=media, filename=f"{name}.{format}",
                                    background=BackgroundTask(os.unlink, path))
            page = results.to_json_page(t, limit, offset)
            del t
        return JSONResponse(page)

    def spectrum(request: Request, a: Analysis, index: int, upload_id: int | None) -> dict[str, Any]:
        item = a.inputs[0] if upload_id is None else next(
            (i for i in a.inputs if i["upload_id"] == upload_id), None)
        if item is None:
            raise HTTPException(404, f"upload {upload_id} is not an input of analysis {a.id}")
        st = request.app.state.storage
        f = results.Filters(upload_id=item["upload_id"], spectrum_index=index)
        with result_reads:
            spectra = results.load(st, a, "spectra", f)
            if spectra.num_rows == 0:
                raise HTTPException(404, f"spectrum {index} is not in the results of analysis {a.id}")
            row = spectra.to_pylist()[0]
            peaks = results.load(st, a, "peaks", f)
            features = results.load(st, a, "features", f)
        profile = None
        if row["signal"] == "profile":
            try:
                with st.local_copy("uploads", item["key"]) as path:
                    profile = plotting.read_profile(path, index, row["native_id"])
            except FileNotFoundError:
                profile = None  # the upload was deleted; centroids remain
        return plotting.spectrum_data(row, peaks, features, profile)

    SpecUpload = Annotated[int | None, Query(ge=1, le=MAX_ID, description="which input (default: the first)")]
    SpecIndex = Annotated[int, Path(ge=0, le=2**32 - 1)]

    @app.get("/v1/analyses/{analysis_id}/spectra/{index}", tags=["results"],
             responses={**ERRORS, 409: {"description": "the analysis has not succeeded"}})
    def get_spectrum(request: Request, analysis_id: Id, index: SpecIndex, s: Db, user: Me_,
                     upload_id: SpecUpload = None) -> dict[str, Any]:
        a = succeeded(request, s, user, analysis_id)
        return spectrum(request, a, index, upload_id)

    @app.get("/v1/analyses/{analysis_id}/spectra/{index}/plot.{ext}", tags=["results"],
             responses={**ERRORS, 409: {"description": "the analysis has not succeeded"},
                        200: {"content": {"image/svg+xml": {}, "image/png": {}}}})
    def get_plot(request: Request, analysis_id: Id, index: SpecIndex, ext: Literal["svg", "png"],
                 s: Db, user: Me_, upload_id: SpecUpload = None) -> Response:
        a = succeeded(request, s, user, analysis_id)
        data = spectrum(request, a, index, upload_id)
        media = "image/svg+xml" if ext == "svg" else "image/png"
        return Response(plotting.render(data, ext), media_type=media)

    return app
