"""`faceset extract`: sources -> faces -> samples, in local worker processes (``local``) or on a Dask cluster
(``cluster``, also used by export and `faceset mask apply`)."""
from curate.extract.local import ExtractSummary, extract

__all__ = ["ExtractSummary", "extract"]
