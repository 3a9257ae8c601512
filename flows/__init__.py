"""Prefect flows: they only sequence tasks (the work is in the library, wrapped by ``tasks``)."""
