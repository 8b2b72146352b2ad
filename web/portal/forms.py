from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

CUSTOM = "custom"
PRESET_LABELS = {
    "peptides": "Peptides (bottom-up proteomics)",
    "intact_protein": "Intact protein (top-down, high charge states)",
    "metabolomics": "Metabolomics (small molecules, low charge)",
}


class KeyedForm(forms.Form):
    """A form that carries its own key, made when the form is rendered (a hidden field), for the
    API's Idempotency-Key: submitting the same rendered form again (a double click, a reload or
    "Try again" after a lost answer) returns what the first submission created instead of making
    a second one."""

    request_key = forms.RegexField(
        regex=r"^[0-9a-f]{32}$", required=False, widget=forms.HiddenInput, max_length=32
    )

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["request_key"].initial = uuid.uuid4().hex

    def idempotency_key(self) -> str:
        """The rendered form's key; a new one when none was sent (a client without the field),
        which still makes the site's own retries of this request safe. Call after is_valid()."""
        return self.cleaned_data.get("request_key") or uuid.uuid4().hex


class UploadForm(KeyedForm):
    """The files page's form: its key. The file itself is checked by the view (size, content)."""

    def file_key(self, name: str, size: int) -> str:
        """The Idempotency-Key of one file sent with this form. The page sends each chosen file in
        its own request with the form's key, and the API refuses a key already used for another
        file (422), so each file's key is the form's with the file's name and size: the same file
        sent again from this page has the same key, another file a key of its own."""
        return hashlib.sha256(f"{self.idempotency_key()}\n{size}\n{name}".encode()).hexdigest()


class SignUpForm(UserCreationForm):
    """E-mail and password; the e-mail is also the username (and the API user's e-mail)."""

    email = forms.EmailField(help_text="You log in with this address; password-reset mail goes here.")

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("email",)

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if get_user_model().objects.filter(username__iexact=email).exists():
            raise forms.ValidationError("An account with this e-mail address already exists. Log in instead.")
        return email

    def save(self, commit: bool = True):
        user = super().save(commit=False)
        user.username = user.email = self.cleaned_data["email"]
        if commit:
            user.save()
        return user


def _text_list(value: str) -> list[int]:
    """'1,2' / '1 2' / '1-60' -> [1, 2] / [1, 60]."""
    cleaned = value.replace("-", ",").replace(" ", ",")
    parts = [p for p in cleaned.split(",") if p]
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise forms.ValidationError("Enter whole numbers separated by commas, like 1,2 or 1-60.") from None


class ListField(forms.CharField):
    """A list of integers typed as text ('1,2', '1-60'); empty means the default (null or [])."""

    def __init__(self, *, empty_value: Any, pair: bool = False, **kwargs: Any):
        self.list_empty = empty_value
        self.pair = pair
        super().__init__(required=False, **kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return ("-" if self.pair else ",").join(str(v) for v in value)
        return "" if value is None else value

    def clean(self, value: Any) -> Any:
        text = (super().clean(value) or "").strip()
        if not text:
            return self.list_empty
        items = _text_list(text)
        if self.pair and len(items) != 2:
            raise forms.ValidationError("Enter a range as two whole numbers, like 1-60.")
        return items


def help_text(spec: dict) -> str:
    """The CLI's help for a parameter, worded for a form: a `--no-X` flag's "Skip ..." becomes
    "Untick to skip ...", and the API's note is added where it is not about JSON syntax."""
    text = str(spec.get("help", ""))
    if isinstance(spec.get("default"), bool) and text.lower().startswith("skip "):
        text = "Untick to s" + text[1:]
    note = str(spec.get("note", ""))
    if note and "json" not in note.lower() and not note.lower().startswith("false is"):
        text = f"{text} ({note})"
    elif note.lower().startswith("a json pair") and "null:" in note:
        text = f"{text} (empty: {note.split('null:', 1)[1].strip()})"
    return text


def parameter_field(name: str, spec: dict) -> forms.Field:
    """One form field from one entry of the API's `GET /v1/parameters` help."""
    default = spec.get("default")
    kind = str(spec.get("type", "")).lower()
    label = name.replace("_", " ")
    common = {"label": label, "help_text": help_text(spec), "initial": default}
    if spec.get("choices"):
        return forms.ChoiceField(choices=[(c, c) for c in spec["choices"]], **common)
    if isinstance(default, bool) or kind.startswith("bool"):
        return forms.BooleanField(required=False, **common)
    if (isinstance(default, int) and not isinstance(default, bool)) or kind in ("int", "integer"):
        return forms.IntegerField(**common)
    if isinstance(default, float) or kind in ("float", "number"):
        return forms.FloatField(**common)
    if isinstance(default, (list, tuple)) or default is None:
        pair = "range" in name or "pair" in kind or "tuple" in kind
        empty = None if default is None else list(default)
        return ListField(empty_value=empty, pair=pair, **common)
    return forms.CharField(**common)


class AnalysisForm(KeyedForm):
    """Uploads to analyse, a name, a preset or custom parameters (from the API's help), and the
    form's key: submitting the same form twice starts one analysis, not two."""

    name = forms.CharField(max_length=200, required=False, help_text="Optional; shown in the list.")
    uploads = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple, help_text="One analysis over every file ticked."
    )
    preset = forms.ChoiceField(widget=forms.RadioSelect)

    def __init__(self, *args: Any, uploads: list[dict], parameters: dict, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.api_parameters = parameters
        self.fields["uploads"].choices = [(str(u["id"]), u["filename"]) for u in uploads]
        presets = parameters.get("presets", {})
        self.fields["preset"].choices = [(k, PRESET_LABELS.get(k, k.replace("_", " "))) for k in presets] + [
            (CUSTOM, "Custom parameters")
        ]
        self.fields["preset"].initial = next(iter(presets), CUSTOM)
        self.param_names = []
        for pname, spec in parameters.get("help", {}).items():
            field = parameter_field(pname, spec)
            field.required = False
            self.fields[f"p_{pname}"] = field
            self.param_names.append(pname)

    def parameter_fields(self):
        return [self[f"p_{n}"] for n in self.param_names]

    def clean(self) -> dict:
        data = super().clean()
        preset = data.get("preset")
        if preset and preset != CUSTOM:
            data["params"] = dict(self.api_parameters["presets"][preset])
            return data
        params: dict[str, Any] = {}
        help_ = self.api_parameters.get("help", {})
        for pname in self.param_names:
            value = data.get(f"p_{pname}")
            if value is None and f"p_{pname}" in self.errors:
                continue
            if value is None or value == "":
                value = help_[pname].get("default")
            params[pname] = value
        data["params"] = params
        return data

    def presets_json(self) -> str:
        return json.dumps(self.api_parameters.get("presets", {}))
