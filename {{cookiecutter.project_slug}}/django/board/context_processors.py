from django.conf import settings


def project(request):
    """The project's name, for the page header and title.

    Not called site_name: the login view sets that to the request's host.
    """
    return {"project_name": settings.PROJECT_NAME}
