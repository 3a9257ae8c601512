"""The JSON twin's OpenAPI document, as data (served at ``/api/openapi.json``; a test checks
that every ``/api/`` route of the application is in it and nothing else)."""

from __future__ import annotations

from typing import Any, Final

_ID: Final = {"name": "upload_id", "in": "path", "required": True, "schema": {"type": "string"}}
_ERR: Final = {
    "description": "refused",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_STATUS: Final = {
    "description": "the upload's status",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/UploadStatus"}}},
}
_AUTH: Final = {"401": _ERR, "403": _ERR}

OPENAPI: Final[dict[str, Any]] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Sodtrack upload page API",
        "version": "1",
        "description": "Everything the upload page does, for scripts. Authenticate with "
        "`Authorization: Bearer <token>` (sodtrack-etl users token NAME), or a session cookie "
        "plus the `X-CSRF-Token` header on POST.",
    },
    "components": {
        "securitySchemes": {
            "token": {"type": "http", "scheme": "bearer"},
            "session": {"type": "apiKey", "in": "cookie", "name": "sodtrack_session"},
        },
        "schemas": {
            "Error": {"type": "object", "properties": {"error": {"type": "string"}}},
            "UploadStatus": {
                "type": "object",
                "properties": {
                    "upload_id": {"type": "string"},
                    "country": {"type": "string"},
                    "file_name": {"type": "string"},
                    "uploaded_by": {"type": "string"},
                    "received_at": {"type": "string"},
                    "drops": {"type": "integer"},
                    "preview_status": {
                        "type": "string",
                        "enum": ["pending", "running", "done", "failed"],
                    },
                    "load_status": {
                        "type": "string",
                        "enum": ["none", "running", "announced", "done", "failed", "cancelled"],
                    },
                    "progress": {"type": ["object", "null"]},
                    "ledger": {"type": ["object", "null"]},
                    "downloads": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
    "security": [{"token": []}, {"session": []}],
    "paths": {
        "/api/me": {
            "get": {
                "summary": "The signed-in account",
                "responses": {"200": {"description": "name and countries"}, **_AUTH},
            }
        },
        "/api/uploads": {
            "get": {
                "summary": "History: uploads of your countries",
                "responses": {"200": {"description": "a list of UploadStatus"}, **_AUTH},
            },
            "post": {
                "summary": "Upload a CSV/XLSX for a country (starts the dry run)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["country", "file"],
                                "properties": {
                                    "country": {"type": "string"},
                                    "file": {"type": "string", "format": "binary"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "201": _STATUS,
                    "200": {"description": "the same file for the same country, uploaded before"},
                    "400": _ERR,
                    "413": _ERR,
                    **_AUTH,
                },
            },
        },
        "/api/uploads/{upload_id}": {
            "get": {
                "summary": "Status, progress, counts",
                "parameters": [_ID],
                "responses": {"200": _STATUS, **_AUTH},
            }
        },
        "/api/uploads/{upload_id}/preview": {
            "get": {
                "summary": "The dry run: every row's verdict, message, fix, marks",
                "parameters": [_ID],
                "responses": {"200": {"description": "the preview"}, "202": _STATUS, **_AUTH},
            }
        },
        "/api/uploads/{upload_id}/load": {
            "post": {
                "summary": "Load the upload (once)",
                "parameters": [_ID],
                "responses": {"202": _STATUS, **_AUTH},
            }
        },
        "/api/uploads/{upload_id}/cancel": {
            "post": {
                "summary": "Cancel what the upload created",
                "parameters": [_ID],
                "responses": {"200": {"description": "what was cancelled"}, "409": _ERR, **_AUTH},
            }
        },
        "/api/uploads/{upload_id}/files/{name}": {
            "get": {
                "summary": "Results or rejects file, or any file of the upload's outbox folder",
                "parameters": [
                    _ID,
                    {
                        "name": "name",
                        "in": "path",
                        "required": True,
                        "description": "results.xlsx, results.csv, rejects.xlsx, rejects.csv (a "
                        "page upload's latest), or a file of <outbox>/<upload_id>/ by its own "
                        "name (a run's files, summary, receipt.json: what artifacts link)",
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {"200": {"description": "the file"}, "404": _ERR, **_AUTH},
            }
        },
        "/api/template/{country}": {
            "get": {
                "summary": "The XLSX template of a country (live catalog)",
                "parameters": [
                    {
                        "name": "country",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {"200": {"description": "the template"}, **_AUTH},
            }
        },
        "/api/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {"200": {"description": "OpenAPI"}},
            }
        },
    },
}
