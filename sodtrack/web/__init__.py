"""The upload page for operations staff (``sodtrack-etl serve``): sign in, upload a CSV/XLSX
for a country, see every row's verdict before anything is written, load it, download the
results and rejects files; with a JSON twin under ``/api/`` for scripts. Library code: no
Prefect import (a load is announced to Prefect with the inbox's plain-HTTP emitter).

==================  ==============================================================================
``accounts``        accounts in the state database (argon2id hashes, countries, API tokens, the
                    session-signing key); managed by ``sodtrack-etl users``
``security``        signed session cookies, CSRF tokens, sign-in throttling (pure)
``receive``         a multipart body parsed while it streams: size-limited, hashed, type-checked
``preview``         what the page shows of a dry run: the sheet in its own layout, verdicts,
                    interpreted values, cell marks (pure)
``service``         uploads, dry runs and loads in the background, progress, resume on start,
                    cancel (no HTTP)
``app``             the Starlette application: pages (Jinja2 ``templates/``, no script), the
                    JSON twin, security headers
``openapi``         the JSON twin's OpenAPI document, as data
``files``           run reports, Data Docs and outbox files served from their folders:
                    path traversal impossible; the Data Docs' own CSP (pure)
==================  ==============================================================================
"""
