"""Log-in by e-mail address as people type it: sign-up keeps the address lower-cased and trimmed
(`SignUpForm.clean_email`), so "Alice@Lab.org " at the log-in form is the same account (a phone
capitalises the first letter by itself)."""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend


class EmailBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if not isinstance(username, str):
            return super().authenticate(request, username=username, password=password, **kwargs)
        user = super().authenticate(request, username=username.strip().lower(), password=password, **kwargs)
        if user is None and username != username.strip().lower():
            # A username kept as it was typed (`createsuperuser` does not lower-case).
            user = super().authenticate(request, username=username, password=password, **kwargs)
        return user
