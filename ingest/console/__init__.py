"""The console: server-rendered pages over the admin API's own core functions, at /console/.

Off (404) unless ADMIN_TOKEN is set. `auth` keeps logins and CSRF tokens in the store, `views` the pages,
`chart` draws the SVG; templates and static files ship in the package (no CDN, no build step).
"""

from __future__ import annotations

from ingest.console.views import bp

__all__ = ["bp"]
