"""Static files storage: WhiteNoise's compressed manifest storage, with each file's
URL worked out once per process.

``{% static %}`` asks the storage for a URL on every render; the manifest lookup,
name cleaning and URL joining cost about 40 µs a tag, and every page has four or
five (issue 16). The manifest is fixed for the life of a process (it changes only
with ``collectstatic`` at deploy), so a name's URL is too.
"""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """``CompressedManifestStaticFilesStorage`` that remembers ``url(name)``.

    A name missing from the manifest raises as before and is not remembered.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._urls: dict[str, str] = {}

    def url(self, name, force=False):
        if force:
            return super().url(name, force=True)
        try:
            return self._urls[name]
        except KeyError:
            url = self._urls[name] = super().url(name)
            return url
