// isoline.core bindings: Geometry, Image (numpy views without copying), structures, I/O.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <type_traits>

#include "common.h"
#include "isoline/core/device.h"
#include "isoline/core/error.h"
#include "isoline/core/geometry.h"
#include "isoline/core/image.h"
#include "isoline/core/io.h"
#include "isoline/core/mask_ops.h"
#include "isoline/core/structure.h"
#include "isoline/core/version.h"

namespace py = pybind11;
using namespace isoline::core;

namespace isoline::py_bind {

namespace {

py::dtype dtype_of(PixelType t) {
  switch (t) {
    case PixelType::UInt8: return py::dtype::of<std::uint8_t>();
    case PixelType::Int16: return py::dtype::of<std::int16_t>();
    case PixelType::Float32: return py::dtype::of<float>();
  }
  return py::dtype::of<float>();
}

PixelType pixel_type_of(const py::dtype& dt, const char* what) {
  if (dt.is(py::dtype::of<std::uint8_t>()) || dt.equal(py::dtype::of<std::uint8_t>())) return PixelType::UInt8;
  if (dt.equal(py::dtype::of<std::int16_t>())) return PixelType::Int16;
  if (dt.equal(py::dtype::of<float>())) return PixelType::Float32;
  fail<InvalidInput>("create image", what,
                     "unsupported dtype " + py::repr(dt).cast<std::string>() + " (use uint8, int16 or float32)");
}

PixelType parse_pixel_type(const std::string& s) {
  if (s == "uint8") return PixelType::UInt8;
  if (s == "int16") return PixelType::Int16;
  if (s == "float32") return PixelType::Float32;
  fail<InvalidInput>("parse pixel type", s, "use uint8, int16 or float32");
}

// "float32", np.float32 or np.dtype("float32") alike.
PixelType pixel_type_arg(const py::object& dtype) {
  if (py::isinstance<py::str>(dtype)) return parse_pixel_type(dtype.cast<std::string>());
  py::dtype dt;
  try {
    dt = py::dtype::from_args(dtype);
  } catch (const py::error_already_set&) {
    fail<InvalidInput>("parse pixel type", py::repr(dtype).cast<std::string>(), "use uint8, int16 or float32");
  }
  return pixel_type_of(dt, "dtype");
}

/// numpy view (nz, ny, nx) of the image's pixels; the array keeps the buffer alive.
py::array array_view(const Image& img) {
  if (img.empty()) fail<InvalidInput>("view image", "", "image is empty");
  const auto& s = img.geometry().size;
  const py::ssize_t item = static_cast<py::ssize_t>(pixel_size(img.pixel_type()));
  std::vector<py::ssize_t> shape = {s[2], s[1], s[0]};
  std::vector<py::ssize_t> strides = {s[1] * s[0] * item, s[0] * item, item};
  auto* keep = new std::shared_ptr<void>(img.buffer());
  py::capsule owner(keep, [](void* p) { delete static_cast<std::shared_ptr<void>*>(p); });
  return py::array(dtype_of(img.pixel_type()), shape, strides, img.buffer().get(), owner);
}

/// Wraps a C-contiguous (nz, ny, nx) numpy array without copying; the image keeps the array alive.
Image image_from_array(py::array arr, const Geometry* geometry, bool copy) {
  if (arr.ndim() != 3)
    fail<InvalidInput>("create image", "array", "expected a 3-D array (nz, ny, nx), got " +
                                                    std::to_string(arr.ndim()) + " dimensions");
  PixelType t = pixel_type_of(arr.dtype(), "array");
  Geometry g = geometry ? *geometry : Geometry{};
  Index3 size{arr.shape(2), arr.shape(1), arr.shape(0)};
  if (geometry && g.size != size)
    fail<InvalidInput>("create image", "array",
                       "array shape (nz, ny, nx) = (" + std::to_string(size[2]) + ", " +
                           std::to_string(size[1]) + ", " + std::to_string(size[0]) +
                           ") does not match the geometry, whose (nx, ny, nz) = (" + std::to_string(g.size[0]) +
                           ", " + std::to_string(g.size[1]) + ", " + std::to_string(g.size[2]) +
                           ") needs an array of shape (" + std::to_string(g.size[2]) + ", " +
                           std::to_string(g.size[1]) + ", " + std::to_string(g.size[0]) + ")");
  g.size = size;
  const bool contiguous = (arr.flags() & py::array::c_style) != 0;
  if (copy || !contiguous || !arr.writeable()) {
    Image img(g, t);
    py::array c = py::array::ensure(arr, py::array::c_style);
    std::memcpy(img.raw(), c.data(), img.byte_size());
    return img;
  }
  auto* holder = new py::object(arr);
  std::shared_ptr<void> buf(arr.mutable_data(), [holder](void*) {
    py::gil_scoped_acquire gil;
    delete holder;
  });
  return Image::wrap(g, t, std::move(buf));
}

template <class A>
A tuple_to_array(const py::sequence& s, const char* what) {
  A a{};
  if (static_cast<std::size_t>(py::len(s)) != a.size())
    fail<InvalidInput>("set geometry", what, "expected " + std::to_string(a.size()) + " values");
  using V = typename A::value_type;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const py::object v = s[i];
    // pybind11 would accept a float for an integer only through a RuntimeError ("Unable to
    // cast ..."): say what is expected instead.
    const bool ok = std::is_integral_v<V> ? PyIndex_Check(v.ptr()) != 0 : PyNumber_Check(v.ptr()) != 0;
    if (!ok)
      fail<InvalidInput>("set geometry", what,
                         std::string("expected ") + std::to_string(a.size()) +
                             (std::is_integral_v<V> ? " integers" : " numbers") + ", got " +
                             py::repr(s).cast<std::string>());
    a[i] = v.cast<V>();
  }
  return a;
}

bool empty_geometry(const Geometry& g) { return g.size[0] == 0 && g.size[1] == 0 && g.size[2] == 0; }

}  // namespace

