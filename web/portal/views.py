"""The site's pages. Each view talks to the analysis API with the signed-in user's own token, so
the API's per-user isolation (another user's upload or analysis is a 404) holds here too."""

from __future__ import annotations

import logging
import re
import uuid
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
from .templatetags.portal_extras import when
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


def plain_message(exc: api.ApiError) -> str:
    """The API's refusal as a sentence for the page. A 404 is the API's own words ("analysis 7
    not found", "spectrum 3 is not in the results of analysis 1"), said on the site's page rather
    than Django's bare "Not Found" (or, with DEBUG, its URL-pattern listing); an internal error
    of the API says what to do instead of "Internal Server Error"."""
    if isinstance(exc, api.ApiUnavailable) or exc.status == 503:
        return exc.detail if isinstance(exc, api.ApiUnavailable) else (
            f"The analysis service is busy or restarting ({exc.detail}). Please try again in a minute.")
    if exc.status >= 500:
        return (f"The analysis service failed while handling this (HTTP {exc.status}). Please try again; "
                "if it keeps happening, tell the site's administrators what you did.")
    detail = exc.detail.strip()
    if exc.status == 404:
        detail = detail[:1].upper() + detail[1:]
        if not detail.endswith("."):
            detail += "."
        return f"{detail} It may have been deleted, or the link is wrong."
    return detail


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
            if isinstance(exc, api.ApiUnavailable):
                log.warning("analysis API unreachable: %s", exc.reason)
            message, status = plain_message(exc), exc.status if exc.status < 500 else 502
        if wants_json:
            return JsonResponse({"error": message}, status=status)
        return render(request, "portal/error.html", {"message": message}, status=status)

    return wrapper


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form (or an upload) sent from a page whose security token is no longer valid: the page
    was open across a log-in, a log-out or in another browser session (settings.CSRF_FAILURE_VIEW).
    Reloading the page is the fix; Django's own page talks about cookies and referers."""
    log.info("CSRF failure on %s: %s", request.path, reason)
    message = ("This page is out of date (you logged in or out since it was opened, perhaps in another tab). "
               "Reload the page and try again; nothing was changed.")
    if request.headers.get("x-requested-with") == "XMLHttpRequest":
        return JsonResponse({"error": message}, status=403)
    return render(request, "portal/error.html", {"message": message}, status=403)


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
        return fail("No file was sent. Choose an mzML or MGF file (.mzML, .mzML.gz, .mzML.bz2, .mgf, .mgf.gz, "
                    ".mgf.bz2).", 400)
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
    copies = earlier_copies(client, created)
    notice = duplicate_notice(created, copies)
    if xhr:
        if notice:  # shown by the script at once, and on the files page it reloads when done
            messages.warning(request, notice)
        return JsonResponse({"upload": created, "duplicate_of": copies[0] if copies else None, "notice": notice},
                            status=201)
    messages.success(request, f"Uploaded {created['filename']}.")
    if notice:
        messages.warning(request, notice)
    return redirect("uploads")


# A new upload is compared with the user's newest this many files (the API's largest page): one
# list call however many files there are; a copy of a file older than those is not noticed.
DUPLICATE_SCAN = 1000


def earlier_copies(client: api.ApiClient, created: dict) -> list[dict]:
    """The user's files uploaded before `created` with the same content (the API's SHA-256),
    oldest first. Only a notice depends on it: if the list call fails the upload stands, unchecked."""
    sha256 = created.get("sha256")
    if not sha256:
        return []
    try:
        items = client.uploads(limit=DUPLICATE_SCAN)["items"]
    except api.ApiError as exc:
        log.warning("upload %s not compared with earlier files: %s", created["id"], exc.detail)
        return []
    return sorted((u for u in items if u.get("sha256") == sha256 and u["id"] < created["id"]),
                  key=lambda u: u["id"])


