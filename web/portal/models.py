from django.conf import settings
from django.db import models


class ApiAccount(models.Model):
    """A site user's account in the analysis API. The token stays on the server: templates and
    JSON views never render it; the browser only ever talks to this site."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_account")
    api_user_id = models.BigIntegerField()
    token = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"API user {self.api_user_id} for {self.user}"

    def __repr__(self) -> str:  # never leak the token into logs or tracebacks
        return f"<ApiAccount user={self.user_id} api_user={self.api_user_id}>"
