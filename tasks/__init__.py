"""Prefect tasks: thin wrappers over the library that add logging, artifacts and names.

Retries live in exactly one layer, the API client (backoff, ``Retry-After``, a wait
budget): tasks are declared with ``retries=0`` so that a give-up is never multiplied.
"""
