"""Independent check with pydicom: every file reads, and every SOP Instance UID the
RT-STRUCT references exists in the CT series (with the right SOP Class)."""
import pathlib
import sys

import pydicom

rs_path, ct_dir = sys.argv[1], pathlib.Path(sys.argv[2])
ct = {}
for f in ct_dir.rglob("*"):
    if f.is_file():
        ds = pydicom.dcmread(str(f))
        ds.pixel_array  # decodes
        ct[ds.SOPInstanceUID] = ds
rs = pydicom.dcmread(rs_path)
series = {d.SeriesInstanceUID for d in ct.values()}
fors = {d.FrameOfReferenceUID for d in ct.values()}
problems = []
refs = 0
for fr in rs.ReferencedFrameOfReferenceSequence:
    if fr.FrameOfReferenceUID not in fors:
        problems.append("frame of reference not the CT's")
    for st in fr.RTReferencedStudySequence:
        for se in st.RTReferencedSeriesSequence:
            if se.SeriesInstanceUID not in series:
                problems.append("series not the CT's")
            listed = {ci.ReferencedSOPInstanceUID for ci in se.ContourImageSequence}
            if listed != set(ct):
                problems.append(f"ContourImageSequence lists {len(listed)} of {len(ct)} CT slices")
            for ci in se.ContourImageSequence:
                refs += 1
                d = ct.get(ci.ReferencedSOPInstanceUID)
                if d is None or d.SOPClassUID != ci.ReferencedSOPClassUID:
                    problems.append("bad slice reference " + ci.ReferencedSOPInstanceUID)
for rc in rs.ROIContourSequence:
    for c in getattr(rc, "ContourSequence", []):
        for ci in c.ContourImageSequence:
            refs += 1
            d = ct.get(ci.ReferencedSOPInstanceUID)
            if d is None:
                problems.append("contour references unknown slice")
                continue
            z = float(c.ContourData[2])
            if abs(z - float(d.ImagePositionPatient[2])) > 1e-3 and abs(d.ImageOrientationPatient[5]) < 1e-6 \
                    and abs(d.ImageOrientationPatient[2]) < 1e-6:
                problems.append(f"contour z {z} not on its slice {d.ImagePositionPatient[2]}")
            if int(c.NumberOfContourPoints) * 3 != len(c.ContourData):
                problems.append("NumberOfContourPoints mismatch")
if rs.PatientID != next(iter(ct.values())).PatientID or rs.StudyInstanceUID != next(iter(ct.values())).StudyInstanceUID:
    problems.append("patient/study not copied")
nums = [int(r.ROINumber) for r in rs.StructureSetROISequence]
if nums != [int(r.ReferencedROINumber) for r in rs.ROIContourSequence] or \
        nums != [int(r.ReferencedROINumber) for r in rs.RTROIObservationsSequence]:
    problems.append("ROI numbers inconsistent")
if problems:
    print("\n".join(sorted(set(problems))))
    sys.exit(1)
print(f"OK {len(ct)} CT files, {refs} references")
