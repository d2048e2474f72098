"""Face masks: the stored fields (``fields``), the face-set's own occlusion mask network (``net``: pure torch) and
its work on a dataset: ``labels`` (training labels), ``learn`` (training, apply), ``fix`` (user fixes). `faceset mask`
runs them.
"""
from curate.masks.fields import (
    EXPORT_ORDER,
    FIXED_FIELD,
    LEARNED_FIELD,
    export_mask_field,
    polygons_mask,
    segmentation_array,
)

__all__ = ["EXPORT_ORDER", "FIXED_FIELD", "LEARNED_FIELD", "export_mask_field", "polygons_mask", "segmentation_array"]