// Pickle state of a Geometry: (size, spacing, origin, direction as 9 values, row-major).
py::tuple geometry_state(const Geometry& g) {
  return py::make_tuple(py::make_tuple(g.size[0], g.size[1], g.size[2]),
                        py::make_tuple(g.spacing[0], g.spacing[1], g.spacing[2]),
                        py::make_tuple(g.origin[0], g.origin[1], g.origin[2]),
                        py::tuple(py::cast(std::vector<double>(g.direction.begin(), g.direction.end()))));
}

Geometry geometry_from_state(const py::tuple& t) {
  if (t.size() != 4) fail<InvalidInput>("unpickle Geometry", "", "expected a state of 4 values");
  Geometry g;
  g.size = tuple_to_array<Index3>(t[0].cast<py::sequence>(), "size");
  g.spacing = tuple_to_array<Vec3>(t[1].cast<py::sequence>(), "spacing");
  g.origin = tuple_to_array<Vec3>(t[2].cast<py::sequence>(), "origin");
  g.direction = tuple_to_array<Mat3>(t[3].cast<py::sequence>(), "direction");
  return g;
}

py::tuple image_state(const Image& img) {
  if (img.empty()) return py::make_tuple(geometry_state(img.geometry()), py::none(), std::string(to_string(img.pixel_type())));
  return py::make_tuple(geometry_state(img.geometry()), array_view(img), std::string(to_string(img.pixel_type())));
}

Image image_from_state(const py::tuple& t) {
  if (t.size() != 3) fail<InvalidInput>("unpickle Image", "", "expected a state of 3 values");
  const Geometry g = geometry_from_state(t[0].cast<py::tuple>());
  if (t[1].is_none()) return Image();
  // The unpickled array is ours: wrapped without a copy (a read-only one is copied).
  return image_from_array(t[1].cast<py::array>(), &g, false);
}

