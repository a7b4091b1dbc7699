"""`assemblyline_v4_service.common.task`'s names that services import: the extraction limit's
exception and the relations of an extracted file to its parent (all `dropped-by` in Sluice)."""

from services.sdk.request import MaxExtractedExceeded

__all__ = ["PARENT_RELATION", "MaxExtractedExceeded"]


class PARENT_RELATION:  # noqa: N801 - AL4's name
    ROOT = "ROOT"
    EXTRACTED = "EXTRACTED"
    INFORMATION = "INFORMATION"
    DYNAMIC = "DYNAMIC"
    MEMDUMP = "MEMDUMP"
    DOWNLOADED = "DOWNLOADED"
