"""The interactive API docs at ``/docs``: Swagger UI reading the OpenAPI document.

The UI is our own copy of swagger-ui-dist (``static/swagger-ui``; its version and origin are in
``SOURCE.txt`` there, the one pin), served by the app itself: the page loads nothing from another
host, which its Content-Security-Policy enforces. Swagger UI 5 reads OpenAPI 3.1 (4.x could not).

Browsers cannot send a body with GET (fetch refuses one), and the spec's read operations take
their fields as a multipart body on GET: the page offers "Try it out" on the POST form of each
read (api/routing answers both alike) and lists the GET form for reference only.
"""

from __future__ import annotations

from pathlib import Path

from mobip.api.routing import API_PREFIX

SWAGGER_UI_DIR = Path(__file__).with_name("static") / "swagger-ui"
SWAGGER_UI_VERSION = (SWAGGER_UI_DIR / "SOURCE.txt").read_text().split("\n", 1)[0].split()[-1]
STATIC_PREFIX = "/docs/static"

PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MOBIP API 2.0</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{STATIC_PREFIX}/swagger-ui.css?v={SWAGGER_UI_VERSION}"></head>
<body><div id="ui"></div>
<script src="{STATIC_PREFIX}/swagger-ui-bundle.js?v={SWAGGER_UI_VERSION}"></script>
<script src="/docs/init.js"></script></body></html>"""

# validatorUrl null: the default sends the document to a validator on another host (and shows
# its badge). Try-it-out only where a browser can send the fields: not on the GET forms, whose
# body fetch would refuse (the POST form of each read is beside it).
INIT = f"""window.ui = SwaggerUIBundle({{
  url: "{API_PREFIX}/openapi.json",
  dom_id: "#ui",
  validatorUrl: null,
  deepLinking: true,
  supportedSubmitMethods: ["post"]
}});
"""

# Everything from this origin; inline styles only (React sets style attributes); images may be
# data: URIs (the UI's icons). No inline script: the start-up code is /docs/init.js.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self' data:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
