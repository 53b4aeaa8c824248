"""Static files storage: hashed names after collectstatic, plain names before."""

from django.contrib.staticfiles.storage import ManifestStaticFilesStorage


class FallbackManifestStaticFilesStorage(ManifestStaticFilesStorage):
    """ManifestStaticFilesStorage that tolerates a missing manifest.

    After collectstatic, the static template tag names the hashed copy
    (board.1a2b3c4d.css), which the proxies may cache for a long time. Before
    collectstatic ever ran (runserver on a laptop), the stock class raises for
    every static file with DEBUG off, turning each page into a 500; this one
    answers the plain name instead. Once a manifest is loaded, a name missing
    from it is still an error, as it should be.
    """

    def stored_name(self, name):
        if not self.hashed_files:
            return name
        return super().stored_name(name)
