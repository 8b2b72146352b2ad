"""Gives an existing site user an analysis-API token (an operator's tool).

Sign-up provisions API users itself. This is for the cases it refuses on purpose: the e-mail
already has an API user (created with `mzforge-api create-user`, or left behind by a deleted site
account), or a site user lost their token. Linking a site account to an existing API user gives it
that user's uploads and analyses, so an operator does it after checking who is who; the site never
does it on its own (it does not verify e-mail addresses)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from portal import api
from portal.models import ApiAccount


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("email", help="the site user's e-mail address (their username)")
        parser.add_argument("--replace", action="store_true", help="replace a token the user already has")

    def handle(self, email, replace, **_):
        email = email.strip().lower()
        try:
            user = get_user_model().objects.get(username__iexact=email)
        except get_user_model().DoesNotExist:
            raise CommandError(f"no site user {email}") from None
        if ApiAccount.objects.filter(user=user).exists() and not replace:
            raise CommandError(f"{email} already has an API token (use --replace for a new one)")
        admin = api.admin_client()
        try:
            try:
                created = admin.create_user(email)
                how = "new API user"
            except api.ApiError as exc:
                if exc.status != 409:
                    raise
                created = admin.create_token(email)
                how = "existing API user, new token"
        except api.ApiError as exc:
            raise CommandError(f"the analysis API refused: {exc.detail}") from None
        ApiAccount.objects.update_or_create(user=user, defaults={"api_user_id": created["id"], "token": created["token"]})
        self.stdout.write(f"{email}: linked to API user {created['id']} ({how})")
