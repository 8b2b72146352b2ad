from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("signup/", views.signup, name="signup"),
    path("uploads/", views.uploads, name="uploads"),
    path("uploads/new", views.upload_file, name="upload_file"),
    path("uploads/<int:upload_id>/delete", views.delete_upload, name="delete_upload"),
    path("analyses/", views.analyses, name="analyses"),
    path("analyses/status.json", views.analyses_status, name="analyses_status"),
    path("analyses/new", views.new_analysis, name="new_analysis"),
    path("analyses/<int:analysis_id>/", views.analysis, name="analysis"),
    path("analyses/<int:analysis_id>/status.json", views.analysis_status, name="analysis_status"),
    path("analyses/<int:analysis_id>/cancel", views.cancel_analysis, name="cancel_analysis"),
    path("analyses/<int:analysis_id>/summary.json", views.analysis_summary, name="analysis_summary"),
    path("analyses/<int:analysis_id>/spectra/", views.spectra, name="spectra"),
    path("analyses/<int:analysis_id>/spectra/<int:index>/", views.spectrum, name="spectrum"),
    path("analyses/<int:analysis_id>/spectra/<int:index>.json", views.spectrum_json, name="spectrum_json"),
    path("analyses/<int:analysis_id>/results/<str:table>.<str:fmt>", views.download, name="download"),
]
