// RT Structure Set reader, contour rasterizer (even-odd rule), contour-derived grid and
// volume.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "contour_trace.h"
#include "dicom_common.h"
#include "isoline/core/error.h"
#include "isoline/rtstruct/rtstruct.h"

namespace isoline::rtstruct {

namespace {

const char* kOp = "read RT-STRUCT";

template <class F>
void for_items(DcmItem& item, const DcmTagKey& tag, F&& f) {
  DcmSequenceOfItems* seq = nullptr;
  if (item.findAndGetSequence(tag, seq).bad() || !seq) return;
  for (unsigned long i = 0; i < seq->card(); ++i)
    if (DcmItem* it = seq->getItem(i)) f(*it);
}

int to_int(const std::string& s, int fallback) {
  try {
    std::size_t pos = 0;
    int v = std::stoi(s, &pos);
    return v;
  } catch (...) {
    return fallback;
  }
}

core::Vec3 sub(const core::Vec3& a, const core::Vec3& b) {
  return {a[0] - b[0], a[1] - b[1], a[2] - b[2]};
}
double dot(const core::Vec3& a, const core::Vec3& b) {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}
core::Vec3 cross(const core::Vec3& a, const core::Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}

// Newell normal (area-weighted) of a polygon; zero vector when degenerate.
core::Vec3 newell(const std::vector<core::Vec3>& p) {
  core::Vec3 n{0, 0, 0};
  for (std::size_t i = 0; i < p.size(); ++i) {
    const auto& a = p[i];
    const auto& b = p[(i + 1) % p.size()];
    n[0] += (a[1] - b[1]) * (a[2] + b[2]);
    n[1] += (a[2] - b[2]) * (a[0] + b[0]);
    n[2] += (a[0] - b[0]) * (a[1] + b[1]);
  }
  return n;
}

bool closed(const Contour& c) {
  return (c.geometric_type == "CLOSED_PLANAR" || c.geometric_type == "CLOSEDPLANAR_XOR") &&
         c.points.size() >= 3;
}

// Normal of the contour planes: from the largest closed contour; (0,0,1) when none.
core::Vec3 contour_normal(const RtStructData& rs) {
  core::Vec3 best{0, 0, 1};
  double best_len = 0;
  for (const auto& r : rs.rois)
    for (const auto& c : r.contours) {
      if (!closed(c)) continue;
      core::Vec3 n = newell(c.points);
      const double len = std::sqrt(dot(n, n));
      if (len > best_len) {
        best_len = len;
        best = {n[0] / len, n[1] / len, n[2] / len};
      }
    }
  // Sign convention: point towards +z (or +y, +x) so axial contours give identity.
  for (int a = 2; a >= 0; --a) {
    if (std::fabs(best[a]) > 1e-6) {
      if (best[a] < 0) best = {-best[0], -best[1], -best[2]};
      break;
    }
  }
  return best;
}

}  // namespace

void check_same_frame(const RtStructData& rs, const std::string& frame, const std::string& op,
                      const std::string& rs_file, const std::string& whose) {
  if (!rs.frame_of_reference_uid.empty() && rs.frame_of_reference_uid != frame)
    core::fail<core::InvalidInput>(op, rs_file, "frame of reference differs from " + whose);
}

RtStructData read_rtstruct(const std::string& file) {
  DcmFileFormat ff;
  detail::load_file(ff, file, kOp);
  DcmDataset& ds = *ff.getDataset();
  RtStructData rs;
  rs.file = file;
  const std::string sop_class = detail::get_string(ds, DCM_SOPClassUID);
  const std::string modality = detail::get_string(ds, DCM_Modality);
  if (sop_class != UID_RTStructureSetStorage && modality != "RTSTRUCT") {
    const char* n = dcmFindNameOfUID(sop_class.c_str(), nullptr);
    core::fail<core::InvalidInput>(kOp, file,
                                   std::string("not an RT Structure Set (") +
                                       (n ? n : sop_class.c_str()) + ", Modality " +
                                       (modality.empty() ? "?" : modality) + ")");
  }
  rs.sop_instance_uid = detail::get_string(ds, DCM_SOPInstanceUID);
  rs.series_instance_uid = detail::get_string(ds, DCM_SeriesInstanceUID);
  rs.structure_set_label = detail::get_string(ds, DCM_StructureSetLabel);
  rs.info = detail::read_patient_study(ds);
  for_items(ds, DCM_ReferencedFrameOfReferenceSequence, [&](DcmItem& fr) {
    if (rs.frame_of_reference_uid.empty())
      rs.frame_of_reference_uid = detail::get_string(fr, DCM_FrameOfReferenceUID);
    for_items(fr, DCM_RTReferencedStudySequence, [&](DcmItem& st) {
      for_items(st, DCM_RTReferencedSeriesSequence, [&](DcmItem& se) {
        if (rs.referenced_series_instance_uid.empty())
          rs.referenced_series_instance_uid = detail::get_string(se, DCM_SeriesInstanceUID);
        for_items(se, DCM_ContourImageSequence, [&](DcmItem& ci) {
          rs.contour_image_uids.push_back(detail::get_string(ci, DCM_ReferencedSOPInstanceUID));
        });
      });
    });
  });
  std::map<int, std::size_t> by_number;
  for_items(ds, DCM_StructureSetROISequence, [&](DcmItem& it) {
    Roi r;
    r.number = to_int(detail::get_string(it, DCM_ROINumber), -1);
    r.name = detail::get_string_all(it, DCM_ROIName);
    r.generation_algorithm = detail::get_string(it, DCM_ROIGenerationAlgorithm);
    r.referenced_frame_of_reference_uid = detail::get_string(it, DCM_ReferencedFrameOfReferenceUID);
    if (by_number.count(r.number)) {
      rs.warnings.push_back("duplicate ROINumber " + std::to_string(r.number) + " (" + r.name +
                            ") ignored");
      return;
    }
    by_number[r.number] = rs.rois.size();
    rs.rois.push_back(std::move(r));
  });
  for_items(ds, DCM_ROIContourSequence, [&](DcmItem& it) {
    const int num = to_int(detail::get_string(it, DCM_ReferencedROINumber), -1);
    auto f = by_number.find(num);
    if (f == by_number.end()) {
      rs.warnings.push_back("ROIContourSequence item refers to unknown ROI number " +
                            std::to_string(num));
      Roi r;
      r.number = num;
      r.name = "ROI_" + std::to_string(num);
      f = by_number.emplace(num, rs.rois.size()).first;
      rs.rois.push_back(std::move(r));
    }
    Roi& roi = rs.rois[f->second];
    const auto col = detail::get_numbers(it, DCM_ROIDisplayColor, file);
    if (col.size() == 3) {
      auto c8 = [](double v) {
        return static_cast<std::uint8_t>(std::clamp(std::isfinite(v) ? v : 0.0, 0.0, 255.0));
      };
      roi.color = {c8(col[0]), c8(col[1]), c8(col[2])};
      roi.has_color = true;
    }
    for_items(it, DCM_ContourSequence, [&](DcmItem& ci) {
      Contour c;
      c.geometric_type = detail::get_string(ci, DCM_ContourGeometricType);
      const auto data = detail::get_numbers(ci, DCM_ContourData, file);
      if (data.size() % 3 != 0)
        core::fail<core::InvalidInput>(kOp, file,
                                       "ROI \"" + roi.name + "\": ContourData holds " +
                                           std::to_string(data.size()) +
                                           " values, not a multiple of 3");
      for (std::size_t i = 0; i < data.size(); i += 3) {
        if (!std::isfinite(data[i]) || !std::isfinite(data[i + 1]) || !std::isfinite(data[i + 2]))
          core::fail<core::InvalidInput>(
              kOp, file, "ROI \"" + roi.name + "\": ContourData holds a non-finite value");
        c.points.push_back({data[i], data[i + 1], data[i + 2]});
      }
      const auto np = detail::get_numbers(ci, DCM_NumberOfContourPoints, file);
      if (!np.empty() && static_cast<std::size_t>(np[0]) != c.points.size())
        rs.warnings.push_back("ROI \"" + roi.name + "\": NumberOfContourPoints " +
                              std::to_string(long(np[0])) + " but ContourData has " +
                              std::to_string(c.points.size()) + " points");
      for_items(ci, DCM_ContourImageSequence, [&](DcmItem& im) {
        c.referenced_sop_instance_uids.push_back(
            detail::get_string(im, DCM_ReferencedSOPInstanceUID));
      });
      roi.contours.push_back(std::move(c));
    });
  });
  for_items(ds, DCM_RTROIObservationsSequence, [&](DcmItem& it) {
    const int num = to_int(detail::get_string(it, DCM_ReferencedROINumber), -1);
    auto f = by_number.find(num);
    if (f != by_number.end())
      rs.rois[f->second].interpreted_type = detail::get_string(it, DCM_RTROIInterpretedType);
  });
  return rs;
}

core::StructureSet rasterize(const RtStructData& rs, const core::Geometry& grid,
                             const RasterizeOptions& opt, const core::Progress& progress) {
  grid.validate("rasterize RT-STRUCT");
  const core::Vec3 gn = grid.axis(2);
  const int nx = static_cast<int>(grid.size[0]), ny = static_cast<int>(grid.size[1]);
  const std::size_t npx = static_cast<std::size_t>(nx) * ny;
  core::StructureSet set(grid);
  std::set<std::string> used;
  std::size_t done = 0;
  for (const Roi& roi : rs.rois) {
    ++done;
    if (!opt.names.empty() &&
        std::find(opt.names.begin(), opt.names.end(), roi.name) == opt.names.end())
      continue;
    // Group closed contours by plane (position along the grid normal, 0.01 mm bins).
    std::map<long long, std::vector<const Contour*>> planes;
    for (const auto& c : roi.contours) {
      if (!closed(c)) continue;
      double lo = 1e300, hi = -1e300, sum = 0;
      for (const auto& p : c.points) {
        const double z = dot(p, gn);
        lo = std::min(lo, z);
        hi = std::max(hi, z);
        sum += z;
      }
      if (hi - lo > std::max(0.05, 0.05 * grid.spacing[2]))
        core::fail<core::InvalidInput>(
            kOp, rs.file,
            "ROI \"" + roi.name + "\": a contour is not parallel to the grid's slices (spread " +
                std::to_string(hi - lo) + " mm along the slice normal)");
      planes[std::llround(sum / c.points.size() * 100.0)].push_back(&c);
    }
    std::vector<double> zs;
    for (const auto& [key, v] : planes) zs.push_back(key / 100.0);
    double plane_spacing = 0;
    if (zs.size() >= 2) {
      std::vector<double> d;
      for (std::size_t i = 1; i < zs.size(); ++i) d.push_back(zs[i] - zs[i - 1]);
      std::nth_element(d.begin(), d.begin(), d.end());
      plane_spacing = d.front();
    }
    const double tol = opt.plane_tolerance_mm >= 0
                           ? opt.plane_tolerance_mm
                           : std::max(0.5 * grid.spacing[2], 0.5 * plane_spacing) + 1e-3;
    core::Image mask = core::Image::zeros<std::uint8_t>(grid);
    std::uint8_t* m = mask.data<std::uint8_t>();
    const core::Vec3 o = grid.origin;
    const double z0 = dot(o, gn);
    std::vector<std::array<double, 2>> poly;
    for (std::int64_t k = 0; k < grid.size[2] && !zs.empty(); ++k) {
      const double zk = z0 + k * grid.spacing[2];
      auto it = std::lower_bound(zs.begin(), zs.end(), zk);
      double best = 1e300;
      if (it != zs.end()) best = *it;
      if (it != zs.begin() && std::fabs(*(it - 1) - zk) < std::fabs(best - zk)) best = *(it - 1);
      if (std::fabs(best - zk) > tol) continue;
      std::uint8_t* slice = m + static_cast<std::size_t>(k) * npx;
      for (const Contour* c : planes[std::llround(best * 100.0)]) {
        poly.clear();
        for (const auto& p : c->points) {
          const core::Vec3 ijk = grid.world_to_index(p);
          poly.push_back({ijk[0], ijk[1]});
        }
        detail::xor_polygon(slice, nx, ny, poly);
      }
    }
    core::Structure s;
    std::string name = roi.name.empty() ? "ROI_" + std::to_string(roi.number) : roi.name;
    for (int i = 2; used.count(name); ++i) name = roi.name + "_" + std::to_string(i);
    used.insert(name);
    s.name = name;
    s.type = roi.interpreted_type.empty() ? core::guess_structure_type(roi.name)
                                          : core::structure_type_from_string(roi.interpreted_type);
    s.color = roi.has_color ? roi.color : core::default_color(roi.name, set.size());
    s.mask = std::move(mask);
    set.add(std::move(s));
    progress.update(double(done) / rs.rois.size(), roi.name);
  }
  progress.done();
  return set;
}

core::Geometry contour_grid(const RtStructData& rs, double pixel_mm, double margin_mm) {
  if (!(pixel_mm > 0))
    core::fail<core::InvalidInput>("contour grid", rs.file, "pixel size must be positive");
  const core::Vec3 n = contour_normal(rs);
  core::Vec3 u, v;
  if (std::fabs(n[2]) > 0.999) {
    u = {1, 0, 0};
  } else {
    u = cross({0, 0, 1}, n);
    const double l = std::sqrt(dot(u, u));
    u = {u[0] / l, u[1] / l, u[2] / l};
  }
  v = cross(n, u);
  const double lu = std::sqrt(dot(v, v));
  v = {v[0] / lu, v[1] / lu, v[2] / lu};
  u = cross(v, n);
  double lo[3] = {1e300, 1e300, 1e300}, hi[3] = {-1e300, -1e300, -1e300};
  std::set<long long> planes;
  for (const auto& r : rs.rois)
    for (const auto& c : r.contours) {
      if (!closed(c)) continue;
      double zsum = 0;
      for (const auto& p : c.points) {
        const double q[3] = {dot(p, u), dot(p, v), dot(p, n)};
        for (int a = 0; a < 3; ++a) {
          lo[a] = std::min(lo[a], q[a]);
          hi[a] = std::max(hi[a], q[a]);
        }
        zsum += q[2];
      }
      planes.insert(std::llround(zsum / c.points.size() * 100.0));
    }
  if (planes.empty()) core::fail<core::InvalidInput>("contour grid", rs.file, "no closed contours");
  std::map<long long, int> diffs;
  for (auto it = std::next(planes.begin()); it != planes.end(); ++it) ++diffs[*it - *std::prev(it)];
  double dz = 1.0;
  int best = 0;
  for (const auto& [d, cnt] : diffs)
    if (cnt > best) best = cnt, dz = d / 100.0;
  const double zlo = *planes.begin() / 100.0, zhi = *planes.rbegin() / 100.0;
  core::Geometry g;
  g.spacing = {pixel_mm, pixel_mm, dz};
  const double sx = std::ceil((hi[0] - lo[0] + 2 * margin_mm) / pixel_mm) + 1,
               sy = std::ceil((hi[1] - lo[1] + 2 * margin_mm) / pixel_mm) + 1,
               sz = std::round((zhi - zlo) / dz) + 1;
  const double nvox = sx * sy * sz;
  if (!std::isfinite(nvox) || !(nvox > 0) || nvox > 2e9)
    core::fail<core::InvalidInput>(
        "contour grid", rs.file,
        "contours span too large an extent for a " + std::to_string(pixel_mm) + " mm grid");
  g.size = {static_cast<std::int64_t>(sx), static_cast<std::int64_t>(sy),
            static_cast<std::int64_t>(sz)};
  const double o0 = lo[0] - margin_mm, o1 = lo[1] - margin_mm;
  for (int a = 0; a < 3; ++a) g.origin[a] = o0 * u[a] + o1 * v[a] + zlo * n[a];
  g.direction = {u[0], v[0], n[0], u[1], v[1], n[1], u[2], v[2], n[2]};
  return g;
}

double contour_volume_cc(const RtStructData& rs, const Roi& roi) {
  const core::Vec3 n = contour_normal(rs);
  // Per plane: sum of areas, each signed by its nesting depth (even-odd).
  std::map<long long, std::vector<const Contour*>> planes;
  for (const auto& c : roi.contours) {
    if (!closed(c)) continue;
    double z = 0;
    for (const auto& p : c.points) z += dot(p, n);
    planes[std::llround(z / c.points.size() * 100.0)].push_back(&c);
  }
  if (planes.empty()) return 0.0;
  std::vector<double> zs;
  for (const auto& [k, v] : planes) zs.push_back(k / 100.0);
  double dz = 0;
  if (zs.size() >= 2) {
    std::vector<double> d;
    for (std::size_t i = 1; i < zs.size(); ++i) d.push_back(zs[i] - zs[i - 1]);
    std::nth_element(d.begin(), d.begin(), d.end());
    dz = d.front();
  }
  core::Vec3 u = std::fabs(n[2]) > 0.999 ? core::Vec3{1, 0, 0} : cross({0, 0, 1}, n);
  const double lu = std::sqrt(dot(u, u));
  u = {u[0] / lu, u[1] / lu, u[2] / lu};
  const core::Vec3 v = cross(n, u);
  double vol = 0;
  for (const auto& [key, cs] : planes) {
    std::vector<std::vector<std::array<double, 2>>> polys;
    for (const Contour* c : cs) {
      std::vector<std::array<double, 2>> p;
      for (const auto& q : c->points) p.push_back({dot(q, u), dot(q, v)});
      polys.push_back(std::move(p));
    }
    double area = 0;
    for (std::size_t i = 0; i < polys.size(); ++i) {
      // Depth: how many other polygons contain this one's first vertex.
      int depth = 0;
      const auto pt = polys[i][0];
      for (std::size_t j = 0; j < polys.size(); ++j) {
        if (i == j) continue;
        bool in = false;
        const auto& P = polys[j];
        for (std::size_t a = 0, b = P.size() - 1; a < P.size(); b = a++) {
          if ((P[a][1] > pt[1]) != (P[b][1] > pt[1]) &&
              pt[0] < (P[b][0] - P[a][0]) * (pt[1] - P[a][1]) / (P[b][1] - P[a][1]) + P[a][0])
            in = !in;
        }
        depth += in;
      }
      area += (depth % 2 ? -1 : 1) * detail::polygon_area(polys[i]);
    }
    vol += area * dz;
  }
  (void)sub;
  return vol / 1000.0;
}

}  // namespace isoline::rtstruct
