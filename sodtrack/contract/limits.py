"""Numbers the contract fixes (``sodtrack-api.md``), in one place.

Both the simulator (which enforces them) and the client (which respects them) import these;
a change to the real API's limits is a change here only.
"""

from __future__ import annotations

from typing import Final

API_PREFIX: Final = "/api/v1"

# Pagination
PAGE_SIZE_DEFAULT: Final = 100
PAGE_NUMBER_MAX: Final = 1_000_000_000
"""Largest ``page`` accepted (``page`` >= 1; beyond this a 422, like any out-of-range value)."""
PAGE_SIZE_MAX: Final = 500
CURSOR_LIMIT_DEFAULT: Final = 200
CURSOR_LIMIT_MAX: Final = 1000
# Paging query parameters (beside each list's filters); responses carry ``data`` with
# ``meta`` (page-numbered) or ``next_cursor`` (cursor), see ``models.Page``/``models.CursorPage``.
PARAM_PAGE: Final = "page"
PARAM_PAGE_SIZE: Final = "page_size"
PARAM_LIMIT: Final = "limit"
PARAM_CURSOR: Final = "cursor"

# Auth
TOKEN_TTL_S: Final = 900
ALL_SCOPES: Final = (
    "catalog:read",
    "coverage:read",
    "availability:read",
    "bookings:read",
    "bookings:write",
    "projects:read",
    "projects:write",
    "leads:read",
    "leads:write",
)

# Rate limit (per client credential): token bucket
RATE_LIMIT_PER_S: Final = 20.0
RATE_LIMIT_BURST: Final = 40

# Bookings and availability
MIN_LEAD_TIME_S: Final = 3600
MAX_HORIZON_DAYS: Final = 180
AVAILABILITY_MAX_DAYS: Final = 14
SLOT_FIRST_HOUR: Final = 8
SLOT_LAST_HOUR: Final = 17
SLOT_WEEKDAYS: Final = frozenset({0, 1, 2, 3, 4, 5})  # Monday..Saturday
DURATION_STEP_MIN: Final = 30

# Identifiers and documents
EXTERNAL_REFERENCE_PATTERN: Final = r"^[A-Za-z0-9._-]{1,64}$"
DOCUMENT_MAX_BYTES: Final = 10 * 1024 * 1024
DOCUMENT_FILE_FIELD: Final = "file"
"""The binary part of ``POST /projects/{id}/documents`` (its other fields: ``DocumentUpload``)."""
PHONE_PATTERN: Final = r"^\+[1-9]\d{6,14}$"
EMAIL_PATTERN: Final = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"

# Headers
HEADER_REQUEST_ID: Final = "X-Request-Id"
HEADER_RATE_LIMIT: Final = "X-RateLimit-Limit"
HEADER_RATE_REMAINING: Final = "X-RateLimit-Remaining"
HEADER_RATE_RESET: Final = "X-RateLimit-Reset"
HEADER_RETRY_AFTER: Final = "Retry-After"

STAGE_CHECKLIST: Final = ("Site visit", "Materials confirmed", "Work done", "Customer sign-off")
