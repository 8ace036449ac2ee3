"""Images, geometry, structures and image I/O.

Arrays follow the SimpleITK convention: ``image.array[k, j, i]`` is voxel (i, j, k), i.e. the
numpy shape is (nz, ny, nx). Geometry is in DICOM patient coordinates (LPS, mm)::

    world = origin + direction @ (spacing * (i, j, k))

Example::

    import numpy as np, isoline
    g = isoline.core.Geometry(size=(64, 64, 32), spacing=(1, 1, 2.5), origin=(-32, -32, 0))
    a = np.zeros(g.shape, dtype=np.int16)
    img = isoline.core.Image(a, g)          # shares memory with `a`
    a[10, 20, 30] = 1000                    # visible through img
    isoline.core.write_image(img, "/tmp/x.nii.gz")
"""
from ._isoline.core import (  # noqa: F401
    Geometry,
    Image,
    Margin,
    Structure,
    StructureSet,
    StructureType,
    build_info,
    built_with_cuda,
    cuda_device_count,
    expand,
    fill_holes,
    intersect,
    keep_largest_components,
    not_mask_names,
    read_image,
    read_mask_dir,
    remove_islands,
    resample,
    shrink,
    smooth,
    subtract,
    union,
    version,
    write_image,
    write_mask_dir,
)

__all__ = [
    "Geometry",
    "Image",
    "Margin",
    "expand",
    "shrink",
    "union",
    "intersect",
    "subtract",
    "keep_largest_components",
    "remove_islands",
    "fill_holes",
    "smooth",
    "resample",
    "Structure",
    "StructureSet",
    "StructureType",
    "build_info",
    "built_with_cuda",
    "cuda_device_count",
    "read_image",
    "not_mask_names",
    "read_mask_dir",
    "version",
    "write_image",
    "write_mask_dir",
]
