"""isoline.rtstruct: CT series, RT-STRUCT and RT-DOSE round trips through DICOM."""
import numpy as np
import pytest

import isoline
from isoline import core, rtstruct


def test_ct_series_roundtrip_keeps_pixels_and_geometry(tmp_path, small_hn):
    info = rtstruct.PatientStudy()
    info.patient_id = "PY-1"
    info.patient_name = "Python^Test"
    seen = []
    written = rtstruct.write_ct_series(small_hn.ct, str(tmp_path / "ct"), info=info,
                                       progress=lambda s, f, d: seen.append(f))
    assert len(written.slices) == small_hn.ct.geometry.size[2]
    assert seen and seen[-1] == 1.0
    back = rtstruct.read_ct_series(str(tmp_path / "ct"))
    assert back.info.patient_id == "PY-1"
    assert back.series_instance_uid == written.series_instance_uid
    assert back.image.geometry.same_grid(small_hn.ct.geometry, 1e-3)
    np.testing.assert_array_equal(back.image.array, small_hn.ct.array)
    # explicit file list, in shuffled order: sorted by position, not by name
    files = [s.file for s in written.slices][::-1]
    np.testing.assert_array_equal(rtstruct.read_ct_series(files).image.array, small_hn.ct.array)
    summaries = rtstruct.list_series(str(tmp_path / "ct"))
    assert len(summaries) == 1 and summaries[0].modality == "CT"
    assert rtstruct.dicom_modality(written.slices[0].file) == "CT"


def test_rtstruct_write_read_rasterize_is_exact(tmp_path, small_hn):
    ct = rtstruct.write_ct_series(small_hn.ct, str(tmp_path / "ct"))
    names = ["Body", "SpinalCord", "PTV70", "LeftParotid"]
    s = core.StructureSet(small_hn.ct.geometry)
    for n in names:
        s.add(n, small_hn.structures[n].mask)
    res = rtstruct.write_rtstruct(s, ct, str(tmp_path / "RS.dcm"), structure_set_label="PYTEST")
    assert res.num_rois == len(names) and res.num_contours > 0
    rs = rtstruct.read_rtstruct(str(tmp_path / "RS.dcm"))
    assert rs.structure_set_label == "PYTEST"
    assert rs.referenced_series_instance_uid == ct.series_instance_uid
    assert sorted(rs.names()) == sorted(names)
    cord = rs.roi("SpinalCord")
    assert cord.contours and cord.contours[0].points.shape[1] == 3
    back = rtstruct.rasterize(rs, ct.image.geometry)
    for n in names:
        np.testing.assert_array_equal(back[n].mask.array, small_hn.structures[n].mask.array, err_msg=n)
    assert rtstruct.contour_volume_cc(rs, cord) == pytest.approx(small_hn.structures["SpinalCord"].volume_cc, rel=1e-6)
    only = rtstruct.rasterize(rs, ct.image.geometry, names=["PTV70"])
    assert only.names() == ["PTV70"]
    g = rtstruct.contour_grid(rs, pixel_mm=2.0)
    assert g.spacing[0] == 2.0


def test_rtdose_roundtrip(tmp_path, small_hn):
    ct = rtstruct.write_ct_series(small_hn.ct, str(tmp_path / "ct"))
    g = small_hn.ct.geometry
    d = np.random.default_rng(3).uniform(0, 70, size=g.shape).astype(np.float32)
    res = rtstruct.write_rtdose(core.Image(d, g), ct, str(tmp_path / "RD.dcm"), dose_comment="pytest")
    assert res.max_quantization_error_gy < 1e-3
    rd = rtstruct.read_rtdose(str(tmp_path / "RD.dcm"))
    assert rd.dose_units == "GY" and rd.frame_of_reference_uid == ct.frame_of_reference_uid
    assert rd.dose.geometry.same_grid(g, 1e-3)
    np.testing.assert_allclose(rd.dose.array, d, atol=2 * res.max_quantization_error_gy + 1e-6)
    assert rtstruct.dicom_modality(str(tmp_path / "RD.dcm")) == "RTDOSE"
    with pytest.raises(ValueError):
        rtstruct.write_rtdose(core.Image(-d, g), ct, str(tmp_path / "neg.dcm"))


def test_rtstruct_errors(tmp_path):
    with pytest.raises(OSError) as e:
        rtstruct.read_rtstruct(str(tmp_path / "missing.dcm"))
    assert "missing.dcm" in str(e.value)
    (tmp_path / "x.dcm").write_bytes(b"\0" * 300)
    with pytest.raises(isoline.Error):
        rtstruct.read_rtstruct(str(tmp_path / "x.dcm"))
    assert rtstruct.dicom_modality(str(tmp_path / "x.dcm")) == ""
    assert rtstruct.generate_uid() != rtstruct.generate_uid()


def test_write_ct_series_replaces_a_folder_only_when_asked(small_hn, tmp_path):
    d = tmp_path / "ct"
    d.mkdir()
    (d / "RS.dcm").write_text("somebody's structure set")
    with pytest.raises(isoline.InvalidInput, match="exists and is not empty"):
        rtstruct.write_ct_series(small_hn.ct, str(d))
    assert (d / "RS.dcm").exists()
    rtstruct.write_ct_series(small_hn.ct, str(d), overwrite=True)
    assert not (d / "RS.dcm").exists()
    assert len(list(d.glob("CT*.dcm"))) == small_hn.ct.geometry.size[2]


def test_write_rtdose_refuses_a_dose_that_does_not_lie_on_the_ct(small_hn, tmp_path):
    ct = rtstruct.write_ct_series(small_hn.ct, str(tmp_path / "ct"))
    g = small_hn.ct.geometry
    far = core.Geometry(size=g.size, spacing=g.spacing, origin=(g.origin[0], g.origin[1], g.origin[2] + 5000.0))
    dose = core.Image(np.ones(tuple(reversed(g.size)), np.float32), far)
    with pytest.raises(isoline.InvalidInput, match="does not overlap the CT"):
        rtstruct.write_rtdose(dose, ct, str(tmp_path / "RD.dcm"))
    assert not (tmp_path / "RD.dcm").exists()
