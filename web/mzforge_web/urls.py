from django.urls import include, path

urlpatterns = [
    # Django's auth views: login, logout (POST), password change and reset.
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("portal.urls")),
]
