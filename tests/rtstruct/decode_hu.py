"""Independent decoder (pydicom): sorts the slices along their normal and writes slice k's
HU (int16 little endian, rescale applied) to OUT/<k>.raw."""
import pathlib
import sys

import numpy as np
import pydicom

src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
slices = []
for f in sorted(src.iterdir()):
    ds = pydicom.dcmread(str(f))
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    slices.append((float(np.dot(normal, [float(v) for v in ds.ImagePositionPatient])), ds))
slices.sort(key=lambda s: s[0])
for k, (_, ds) in enumerate(slices):
    hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.round(hu).astype("<i2").tofile(str(out / f"{k}.raw"))
print("OK", len(slices))
