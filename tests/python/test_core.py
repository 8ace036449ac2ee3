import numpy as np
import pytest

import isoline
from isoline import core


def make_geometry():
    d = np.array([[0, 0, 1], [1, 0, 0], [0, -1, 0]], dtype=float)  # permuted with a flip
    return core.Geometry(size=(6, 5, 4), spacing=(1.0, 2.0, 2.5), origin=(-10.5, 3.25, 7.0), direction=d)


def test_numpy_view_shares_memory_with_cpp_image():
    g = make_geometry()
    a = np.zeros(g.shape, dtype=np.int16)
    img = core.Image(a, g)
    view = img.array
    assert np.shares_memory(view, a)
    a[3, 4, 5] = 1234                     # write through the original array
    assert view[3, 4, 5] == 1234          # seen through the image's view
    assert img.min_max() == (0.0, 1234.0)  # and by C++ code
    view[0, 0, 0] = -7
    assert a[0, 0, 0] == -7


def test_view_outlives_image():
    img = core.Image(np.arange(60, dtype=np.float32).reshape(3, 4, 5))
    v = img.array
    del img
    assert v[2, 3, 4] == 59.0


def test_copy_flag_and_non_contiguous_arrays_copy():
    a = np.zeros((4, 5, 6), dtype=np.uint8)
    assert not np.shares_memory(core.Image(a, copy=True).array, a)
    t = np.zeros((6, 5, 4), dtype=np.uint8).transpose()
    img = core.Image(t)
    assert not np.shares_memory(img.array, t)
    assert img.geometry.size == (6, 5, 4)


def test_roundtrip_keeps_geometry(tmp_path):
    g = make_geometry()
    a = np.random.default_rng(1).integers(-1000, 2000, size=g.shape).astype(np.int16)
    path = str(tmp_path / "x.nii.gz")
    core.write_image(core.Image(a, g), path)
    back = core.read_image(path)
    assert back.dtype == "int16"
    assert back.geometry.same_grid(g, 1e-4)
    np.testing.assert_allclose(back.geometry.direction, g.direction, atol=1e-6)
    np.testing.assert_array_equal(back.array, a)
    ijk = back.geometry.world_to_index(g.index_to_world((1, 2, 3)))
    np.testing.assert_allclose(ijk, (1, 2, 3), atol=1e-6)