namespace {

// Pickle state of a Structure: (name, type, colour, mask state, description).
py::tuple structure_state(const Structure& st) {
  return py::make_tuple(st.name, static_cast<int>(st.type), py::make_tuple(st.color.r, st.color.g, st.color.b),
                        image_state(st.mask), st.description);
}

Structure structure_from_state(const py::tuple& t) {
  if (t.size() != 5) fail<InvalidInput>("unpickle Structure", "", "expected a state of 5 values");
  Structure st;
  st.name = t[0].cast<std::string>();
  st.type = static_cast<StructureType>(t[1].cast<int>());
  const auto c = tuple_to_array<std::array<int, 3>>(t[2].cast<py::sequence>(), "color");
  st.color = Color{std::uint8_t(c[0]), std::uint8_t(c[1]), std::uint8_t(c[2])};
  st.mask = image_from_state(t[3].cast<py::tuple>());
  st.description = t[4].cast<std::string>();
  return st;
}

// A structure whose mask has its own buffer (the C++ copy shares it).
Structure structure_copy(const Structure& st) {
  Structure c = st;
  if (!c.mask.empty()) c.mask = c.mask.clone();
  return c;
}

StructureSet structure_set_copy(const StructureSet& set) {
  StructureSet c = set.empty() && empty_geometry(set.geometry()) ? StructureSet() : StructureSet(set.geometry());
  for (const Structure& st : set) c.add(structure_copy(st));
  return c;
}

}  // namespace


// One point (a sequence of 3: a tuple back) or many (an (n, 3) array: an (n, 3) float64 array back).
py::object map_points(const Geometry& g, const py::object& pts, const char* what, bool to_world) {
  if (py::isinstance<py::array>(pts) && py::cast<py::array>(pts).ndim() == 2) {
    auto a = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(pts);
    if (!a || a.shape(1) != 3)
      fail<InvalidInput>(to_world ? "index_to_world" : "world_to_index", what, "expected 3 values or an (n, 3) array");
    const py::ssize_t n = a.shape(0);
    py::array_t<double> out({n, py::ssize_t(3)});
    auto in = a.unchecked<2>();
    auto o = out.mutable_unchecked<2>();
    for (py::ssize_t r = 0; r < n; ++r) {
      const Vec3 p{in(r, 0), in(r, 1), in(r, 2)};
      const Vec3 q = to_world ? g.index_to_world(p) : g.world_to_index(p);
      for (int c = 0; c < 3; ++c) o(r, c) = q[c];
    }
    return std::move(out);
  }
  const Vec3 p = tuple_to_array<Vec3>(py::cast<py::sequence>(pts), what);
  const Vec3 q = to_world ? g.index_to_world(p) : g.world_to_index(p);
  return py::cast(q);
}

