"""`faceset extract`: sources -> faces -> samples (``local``), analysed in worker processes (``workers``) or on a
Dask cluster (``cluster``, also used by export and `faceset mask apply`)."""
from typing import Any

__all__ = ["ExtractSummary", "extract"]


def __getattr__(name: str) -> Any:
    """``from curate.extract import extract`` without importing the database side for ``curate.extract.cluster``."""
    if name in __all__:
        from curate.extract import local

        return getattr(local, name)
    raise AttributeError(f"module 'curate.extract' has no attribute {name!r}")
