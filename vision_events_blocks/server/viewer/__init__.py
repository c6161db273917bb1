"""The event viewer: web pages served by the local server itself (issue 14).

Modelled on Datasette: every view is a shareable URL whose query string holds the filters,
the pages are small static files shipped in the package (no build step, no CDN), and each
view has a JSON twin. The pages hold no data: their scripts call the Vision Events API with
the key the person gives (kept in ``sessionStorage``, sent only as ``Authorization: Bearer``),
so the viewer has exactly the rights of that key.

* :mod:`.routes`  the pages (``/``, ``/view/{useCaseId}``, ``/view/{useCaseId}/{eventId}``),
                  their static files and two read-only JSON routes the API lacks (one event
                  with its operator feedback; counts over time).
* :mod:`.links`   the links ``vision-events serve`` and the demo print.
* ``pages/``, ``static/``  the HTML shells, scripts and style sheet.
"""
from __future__ import annotations

from .links import FAILED_QUALITY_CHECKS, viewer_link
from .routes import VIEWER_CSP, ViewerHooks, mount_viewer

__all__ = ["FAILED_QUALITY_CHECKS", "VIEWER_CSP", "ViewerHooks", "mount_viewer", "viewer_link"]