def duplicate_notice(created: dict, copies: list[dict]) -> str | None:
    """Says that a new upload repeats a file the user already has, and which. Uploading the same
    content again may be meant (under another name, say), so the new copy is neither refused nor
    deleted: the user decides."""
    if not copies:
        return None
    first, more = copies[0], len(copies) - 1
    others = f" and {more} other file{'s' if more > 1 else ''} of yours" if more else ""
    return (f"'{created['filename']}' (#{created['id']}) has the same content as '{first['filename']}' "
            f"(#{first['id']}, uploaded {when(first.get('created_at'))}){others}. If you uploaded it "
            f"again by mistake, you can delete the new copy, #{created['id']}; keeping both is fine too.")


@require_POST
@api_errors
def delete_upload(request: HttpRequest, upload_id: int) -> HttpResponse:
    client = client_for(request)
    try:
        name = client.get_upload(upload_id)["filename"]
        client.delete_upload(upload_id)
    except api.ApiError as exc:
        if exc.status == 404:  # a second click on Delete, or the back button to an old list
            return render(request, "portal/error.html", {
                "message": "This file is not among your files (any more): it may have been deleted already.",
                "back_url": reverse("uploads"), "back_label": "Your files"}, status=404)
        if exc.status == 409:  # an unfinished analysis reads it
            using = re.search(r"analysis (\d+)", exc.detail)
            which = f"analysis {using[1]}" if using else "an unfinished analysis"
            messages.error(request, f"'{name}' was not deleted: {which} is still using it. Wait for it to "
                                    "finish (or cancel it), then delete the file.")
            return redirect("uploads")
        raise
    messages.success(request, f"File deleted: '{name}'.")
    return redirect("uploads")


# --- analyses -----------------------------------------------------------------------------------


def file_names(client: api.ApiClient) -> dict[int, str]:
    return {u["id"]: u["filename"] for u in client.uploads(limit=200)["items"]}


def file_label(upload_id: int, names: dict[int, str]) -> str:
    """An input file's name; a deleted one says so (the analysis's results remain)."""
    return names.get(upload_id, f"upload {upload_id} (deleted)")


def input_names(a: dict, names: dict[int, str]) -> list[str]:
    return [file_label(i, names) for i in a.get("upload_ids") or []]


@require_GET
@api_errors
def analyses(request: HttpRequest) -> HttpResponse:
    client = client_for(request)
    listing = client.analyses(limit=PAGE)
    names = file_names(client) if listing["items"] else {}
    for a in listing["items"]:
        a["files"] = input_names(a, names)
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


def refused_parameter(detail: str, form: AnalysisForm) -> str | None:
    """The custom field a refusal of the API names ("invalid parameter `charge_range`: ...",
    "min_snr must be at least 0", "deconvolve.charge_min"), when the custom fields are shown."""
    if form.cleaned_data.get("preset") != "custom":
        return None
    for name in re.findall(r"[a-z][a-z_]+", detail):
        if name in form.param_names:
            return f"p_{name}"
        if name == "charge_min" or name == "charge_max":
            return "p_charge_range" if "charge_range" in form.param_names else None
    return None


@require_http_methods(["GET", "POST"])
@api_errors
def new_analysis(request: HttpRequest) -> HttpResponse:
    client = client_for(request)
    uploads_ = client.uploads(limit=200)["items"]
    parameters = client.parameters()
    initial = {"uploads": request.GET.getlist("upload")}
    form = AnalysisForm(request.POST or None, uploads=uploads_, parameters=parameters, initial=initial)
    status = 200  # 502 when the API failed: the form is shown again with what was typed
    if request.method == "POST" and form.is_valid():
        try:
            created = client.create_analysis(
                [int(u) for u in form.cleaned_data["uploads"]],
                form.cleaned_data["params"],
                form.cleaned_data.get("name") or None,
                idempotency_key=form.idempotency_key(),
            )
        except api.ApiError as exc:
            if exc.status == 422 and "Idempotency-Key" in exc.detail:
                # This rendered form already started an analysis, and was sent again with other
                # settings (the back button, then a change): a new analysis is meant. A new key
                # lets the next press start it; until then nothing is started unasked.
                earlier = re.search(r"created analysis (\d+)", exc.detail)
                data = request.POST.copy()
                data["request_key"] = uuid.uuid4().hex
                form = AnalysisForm(data, uploads=uploads_, parameters=parameters)
                form.is_valid()
                which = f"analysis {earlier[1]}" if earlier else "an analysis"
                form.add_error(None, f"This form already started {which} with other settings. To start "
                               "another analysis with the settings below, press Start analysis again.")
            elif exc.status >= 500:
                # Kept on the form: what was typed stays, and pressing again is safe (same key).
                form.add_error(None, f"The analysis was not started. {plain_message(exc)} "
                               "Your settings are kept below.")
                status = 502
            else:
                form.add_error(None, f"The analysis could not be started: {exc.detail}")
                field = refused_parameter(exc.detail, form)
                if field is not None:  # shown at the field too, where the value is changed
                    form.add_error(field, exc.detail)
        else:
            messages.success(request, f"Analysis {created['id']} started.")
            return redirect("analysis", created["id"])
    return render(request, "portal/new_analysis.html", {"form": form, "has_uploads": bool(uploads_)}, status=status)