def test_errors_map_to_python_types(tmp_path):
    with pytest.raises(OSError) as e:
        core.read_image("/nonexistent/ct.nii.gz")
    assert "/nonexistent/ct.nii.gz" in str(e.value)
    assert isinstance(e.value, isoline.IoError)
    with pytest.raises(ValueError):
        core.Image(np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(isoline.InvalidInput):
        core.Image(np.zeros((2, 2, 2), dtype=np.float64))
    with pytest.raises(ValueError):
        core.Geometry(size=(2, 2, 2), spacing=(0, 1, 1))
    bad = tmp_path / "bad.nii.gz"
    bad.write_text("not an image")
    with pytest.raises(isoline.IoError):
        core.read_image(str(bad))


def test_structure_set():
    g = core.Geometry(size=(10, 10, 10), spacing=(2, 2, 2.5))
    m = np.zeros(g.shape, dtype=np.uint8)
    m[2:6, 2:6, 2:6] = 1
    s = core.StructureSet(g)
    s.add("PTV70", core.Image(m, g))
    assert "PTV70" in s and len(s) == 1
    ptv = s["PTV70"]
    assert ptv.type == core.StructureType.PTV
    assert ptv.volume_cc == pytest.approx(64 * 10 / 1000)
    with pytest.raises(ValueError):
        s.add("PTV70", core.Image(m, g))
    with pytest.raises(KeyError):
        s["nothing"]


def test_openkbp_ct(shared_data):
    ct = core.read_image(str(shared_data / "openkbp/train/pt_1/ct.nii.gz"))
    assert ct.geometry.size == (128, 128, 128)
    assert ct.geometry.orientation == "LPS"
    nib = pytest.importorskip("nibabel")
    ref = nib.load(str(shared_data / "openkbp/train/pt_1/ct.nii.gz"))
    # nibabel gives (x, y, z) RAS-affine arrays of the same voxels: transpose to (z, y, x).
    np.testing.assert_array_equal(ct.array, np.asarray(ref.dataobj).transpose(2, 1, 0))
    # RAS affine -> LPS origin
    np.testing.assert_allclose(ct.geometry.origin, ref.affine[:3, 3] * np.array([-1, -1, 1]), atol=1e-3)


def test_margins_and_booleans_match_numpy():
    g = core.Geometry(size=(20, 20, 20), spacing=(1, 1, 2))
    a = np.zeros(g.shape, dtype=np.uint8)
    a[10, 10, 10] = 1
    grown = core.expand(core.Image(a, g), 3.0).array
    # 3 mm ball on a 1 x 1 x 2 mm grid: |dx|^2 + |dy|^2 + (2 dz)^2 <= 9
    z, y, x = np.mgrid[-10:10, -10:10, -10:10]
    ref = (x ** 2 + y ** 2 + (2 * z) ** 2 <= 9).astype(np.uint8)
    np.testing.assert_array_equal(grown, ref)
    left = core.expand(core.Image(a, g), core.Margin(left=2.0)).array
    assert left.sum() == 3 and left[10, 10, 12] == 1  # +x is the patient's left
    b = core.Image(grown, g)
    assert core.subtract(b, core.Image(a, g)).array.sum() == grown.sum() - 1
    assert core.shrink(b, 1.0).count_nonzero() < grown.sum()
    with pytest.raises(ValueError):
        core.Margin(-1.0)


def test_adaptive_warp_and_field_views(tmp_path):
    from isoline import adaptive
    g = core.Geometry(size=(16, 16, 16), spacing=(2, 2, 2))
    f = adaptive.synthetic_field(g, max_mm=3.0, bumps=2, sigma_mm=8.0, seed=5)
    a = f.array
    assert a.shape == (16, 16, 16, 3)
    assert np.linalg.norm(a, axis=-1).max() == pytest.approx(3.0, abs=1e-4)
    p = str(tmp_path / "dvf.nii.gz")
    adaptive.write_field(f, p)
    np.testing.assert_array_equal(adaptive.read_field(p).array, a)
    m = np.zeros(g.shape, dtype=np.uint8)
    m[4:12, 4:12, 4:12] = 1
    w = adaptive.warp(core.Image(m, g), adaptive.DisplacementField.zeros(g))
    np.testing.assert_array_equal(w.array, m)
    assert adaptive.jacobian_determinant(f).min_max()[0] > 0


def test_dtype_as_numpy_type_or_name(tmp_path):
    g = core.Geometry(size=(4, 3, 2))
    core.write_image(core.Image(np.arange(24, dtype=np.int16).reshape(2, 3, 4), g), str(tmp_path / "a.nii.gz"))
    for dt in (np.float32, np.dtype("float32"), "float32"):
        assert core.read_image(str(tmp_path / "a.nii.gz"), dtype=dt).dtype == "float32"
        assert core.read_image(str(tmp_path / "a.nii.gz")).cast(dt).dtype == "float32"
    with pytest.raises(isoline.InvalidInput, match="use uint8, int16 or float32"):
        core.read_image(str(tmp_path / "a.nii.gz"), dtype=np.float64)


def test_structure_references_stay_valid_and_masks_are_copied():
    """A reference from s["X"] / s.add() stays the same structure while others are added or
    removed (it used to point into a moving C++ vector: wrong volumes, renaming another
    structure); the set keeps copies of the masks, so a scratch array reused for the next
    structure does not change the earlier ones."""
    g = core.Geometry(size=(12, 12, 8), spacing=(2, 2, 2.5))
    scratch = np.zeros(g.shape, dtype=np.uint8)
    s = core.StructureSet(g)
    scratch[1:3, 1:3, 1:3] = 1
    first = s.add("A", core.Image(scratch, g))
    a_cc = first.volume_cc
    refs = []
    for k in range(60):  # many adds: a vector would have moved several times
        scratch[:] = 0
        scratch[0:1 + k % 6, 0:4, 0:4] = 1
        refs.append(s.add(f"S{k}", core.Image(scratch, g)))
    assert first.name == "A" and first.volume_cc == pytest.approx(a_cc), "the reused array changed A"
    assert s["S0"].volume_cc != s["S5"].volume_cc
    b = s["S1"]
    assert s.remove("A")
    assert b.name == "S1"
    b.name = "Renamed"
    assert "Renamed" in s and "S1" not in s and s["S2"].name == "S2"
    assert first.name == "A"  # a removed structure's reference is detached, not dangling
    m = np.zeros(g.shape, dtype=np.uint8)
    m[5:7, 5:7, 2:4] = 1
    b.mask = core.Image(m, g)
    m[:] = 0
    assert b.mask.count_nonzero() == 8, "the mask setter keeps a copy"


def test_index_world_conversion_takes_many_points():
    g = core.Geometry(size=(10, 10, 10), spacing=(2, 2, 3), origin=(1, 2, 3))
    pts = np.array([[1, 2, 3], [0, 0, 0], [9.5, 0.25, 7]])
    w = g.index_to_world(pts)
    assert w.shape == (3, 3)
    for p, q in zip(pts, w):
        assert np.allclose(g.index_to_world(tuple(p)), q)
    assert np.allclose(g.world_to_index(w), pts)
    with pytest.raises(isoline.InvalidInput, match=r"\(n, 3\) array"):
        g.index_to_world(np.zeros((2, 4)))
