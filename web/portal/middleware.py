from django.db import connection
from django.http import HttpResponse, JsonResponse


class HealthCheckMiddleware:
    """Answers `/healthz` (process alive) and `/readyz` (database reachable) before host
    validation, sessions or the login requirement: the load balancer's health checks carry the
    instance's private IP as Host, which is not in ALLOWED_HOSTS."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path == "/healthz":
            return HttpResponse("ok", content_type="text/plain")
        if request.path == "/readyz":
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT 1")
                    cursor.fetchone()
            except Exception as exc:  # any database failure means "not ready"
                return JsonResponse({"status": "not ready", "database": str(exc)}, status=503)
            return JsonResponse({"status": "ready"})
        return self.get_response(request)