def failed_inputs(a: dict) -> dict[int, dict]:
    """The inputs of a succeeded analysis that could not be analysed (the API's
    `summary.failed_inputs`: upload id, file name, cause); the others' results stand."""
    return {f["upload_id"]: f for f in (a.get("summary") or {}).get("failed_inputs") or []}


def chosen_upload(request: HttpRequest, a: dict) -> int | None:
    """The input file a page shows (`?upload=`): results of several inputs share one table with an
    `upload_id` column, and spectrum indices restart in each input. Default: the first input with
    results (an input that failed on its own has none)."""
    failed = failed_inputs(a)
    ids = [i for i in a.get("upload_ids") or [] if i not in failed] or a.get("upload_ids") or []
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
    names = file_names(client) if a.get("upload_ids") else {}
    selected = chosen_upload(request, a)
    failed = failed_inputs(a)
    files = input_names(a, names)
    return render(
        request,
        "portal/analysis.html",
        {
            "a": a,
            "finished": a["status"] in FINISHED,
            "files": files,
            "inputs": [(i, name, i in failed) for i, name in zip(a.get("upload_ids") or [], files)],
            "failed_inputs": [f["cause"] if f["cause"].startswith(f["filename"]) else f"{f['filename']}: {f['cause']}"
                              for f in failed.values()],
            "analysed": len(a.get("upload_ids") or []) - len(failed),
            "selected": selected,
            "selected_name": None if selected is None else file_label(selected, names),
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
    per_level: dict[str, int] = {}
    for level in out["ms_level"]:
        if level is not None:
            per_level[str(level)] = per_level.get(str(level), 0) + 1
    return JsonResponse({"total": total, "truncated": bool(total and total > SUMMARY_MAX_ROWS),
                         "spectra_per_level": per_level, **out})


SPECTRA_COLUMNS = ("spectrum_index", "native_id", "ms_level", "rt_seconds", "signal", "n_peaks", "n_features",
                   "base_peak_mz", "precursor_mz", "precursor_charge")


def input_name(client: api.ApiClient, a: dict, upload_id: int | None) -> str | None:
    """The file name of the input a page shows, when the analysis has several (else None)."""
    if upload_id is None or len(a.get("upload_ids") or []) < 2:
        return None
    return file_label(upload_id, file_names(client))


def spectrum_link(a: dict, upload_id: int | None, index: int, position: int) -> str:
    """A spectrum page's address with its position in the results (`pos`): spectrum indices are
    the file's own, so they have gaps wherever spectra were left out (`ms_levels`), and the
    spectrum page finds its neighbours by position."""
    query = upload_query(a, upload_id)
    return f"{reverse('spectrum', args=[a['id'], index])}{query}{'&' if query else '?'}pos={position}"


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
    total = page["total"]
    if offset and offset >= total:  # a stale or edited address: the last page instead of an empty one
        offset = max(0, (total - 1) // PAGE * PAGE)
        page = client.results_json(analysis_id, "spectra", limit=PAGE, offset=offset, upload_id=upload_id)
    index = {c: i for i, c in enumerate(page["columns"])}
    rows = [{c: row[index[c]] if c in index else None for c in SPECTRA_COLUMNS} for row in page["rows"]]
    for position, r in enumerate(rows, start=offset):
        r["url"] = spectrum_link(a, upload_id, r["spectrum_index"], position)
    return render(
        request,
        "portal/spectra.html",
        {
            "a": a,
            "file": input_name(client, a, upload_id),
            "q": upload_query(a, upload_id),
            "amp": "&" if upload_query(a, upload_id) else "?",
            "rows": rows,
            "total": total,
            "first": offset + 1,
            "last": offset + len(rows),
            "prev": max(0, offset - PAGE) if offset > 0 else None,
            "next": offset + PAGE if offset + PAGE < total else None,
        },
    )


def list_link(a: dict, upload_id: int | None, position: int | None) -> str:
    """The spectra list's page that holds the spectrum at `position`."""
    query = upload_query(a, upload_id)
    offset = 0 if position is None else position // PAGE * PAGE
    return f"{reverse('spectra', args=[a['id']])}{query}" + (f"{'&' if query else '?'}offset={offset}" if offset else "")


NEIGHBOUR_SCAN_ROWS = 10_000


def spectrum_position(client: api.ApiClient, analysis_id: int, upload_id: int | None, index: int,
                      hint: int | None) -> tuple[int | None, int | None, int | None, int]:
    """(position of spectrum `index` in the results, the previous spectrum's index, the next
    one's, the number of spectra). Positions come from the spectra list's links (`hint`); without
    one (an address typed or bookmarked) the results are scanned, up to SUMMARY_MAX_ROWS rows."""
    if hint is not None and 0 <= hint < SUMMARY_MAX_ROWS * 1000:
        start = max(0, hint - 1)
        page = client.results_json(analysis_id, "spectra", limit=3, offset=start, upload_id=upload_id)
        column = page["columns"].index("spectrum_index")
        found = [row[column] for row in page["rows"]]
        at = hint - start
        if at < len(found) and found[at] == index:  # else a stale position: scanned below
            prev = found[at - 1] if at > 0 else None
            nxt = found[at + 1] if at + 1 < len(found) else None
            return hint, prev, nxt, page["total"]
    offset, total, before = 0, None, None
    while (total is None or offset < total) and offset < SUMMARY_MAX_ROWS:
        page = client.results_json(analysis_id, "spectra", limit=NEIGHBOUR_SCAN_ROWS, offset=offset,
                                   upload_id=upload_id)
        total = page["total"]
        column = page["columns"].index("spectrum_index")
        found = [row[column] for row in page["rows"]]
        if not found:
            break
        if index in found:
            at = found.index(index)
            prev = found[at - 1] if at > 0 else before
            if at + 1 < len(found):
                nxt = found[at + 1]
            elif offset + len(found) < total:
                more = client.results_json(analysis_id, "spectra", limit=1, offset=offset + len(found),
                                           upload_id=upload_id)
                nxt = more["rows"][0][column] if more["rows"] else None
            else:
                nxt = None
            return offset + at, prev, nxt, total
        before = found[-1]
        offset += len(found)
    return None, None, None, total or 0


@require_GET
@api_errors
def spectrum(request: HttpRequest, analysis_id: int, index: int) -> HttpResponse:
    client = client_for(request)
    a = client.analysis(analysis_id)
    upload_id = chosen_upload(request, a)
    s = client.spectrum(analysis_id, index, upload_id)
    try:
        hint = int(request.GET["pos"])
    except (KeyError, ValueError):
        hint = None
    position, prev, nxt, total = spectrum_position(client, analysis_id, upload_id, index, hint)
    return render(
        request,
        "portal/spectrum.html",
        {
            "a": a,
            "s": s,
            "index": index,
            "q": upload_query(a, upload_id),
            "file": input_name(client, a, upload_id),
            "position": None if position is None else position + 1,
            "total": total,
            "list_url": list_link(a, upload_id, position),
            "prev_url": None if prev is None else spectrum_link(a, upload_id, prev, position - 1),
            "next_url": None if nxt is None else spectrum_link(a, upload_id, nxt, position + 1),
        },
    )


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
