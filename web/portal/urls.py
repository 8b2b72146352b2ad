from django.urls import path, register_converter

from . import views


class BoundedInt:
    """A whole number up to `limit`: a larger one (or more digits than it has) matches no URL, so
    it is the site's 404 instead of a request the API refuses in its own terms (422 "Input should
    be less than or equal to 2147483647")."""

    limit = 0
    regex = "[0-9]+"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > self.limit:
            raise ValueError(f"{number} is larger than {self.limit}")
        return number

    def to_url(self, value: int) -> str:
        return str(value)


class IdConverter(BoundedInt):
    """An upload's or an analysis's id: the API's are positive 32-bit integers."""

    limit = 2**31 - 1
    regex = "[0-9]{1,10}"


class IndexConverter(BoundedInt):
    """A spectrum's index: the API's are unsigned 32-bit integers."""

    limit = 2**32 - 1
    regex = "[0-9]{1,10}"


register_converter(IdConverter, "id")
register_converter(IndexConverter, "index")

urlpatterns = [
    path("", views.home, name="home"),
    path("signup/", views.signup, name="signup"),
    path("uploads/", views.uploads, name="uploads"),
    path("uploads/new", views.upload_file, name="upload_file"),
    path("uploads/<id:upload_id>/delete", views.delete_upload, name="delete_upload"),
    path("analyses/", views.analyses, name="analyses"),
    path("analyses/status.json", views.analyses_status, name="analyses_status"),
    path("analyses/new", views.new_analysis, name="new_analysis"),
    path("analyses/<id:analysis_id>/", views.analysis, name="analysis"),
    path("analyses/<id:analysis_id>/status.json", views.analysis_status, name="analysis_status"),
    path("analyses/<id:analysis_id>/cancel", views.cancel_analysis, name="cancel_analysis"),
    path("analyses/<id:analysis_id>/summary.json", views.analysis_summary, name="analysis_summary"),
    path("analyses/<id:analysis_id>/spectra/", views.spectra, name="spectra"),
    path("analyses/<id:analysis_id>/spectra/<index:index>/", views.spectrum, name="spectrum"),
    path("analyses/<id:analysis_id>/spectra/<index:index>.json", views.spectrum_json, name="spectrum_json"),
    path("analyses/<id:analysis_id>/results/<str:table>.<str:fmt>", views.download, name="download"),
]
