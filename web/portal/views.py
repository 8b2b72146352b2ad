"""The site's pages. Each view talks to the analysis API with the signed-in user's own token, so
the API's per-user isolation (another user's upload or analysis is a 404) holds here too."""

from __future__ import annotations

import logging
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import api
from .forms import AnalysisForm, SignUpForm, UploadForm
from .models import ApiAccount
from .uploads import human_size, read_head, sniff_format

log = logging.getLogger(__name__)

FINISHED = ("succeeded", "failed", "cancelled")
PAGE = 50


def client_for(request: HttpRequest) -> api.ApiClient:
    try:
        account = request.user.api_account
    except ApiAccount.DoesNotExist:
        raise NoApiAccount from None
    return api.ApiClient(account.token)


class NoApiAccount(Exception):
    pass


def api_errors(view):
    """Turns API failures into pages (or JSON for XHR/JSON views) that say what went wrong."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        wants_json = request.path.endswith(".json") or request.headers.get("x-requested-with") == "XMLHttpRequest"
        try:
            return view(request, *args, **kwargs)
        except NoApiAccount:
            message = "Your account has no analysis-service access yet. Please contact the site's administrators."
            status = 403
        except api.ApiError as exc:
            if exc.status == 404:
                raise Http404(exc.detail) from None
            if isinstance(exc, api.ApiUnavailable):
                log.warning("analysis API unreachable: %s", exc.reason)
            message, status = exc.detail, exc.status if exc.status < 500 else 502
        if wants_json:
            return JsonResponse({"error": message}, status=status)
        return render(request, "portal/error.html", {"message": message}, status=status)

    return wrapper


# --- public pages -------------------------------------------------------------------------------


@login_not_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("analyses")
    return render(request, "portal/home.html")


@login_not_required
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """Creates the site user and, in the same step, their API user and token (admin token)."""
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"]
        try:
            created = api.admin_client().create_user(email)
        except api.ApiError as exc:
            if exc.status == 409:
                form.add_error("email", "This e-mail address already has an analysis-service account. "
                               "Ask the site's administrators to link it to a site account.")
            elif exc.status in (401, 403):
                log.error("the site's admin token was refused by the analysis API: %s", exc.detail)
                form.add_error(None, "Sign-up is not possible right now: the site is not allowed to create accounts.")
            else:
                form.add_error(None, exc.detail)
        else:
            with transaction.atomic():
                user = form.save()
                ApiAccount.objects.create(user=user, api_user_id=created["id"], token=created["token"])
            login(request, user)
            messages.success(request, "Welcome! Upload a file to start.")
            return redirect("uploads")
    return render(request, "registration/signup.html", {"form": form})


# --- uploads ------------------------------------------------------------------------------------


@require_GET
@api_errors
def uploads(request: HttpRequest) -> HttpResponse:
    listing = client_for(request).uploads(limit=200)
    return render(
        request,
        "portal/uploads.html",
        {
            "uploads": listing["items"],
            "total": listing["total"],
            "max_upload": human_size(settings.MZFORGE_MAX_UPLOAD_BYTES),
            "max_upload_bytes": settings.MZFORGE_MAX_UPLOAD_BYTES,
            "form": UploadForm(),
        },
    )


@require_POST
def upload_file(request: HttpRequest) -> HttpResponse:
    """One file per request (the page's script sends each file separately, with progress), with
    the page's form key: the same file sent again from the same page is the same upload."""
    xhr = request.headers.get("x-requested-with") == "XMLHttpRequest"

    def fail(message: str, status: int) -> HttpResponse:
        if xhr:
            return JsonResponse({"error": message}, status=status)
        messages.error(request, message)
        return redirect("uploads")

    limit = settings.MZFORGE_MAX_UPLOAD_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    # Refuse before reading the body when the request says it is too large.
    if declared > limit + 64 * 1024:
        return fail(f"The file is too large: the limit is {human_size(limit)} per file.", 413)
    upload = request.FILES.get("file")
    if getattr(request, "upload_too_large", False):
        return fail(f"The file is too large: the limit is {human_size(limit)} per file.", 413)
    if upload is None:
        return fail("No file was sent. Choose an mzML or MGF file (.mzML, .mzML.gz, .mgf, .mgf.gz).", 400)
    form = UploadForm(request.POST)
    if not form.is_valid():
        return fail("This page is out of date. Reload it and upload the file again.", 400)
    if upload.size > limit:
        return fail(f"'{upload.name}' is too large ({human_size(upload.size)}); the limit is {human_size(limit)}.", 413)
    try:
        sniff_format(upload.name, read_head(upload.file))
    except ValueError as exc:
        return fail(str(exc), 415)
    try:
        client = client_for(request)
        created = client.upload(upload.name, upload.file, idempotency_key=form.file_key(upload.name, upload.size))
    except NoApiAccount:
        return fail("Your account has no analysis-service access yet.", 403)
    except api.ApiError as exc:
        if exc.status == 422 and "Idempotency-Key" in exc.detail:
            # This page already sent another file with this name and size (its key is taken).
            return fail(f"This page has already uploaded another file named '{upload.name}'. "
                        "Reload the page to upload this one as a new file.", 422)
        return fail(exc.detail, exc.status if exc.status < 500 else 502)
    finally:
        upload.close()
    if xhr:
        return JsonResponse({"upload": created}, status=201)
    messages.success(request, f"Uploaded {created['filename']}.")
    return redirect("uploads")


@require_POST
@api_errors
def delete_upload(request: HttpRequest, upload_id: int) -> HttpResponse:
    client_for(request).delete_upload(upload_id)
    messages.success(request, "File deleted.")
    return redirect("uploads")


# --- analyses -----------------------------------------------------------------------------------


@require_GET
@api_errors
def analyses(request: HttpRequest) -> HttpResponse:
    listing = client_for(request).analyses(limit=PAGE)
    return render(request, "portal/analyses.html", {"analyses": listing["items"], "total": listing["total"]})


def _status_row(a: dict) -> dict:
    return {
        "id": a["id"],
        "status": a["status"],
        "error": a.get("error"),
        "finished": a["status"] in FINISHED,
        "started_at": a.get("started_at"),
        "finished_at": a.get("finished_at"),
        "url": reverse("analysis", args=[a["id"]]),
    }


@require_GET
@api_errors
def analyses_status(request: HttpRequest) -> JsonResponse:
    """The polling endpoint behind the live status on the list and detail pages."""
    listing = client_for(request).analyses(limit=PAGE)
    return JsonResponse({"analyses": [_status_row(a) for a in listing["items"]]})


@require_http_methods(["GET", "POST"])
@api_errors
def new_analysis(request: HttpRequest) -> HttpResponse:
    client = client_for(request)
    uploads_ = client.uploads(limit=200)["items"]
    parameters = client.parameters()
    initial = {"uploads": request.GET.getlist("upload")}
    form = AnalysisForm(request.POST or None, uploads=uploads_, parameters=parameters, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            created = client.create_analysis(
                [int(u) for u in form.cleaned_data["uploads"]],
                form.cleaned_data["params"],
                form.cleaned_data.get("name") or None,
                idempotency_key=form.idempotency_key(),
            )
        except api.ApiError as exc:
            if exc.status >= 500 or isinstance(exc, api.ApiUnavailable):
                raise
            form.add_error(None, f"The analysis could not be started: {exc.detail}")
        else:
            messages.success(request, f"Analysis {created['id']} started.")
            return redirect("analysis", created["id"])
    return render(request, "portal/new_analysis.html", {"form": form, "has_uploads": bool(uploads_)})


def chosen_upload(request: HttpRequest, a: dict) -> int | None:
    """The input file a page shows (`?upload=`): results of several inputs share one table with an
    `upload_id` column, and spectrum indices restart in each input. Default: the first input."""
    ids = a.get("upload_ids") or []
    try:
        wanted = int(request.GET.get("upload", ""))
    except ValueError:
        wanted = None
    if wanted in ids:
        return wanted
    return ids[0] if ids else None


def upload_query(a: dict, upload_id: int | None) -> str:
    return f"?upload={upload_id}" if upload_id is not None and len(a.get("upload_ids") or []) > 1 else ""


@require_GET
@api_errors
def analysis(request: HttpRequest, analysis_id: int) -> HttpResponse:
    client = client_for(request)
    a = client.analysis(analysis_id)
    names = {}
    if a.get("upload_ids"):
        names = {u["id"]: u["filename"] for u in client.uploads(limit=200)["items"]}
    selected = chosen_upload(request, a)
    return render(
        request,
        "portal/analysis.html",
        {
            "a": a,
            "finished": a["status"] in FINISHED,
            "files": [names.get(i, f"upload {i}") for i in a.get("upload_ids", [])],
            "inputs": [(i, names.get(i, f"upload {i}")) for i in a.get("upload_ids", [])],
            "selected": selected,
            "q": upload_query(a, selected),
            "params": sorted((a.get("params") or {}).items()),
            "downloads": [(t, f) for t in api.RESULT_TABLES for f in api.DOWNLOAD_FORMATS],
        },
    )


@require_GET
@api_errors
def analysis_status(request: HttpRequest, analysis_id: int) -> JsonResponse:
    return JsonResponse(_status_row(client_for(request).analysis(analysis_id)))


@require_POST
@api_errors
def cancel_analysis(request: HttpRequest, analysis_id: int) -> HttpResponse:
    try:
        client_for(request).cancel_analysis(analysis_id)
    except api.ApiError as exc:
        if exc.status != 409:  # 409: it finished before the click arrived
            raise
        messages.info(request, f"Too late to cancel: {exc.detail}.")
    else:
        messages.success(request, f"Analysis {analysis_id} cancelled.")
    return redirect("analysis", analysis_id)


SUMMARY_COLUMNS = ("spectrum_index", "ms_level", "rt_seconds", "tic", "n_peaks", "n_features")
SUMMARY_MAX_ROWS = 50_000


@require_GET
@api_errors
def analysis_summary(request: HttpRequest, analysis_id: int) -> JsonResponse:
    """Per-spectrum columns for the detail page's charts (TIC over RT, peaks/features per spectrum)."""
    client = client_for(request)
    upload_id = chosen_upload(request, client.analysis(analysis_id))
    out: dict[str, list] = {c: [] for c in SUMMARY_COLUMNS}
    offset, total = 0, None
    while total is None or (offset < total and offset < SUMMARY_MAX_ROWS):
        page = client.results_json(analysis_id, "spectra", limit=10_000, offset=offset, upload_id=upload_id)
        total = page["total"]
        index = {c: i for i, c in enumerate(page["columns"])}
        for row in page["rows"]:
            for c in SUMMARY_COLUMNS:
                out[c].append(row[index[c]] if c in index else None)
        if not page["rows"]:
            break
        offset += len(page["rows"])
    return JsonResponse({"total": total, "truncated": bool(total and total > SUMMARY_MAX_ROWS), **out})


SPECTRA_COLUMNS = ("spectrum_index", "native_id", "ms_level", "rt_seconds", "signal", "n_peaks", "n_features",
                   "base_peak_mz", "precursor_mz", "precursor_charge")


@require_GET
@api_errors
def spectra(request: HttpRequest, analysis_id: int) -> HttpResponse:
    client = client_for(request)
    a = client.analysis(analysis_id)
    if a["status"] != "succeeded":
        return render(request, "portal/error.html",
                      {"message": f"Analysis {analysis_id} is {a['status']}; its spectra can be browsed once it has succeeded."},
                      status=409)
    try:
        offset = max(0, int(request.GET.get("offset", 0)))
    except ValueError:
        offset = 0
    upload_id = chosen_upload(request, a)
    page = client.results_json(analysis_id, "spectra", limit=PAGE, offset=offset, upload_id=upload_id)
    index = {c: i for i, c in enumerate(page["columns"])}
    rows = [{c: row[index[c]] if c in index else None for c in SPECTRA_COLUMNS} for row in page["rows"]]
    return render(
        request,
        "portal/spectra.html",
        {
            "a": a,
            "q": upload_query(a, upload_id),
            "amp": "&" if upload_query(a, upload_id) else "?",
            "rows": rows,
            "total": page["total"],
            "offset": offset,
            "prev": max(0, offset - PAGE) if offset > 0 else None,
            "next": offset + PAGE if offset + PAGE < page["total"] else None,
        },
    )


@require_GET
@api_errors
def spectrum(request: HttpRequest, analysis_id: int, index: int) -> HttpResponse:
    client = client_for(request)
    a = client.analysis(analysis_id)
    upload_id = chosen_upload(request, a)
    s = client.spectrum(analysis_id, index, upload_id)
    return render(request, "portal/spectrum.html", {"a": a, "s": s, "index": index, "q": upload_query(a, upload_id)})


@require_GET
@api_errors
def spectrum_json(request: HttpRequest, analysis_id: int, index: int) -> JsonResponse:
    client = client_for(request)
    upload = request.GET.get("upload")
    upload_id = int(upload) if upload and upload.isdigit() else None
    return JsonResponse(client.spectrum(analysis_id, index, upload_id))


@require_GET
@api_errors
def download(request: HttpRequest, analysis_id: int, table: str, fmt: str) -> HttpResponse:
    """Streams a result file from the API to the browser with the user's token (never buffered)."""
    if table not in api.RESULT_TABLES or fmt not in api.DOWNLOAD_FORMATS:
        raise Http404("no such result file")
    dl = client_for(request).download(analysis_id, table, fmt)
    response = StreamingHttpResponse(dl.chunks(), content_type=dl.headers.get("content-type", "application/octet-stream"))
    response["Content-Disposition"] = dl.headers.get(
        "content-disposition", f'attachment; filename="analysis-{analysis_id}-{table}.{fmt}"'
    )
    if "content-length" in dl.headers:
        response["Content-Length"] = dl.headers["content-length"]
    return response
