from __future__ import annotations

import hashlib
import json
import re
import uuid
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

from .templatetags.portal_extras import when
from .uploads import human_size

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


LIST_RANGE_MAX = 1000


def _text_list(value: str, pair: bool) -> list[int]:
    """'1,2' / '1 2' -> [1, 2]. A range 'a-b' is the pair [a, b] for a pair field (charges
    '1-60') and every number from a to b for a list (MS levels '1-3' -> [1, 2, 3]: not [1, 3])."""
    items: list[int] = []
    for part in re.sub(r"\s*-\s*", "-", value).replace(",", " ").split():
        bounds = part.split("-")
        if pair and len(bounds) > 2 and all(b.isdigit() for b in bounds):
            raise forms.ValidationError("Enter a range as two whole numbers, like 1-60.")
        if not all(b.isdigit() for b in bounds) or len(bounds) > 2:
            raise forms.ValidationError(
                f"'{part}' is not a whole number or a range: enter positive whole numbers separated by commas, "
                "like 1,2, or a range like 1-60.")
        numbers = [int(b) for b in bounds]
        if len(numbers) == 2 and not pair:
            low, high = numbers
            if low > high:
                raise forms.ValidationError(f"The range {part} runs backwards; write the smaller number first, "
                                            f"like {high}-{low}.")
            if high - low >= LIST_RANGE_MAX:
                raise forms.ValidationError(f"The range {part} is too long.")
            numbers = list(range(low, high + 1))
        items.extend(numbers)
    return items


class ListField(forms.CharField):
    """A list of integers typed as text ('1,2', '1-3'), or a pair ('1-60'); empty means the
    default (null or [])."""

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
        items = _text_list(text, self.pair)
        if self.pair:
            if len(items) != 2:
                raise forms.ValidationError("Enter a range as two whole numbers, like 1-60.")
            if items[0] > items[1]:
                raise forms.ValidationError(f"The range {text} runs backwards; write the smaller number first, "
                                            f"like {items[1]}-{items[0]}.")
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


def upload_label(upload: dict, uploads: list[dict]) -> str:
    """A file's name; with its size and upload time when another file has the same name (the same
    run uploaded twice, or two runs named alike), so the person can tell which one they tick."""
    name = upload["filename"]
    if sum(u["filename"] == name for u in uploads) < 2:
        return name
    return f"{name} ({human_size(upload['size'])}, uploaded {when(upload.get('created_at'))}, #{upload['id']})"


class AnalysisForm(KeyedForm):
    """Uploads to analyse, a name, a preset or custom parameters (from the API's help), and the
    form's key: submitting the same form twice starts one analysis, not two."""

    name = forms.CharField(max_length=200, required=False, help_text="Optional; shown in the list.")
    uploads = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple, help_text="One analysis over every file ticked.",
        error_messages={"invalid_choice": "Select a valid choice: file #%(value)s is not among your files any more "
                                          "(deleted, perhaps in another tab). Tick the files to analyse again."},
    )
    preset = forms.ChoiceField(widget=forms.RadioSelect)

    def __init__(self, *args: Any, uploads: list[dict], parameters: dict, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.api_parameters = parameters
        self.fields["uploads"].choices = [(str(u["id"]), upload_label(u, uploads)) for u in uploads]
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
            # The custom fields are hidden and unused: what they hold (left from an earlier choice
            # of Custom) cannot stop the analysis with an error the page does not show.
            for pname in self.param_names:
                self._errors.pop(f"p_{pname}", None)
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

    def defaults_json(self) -> str:
        """The engine's defaults: the page's script starts each preset from them, so the custom
        fields never hold a mix of two presets."""
        help_ = self.api_parameters.get("help", {})
        defaults = self.api_parameters.get("defaults") or {k: v.get("default") for k, v in help_.items()}
        return json.dumps(defaults)