void bind_core(py::module_ m) {
  m.def("version", &version, "Isoline version string.");
  m.def("build_info", &build_info, "Version, commit, build type and CUDA support.");
  m.def("built_with_cuda", &built_with_cuda, "True when this build contains the CUDA kernels.");
  m.def("cuda_device_count", &cuda_device_count,
        "Number of usable CUDA devices (0 without CUDA support, driver or GPU).");

  py::class_<Geometry> geometry_class(m, "Geometry",
                       "Voxel grid in DICOM patient coordinates (LPS, mm): "
                       "world = origin + direction @ diag(spacing) @ (i, j, k).\n\n"
                       "`==` is exact equality of size, spacing, origin and direction (same_grid "
                       "compares within a tolerance); hashable; picklable; copy.copy/deepcopy.");
  geometry_class
      .def(py::init([](py::sequence size, py::sequence spacing, py::sequence origin, py::object direction) {
             Geometry g;
             g.size = tuple_to_array<Index3>(size, "size");
             g.spacing = tuple_to_array<Vec3>(spacing, "spacing");
             g.origin = tuple_to_array<Vec3>(origin, "origin");
             if (!direction.is_none()) {
               py::array_t<double, py::array::c_style | py::array::forcecast> d(direction);
               if (d.size() != 9) fail<InvalidInput>("set geometry", "direction", "expected 3x3 values");
               for (int n = 0; n < 9; ++n) g.direction[n] = d.data()[n];
             }
             g.validate("Geometry");
             return g;
           }),
           py::arg("size"), py::arg("spacing") = py::make_tuple(1.0, 1.0, 1.0),
           py::arg("origin") = py::make_tuple(0.0, 0.0, 0.0), py::arg("direction") = py::none())
      .def_property_readonly("size", [](const Geometry& g) { return py::make_tuple(g.size[0], g.size[1], g.size[2]); },
                             "(nx, ny, nz) voxels")
      .def_property_readonly("spacing", [](const Geometry& g) { return py::make_tuple(g.spacing[0], g.spacing[1], g.spacing[2]); })
      .def_property_readonly("origin", [](const Geometry& g) { return py::make_tuple(g.origin[0], g.origin[1], g.origin[2]); })
      .def_property_readonly("direction", [](const Geometry& g) {
             py::array_t<double> d({3, 3});
             std::copy(g.direction.begin(), g.direction.end(), d.mutable_data());
             return d;
           }, "3x3 matrix whose columns are the i, j, k axes in LPS")
      .def_property_readonly("shape", [](const Geometry& g) { return py::make_tuple(g.size[2], g.size[1], g.size[0]); },
                             "numpy shape (nz, ny, nx) of arrays on this grid")
      .def("index_to_world", [](const Geometry& g, py::object ijk) { return map_points(g, ijk, "ijk", true); },
           py::arg("ijk"), "Continuous index (i, j, k) -> LPS mm; an (n, 3) array gives an (n, 3) array.")
      .def("world_to_index", [](const Geometry& g, py::object xyz) { return map_points(g, xyz, "xyz", false); },
           py::arg("xyz"), "LPS mm -> continuous index (i, j, k); an (n, 3) array gives an (n, 3) array.")
      .def("same_grid", &Geometry::same_grid, py::arg("other"), py::arg("tolerance_mm") = 1e-3,
           "True when `other` has the same size and its origin and spacing differ by at most "
           "tolerance_mm (millimetres) per component, and its direction matrix by at most "
           "tolerance_mm / 1000 per entry (unitless). `==` is the exact comparison.")
      .def("__eq__", [](const Geometry& a, const py::object& other) -> py::object {
             if (!py::isinstance<Geometry>(other)) return py::reinterpret_borrow<py::object>(Py_NotImplemented);
             const Geometry& b = other.cast<const Geometry&>();
             return py::bool_(a.size == b.size && a.spacing == b.spacing && a.origin == b.origin &&
                              a.direction == b.direction);
           }, py::arg("other"), "Exact equality of size, spacing, origin and direction.")
      .def("__hash__", [](const Geometry& g) { return py::hash(geometry_state(g)); })
      .def(py::pickle([](const Geometry& g) { return geometry_state(g); },
                      [](const py::tuple& t) {
                        Geometry g = geometry_from_state(t);
                        g.validate("unpickle Geometry");
                        return g;
                      }))
      .def_property_readonly("orientation", [](const Geometry& g) { return orientation_code(g); },
                             "Three-letter code, e.g. 'LPS'")
      .def_property_readonly("voxel_volume_mm3", &Geometry::voxel_volume_mm3)
      .def("__repr__", [](const Geometry& g) {
        char buf[256];
        std::snprintf(buf, sizeof buf, "Geometry(size=(%lld, %lld, %lld), spacing=(%g, %g, %g), origin=(%g, %g, %g), %s)",
                      (long long)g.size[0], (long long)g.size[1], (long long)g.size[2], g.spacing[0], g.spacing[1],
                      g.spacing[2], g.origin[0], g.origin[1], g.origin[2], orientation_code(g).c_str());
        return std::string(buf);
      });
  def_value_copy(geometry_class);

  py::class_<Image> image_class(m, "Image",
                    "3-D image with LPS geometry. `array` is a numpy view (nz, ny, nx) sharing memory.\n\n"
                    "Picklable (array, geometry and pixel type); copy.copy/deepcopy give an independent copy "
                    "(as clone()).");
  image_class
      .def(py::init([](py::array array, const Geometry* geometry, bool copy) {
             return image_from_array(array, geometry, copy);
           }),
           py::arg("array"), py::arg("geometry") = nullptr, py::arg("copy") = false,
           "Wraps a C-contiguous uint8/int16/float32 array of shape (nz, ny, nx) without copying "
           "(copy=True, or a non-contiguous/read-only array, makes a copy).")
      .def_property_readonly("array", &array_view, "numpy view (nz, ny, nx) sharing the image's memory")
      .def_property_readonly("geometry", &Image::geometry)
      .def_property_readonly("dtype", [](const Image& i) { return std::string(to_string(i.pixel_type())); })
      .def("set_geometry", &Image::set_geometry, py::arg("geometry"),
           "Replaces the geometry (origin, spacing, direction) keeping the pixels; the size must "
           "stay the same (InvalidInput otherwise).")
      .def("clone", &Image::clone, "A copy with its own pixel buffer (the array of the copy does not share memory).")
      .def("cast", [](const Image& i, const py::object& t) { return i.cast(pixel_type_arg(t)); }, py::arg("dtype"),
           "A copy converted to dtype ('uint8', 'int16', 'float32' or the numpy type). To an integer type "
           "values are rounded to the nearest integer (halves away from zero) and saturated to the "
           "type's range (e.g. -1.6 -> -2 in int16, 300 -> 255 and -5 -> 0 in uint8); NaN gives an "
           "unspecified value. The same dtype gives a plain copy.")
      .def("min_max", &Image::min_max, "(min, max) of the pixel values ((0.0, 0.0) for an empty image).")
      .def("count_nonzero", &Image::count_nonzero, "Number of voxels whose value is not 0.")
      .def(py::pickle([](const Image& i) { return image_state(i); },
                      [](const py::tuple& t) { return image_from_state(t); }))
      .def("__repr__", [](const Image& i) {
        return "Image(" + std::string(to_string(i.pixel_type())) + ", size=(" + std::to_string(i.geometry().size[0]) +
               ", " + std::to_string(i.geometry().size[1]) + ", " + std::to_string(i.geometry().size[2]) + "))";
      });
  def_copy(image_class, [](const Image& i) { return i.clone(); });

  py::enum_<StructureType>(m, "StructureType", "Structure type (DICOM RT ROI Interpreted Type).")
      .value("EXTERNAL", StructureType::External)
      .value("ORGAN", StructureType::Organ)
      .value("PTV", StructureType::PTV)
      .value("CTV", StructureType::CTV)
      .value("GTV", StructureType::GTV)
      .value("AVOIDANCE", StructureType::Avoidance)
      .value("SUPPORT", StructureType::Support)
      .value("CONTROL", StructureType::Control)
      .value("OTHER", StructureType::Other);

  py::class_<Structure> structure_class(m, "Structure",
                        "A named, typed, coloured uint8 mask (0 outside, non-zero inside). Picklable; "
                        "copy.copy/deepcopy copy the mask too.");
  structure_class
      .def(py::init<>())
      .def_readwrite("name", &Structure::name)
      .def_readwrite("type", &Structure::type)
      .def_property("color", [](const Structure& s) { return py::make_tuple(s.color.r, s.color.g, s.color.b); },
                    [](Structure& s, py::sequence c) {
                      auto a = tuple_to_array<std::array<int, 3>>(c, "color");
                      s.color = Color{std::uint8_t(a[0]), std::uint8_t(a[1]), std::uint8_t(a[2])};
                    })
      .def_property(
          "mask", [](const Structure& s) { return s.mask; },
          [](Structure& s, const Image& m) {
            // A structure in a set keeps the set's grid (StructureSet.add checks it; so does this).
            if (m.pixel_type() != PixelType::UInt8)
              fail<InvalidInput>("set mask", s.name, "mask must be uint8");
            if (!s.mask.empty() && !m.geometry().same_grid(s.mask.geometry()))
              fail<InvalidInput>("set mask", s.name,
                                 "the new mask is on another grid (" + m.geometry().summary() + ") than the structure's (" +
                                     s.mask.geometry().summary() + ")");
            s.mask = m.empty() ? m : m.clone();  // the structure's own: an array reused by the caller must not change it
          },
          "uint8 mask on the structure set's grid (a new mask must be on the same grid)")
      .def_readwrite("description", &Structure::description)
      .def_property_readonly("volume_cc", &Structure::volume_cc)
      .def(py::pickle([](const Structure& st) { return structure_state(st); },
                      [](const py::tuple& t) { return structure_from_state(t); }))
      .def("__repr__", [](const Structure& s) {
        return "Structure('" + s.name + "', " + to_dicom_string(s.type) + ", " + std::to_string(s.volume_cc()) + " cc)";
      });
  def_copy(structure_class, &structure_copy);

  py::class_<StructureSet> structure_set_class(m, "StructureSet",
                                               "Named structures (uint8 masks) on one grid. Picklable; "
                                               "copy.copy/deepcopy copy the masks too.");
  structure_set_class
      .def(py::init<>())
      .def(py::init<const Geometry&>(), py::arg("geometry"))
      .def_property_readonly("geometry", &StructureSet::geometry)
      // The set keeps copies of the masks: a numpy array the caller reuses for the next
      // structure must not change this one (an Image made from numpy shares its memory).
      .def("add", [](StructureSet& set, const std::string& name, const Image& mask) -> Structure& {
             return set.add(name, mask.clone());
           },
           py::arg("name"), py::arg("mask"), py::return_value_policy::reference_internal,
           "Adds a copy of a uint8 mask; type and colour are guessed from the name.")
      .def("add_structure", [](StructureSet& set, Structure s) -> Structure& {
             if (!s.mask.empty()) s.mask = s.mask.clone();
             return set.add(std::move(s));
           },
           py::arg("structure"), py::return_value_policy::reference_internal,
           "Adds a copy of a structure (its mask copied).")
      .def("get", &StructureSet::get, py::arg("name"), py::return_value_policy::reference_internal,
           "The structure of that name (a reference into the set); InvalidInput listing the names "
           "when there is none (s[name] raises KeyError instead).")
      .def("remove", &StructureSet::remove, py::arg("name"),
           "Removes the structure of that name; False when there was none. References to it stay "
           "usable.")
      .def("names", &StructureSet::names, "Structure names in insertion order.")
      .def("__len__", &StructureSet::size)
      .def("__contains__", [](const StructureSet& s, const std::string& n) { return s.find(n) != nullptr; })
      .def("__getitem__", [](StructureSet& s, const std::string& n) -> Structure& {
             Structure* p = s.find(n);
             if (!p) throw py::key_error(n);
             return *p;
           }, py::return_value_policy::reference_internal)
      .def("__iter__", [](StructureSet& s) { return py::make_iterator(s.begin(), s.end()); }, py::keep_alive<0, 1>())
      .def(py::pickle(
          [](const StructureSet& set) {
            py::list items;
            for (const Structure& st : set) items.append(structure_state(st));
            const bool none = set.empty() && empty_geometry(set.geometry());
            return py::make_tuple(none ? py::object(py::none()) : py::object(geometry_state(set.geometry())), items);
          },
          [](const py::tuple& t) {
            if (t.size() != 2) fail<InvalidInput>("unpickle StructureSet", "", "expected a state of 2 values");
            StructureSet set = t[0].is_none() ? StructureSet() : StructureSet(geometry_from_state(t[0].cast<py::tuple>()));
            for (const auto& item : t[1].cast<py::list>()) set.add(structure_from_state(item.cast<py::tuple>()));
            return set;
          }));
  def_copy(structure_set_class, &structure_set_copy);

  py::class_<Margin>(m, "Margin",
                     "Margin in mm per patient direction (LPS): left (+x), right (-x), "
                     "posterior (+y), anterior (-y), superior (+z), inferior (-z).")
      .def(py::init([](double mm, py::object left, py::object right, py::object anterior,
                       py::object posterior, py::object superior, py::object inferior) {
             Margin mg = Margin::uniform(mm);
             auto pick = [](py::object o, double d) { return o.is_none() ? d : o.cast<double>(); };
             mg.left = pick(left, mm);
             mg.right = pick(right, mm);
             mg.anterior = pick(anterior, mm);
             mg.posterior = pick(posterior, mm);
             mg.superior = pick(superior, mm);
             mg.inferior = pick(inferior, mm);
             mg.validate("Margin");
             return mg;
           }),
           py::arg("mm") = 0.0, py::kw_only(), py::arg("left") = py::none(), py::arg("right") = py::none(),
           py::arg("anterior") = py::none(), py::arg("posterior") = py::none(),
           py::arg("superior") = py::none(), py::arg("inferior") = py::none())
      .def_readwrite("left", &Margin::left)
      .def_readwrite("right", &Margin::right)
      .def_readwrite("anterior", &Margin::anterior)
      .def_readwrite("posterior", &Margin::posterior)
      .def_readwrite("superior", &Margin::superior)
      .def_readwrite("inferior", &Margin::inferior);
  auto as_margin = [](py::object m) { return py::isinstance<Margin>(m) ? m.cast<Margin>() : Margin::uniform(m.cast<double>()); };
  m.def("expand", [as_margin](const Image& mask, py::object margin) {
          Margin mg = as_margin(margin);
          py::gil_scoped_release nogil;
          return expand(mask, mg);
        }, py::arg("mask"), py::arg("margin"), "Grows a uint8 mask by a margin (mm or Margin).");
  m.def("shrink", [as_margin](const Image& mask, py::object margin) {
          Margin mg = as_margin(margin);
          py::gil_scoped_release nogil;
          return shrink(mask, mg);
        }, py::arg("mask"), py::arg("margin"), "Shrinks a uint8 mask by a margin (mm or Margin).");
  m.def("union", &mask_union, py::arg("a"), py::arg("b"), py::call_guard<py::gil_scoped_release>(),
        "a or b: uint8 masks on the same grid.");
  m.def("intersect", &mask_intersect, py::arg("a"), py::arg("b"), py::call_guard<py::gil_scoped_release>(),
        "a and b: uint8 masks on the same grid.");
  m.def("subtract", &mask_subtract, py::arg("a"), py::arg("b"), py::call_guard<py::gil_scoped_release>(),
        "a and not b: uint8 masks on the same grid.");
  m.def("keep_largest_components", &keep_largest_components, py::arg("mask"), py::arg("count") = 1,
        py::arg("min_fraction") = 0.0, py::call_guard<py::gil_scoped_release>(),
        "Keeps the `count` largest 26-connected components, dropping those smaller than "
        "`min_fraction` of the largest.");
  m.def("remove_islands", &remove_islands, py::arg("mask"), py::arg("min_cc"),
        py::call_guard<py::gil_scoped_release>(), "Removes connected components smaller than min_cc (cm^3).");
  m.def("fill_holes", &fill_holes, py::arg("mask"), py::arg("per_slice") = false,
        py::call_guard<py::gil_scoped_release>(),
        "Fills enclosed cavities (per_slice: 2-D holes in each axial slice instead).");
  m.def("smooth", &smooth, py::arg("mask"), py::arg("sigma_mm"), py::call_guard<py::gil_scoped_release>(),
        "Gaussian smoothing of the mask surface (sigma in mm), thresholded at 0.5.");
  m.def("resample",
        [](const Image& img, const Geometry& grid, const std::string& interp, double def) {
          Interpolation it;
          if (interp == "nearest") it = Interpolation::Nearest;
          else if (interp == "linear") it = Interpolation::Linear;
          else fail<InvalidInput>("resample image", interp, "interpolation must be 'nearest' or 'linear'");
          py::gil_scoped_release nogil;
          return resample(img, grid, it, def);
        },
        py::arg("image"), py::arg("grid"), py::arg("interpolation") = "linear", py::arg("default") = 0.0,
        "Resamples onto `grid` ('nearest' or 'linear'; outside voxels get `default`); the pixel "
        "type is kept (linear on uint8 masks thresholds at 0.5).");

  m.def("read_image",
        [](const std::string& path, py::object dtype) {
          std::optional<PixelType> as;
          if (!dtype.is_none()) as = pixel_type_arg(dtype);
          py::gil_scoped_release nogil;
          return read_image(path, as);
        },
        py::arg("path"), py::arg("dtype") = py::none(),
        "Reads a NIfTI/NRRD/MetaImage file with its LPS geometry.");
  m.def("write_image",
        [](const Image& img, const std::string& path) {
          py::gil_scoped_release nogil;
          write_image(img, path);
        },
        py::arg("image"), py::arg("path"), "Writes atomically; format from the extension.");
  m.def("read_mask_dir", &read_mask_dir, py::arg("dir"), py::arg("names") = std::vector<std::string>{},
        py::call_guard<py::gil_scoped_release>(),
        "StructureSet of the mask images <dir>/<name>.nii.gz (etc.) listed in `names` (all when "
        "empty); missing names are skipped.");
  m.def("not_mask_names", &not_mask_names,
        "File stems (lower case) of a case folder's images that are not structure masks (the CT, the "
        "dose, label maps); read_mask_dir and load_patient skip them.");
  m.def("write_mask_dir", &write_mask_dir, py::arg("structures"), py::arg("dir"),
        py::arg("extension") = ".nii.gz", py::call_guard<py::gil_scoped_release>(),
        "Writes each structure as <dir>/<name><extension>.");
}

}  // namespace isoline::py_bind
