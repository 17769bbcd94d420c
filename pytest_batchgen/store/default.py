"""The store `--batch-store` names, made from its typed options."""

from __future__ import annotations

from pytest_batchgen.store import AppwriteOptions, LessonStore, StoreError


def open_default_store(url: str, appwrite: AppwriteOptions | None = None) -> LessonStore:
    """The store `--batch-store` names: `sqlite:///PATH` or `appwrite`."""
    if url == "appwrite":
        from pytest_batchgen.store.appwrite import open_appwrite_store

        return open_appwrite_store(appwrite or AppwriteOptions())
    if url.startswith("sqlite:"):
        from pytest_batchgen.store.sqlite import SqliteStore

        return SqliteStore.from_url(url, create=False)  # filled by load-sow, not here
    raise StoreError(f"unknown --batch-store {url!r} (use sqlite:///PATH or appwrite)")
