// Auto-contouring pipeline (see contour.h). No LibTorch here: the network sits behind
// detail::Network (network_torch.cpp); no ITK either (core's mask operations and body.cpp).
#include "isoline/contouring/contour.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "isoline/core/error.h"
#include "isoline/core/mask_ops.h"
#include "network.h"

namespace isoline::contouring {

using core::Geometry;
using core::Image;
using core::PixelType;
using core::Vec3;

namespace {

constexpr const char* kOp = "contour";
const char* const kBody = "Body";

std::string fmt(const char* f, double a) {
  char b[64];
  std::snprintf(b, sizeof b, f, a);
  return b;
}

// A volume in cc with enough digits that a value just outside a range does not print as its
// bound ("0.46 cc outside usual 0.50-105.0 cc", not "0.5 ... 0.5-105.0").
std::string cc(double v) {
  return fmt(std::fabs(v) < 10 ? "%.2f" : "%.1f", v);
}

// Axis-aligned (LPS identity) grid with the model spacing covering the CT's voxel centres.
Geometry model_grid(const Geometry& ct, const Vec3& spacing) {
  Vec3 lo{std::numeric_limits<double>::max(), std::numeric_limits<double>::max(),
          std::numeric_limits<double>::max()};
  Vec3 hi{-lo[0], -lo[1], -lo[2]};
  for (int c = 0; c < 8; ++c) {
    Vec3 idx{(c & 1) ? double(ct.size[0] - 1) : 0.0, (c & 2) ? double(ct.size[1] - 1) : 0.0,
             (c & 4) ? double(ct.size[2] - 1) : 0.0};
    Vec3 w = ct.index_to_world(idx);
    for (int a = 0; a < 3; ++a) {
      lo[a] = std::min(lo[a], w[a]);
      hi[a] = std::max(hi[a], w[a]);
    }
  }
  Geometry g;
  g.spacing = spacing;
  g.origin = lo;
  g.direction = core::kIdentity3;
  for (int a = 0; a < 3; ++a)
    g.size[a] = static_cast<std::int64_t>(std::floor((hi[a] - lo[a]) / spacing[a] + 1e-6)) + 1;
  return g;
}

// Sub-grid of `ct` (same spacing/direction) covering the world box of model-grid voxels
// [lo, hi] (inclusive) plus `pad` CT voxels; start index returned in `start`.
Geometry ct_subgrid(const Geometry& ct, const Geometry& mg, const std::array<std::int64_t, 6>& bb,
                    int pad, core::Index3& start) {
  std::array<double, 3> mn{1e300, 1e300, 1e300}, mx{-1e300, -1e300, -1e300};
  for (int c = 0; c < 8; ++c) {
    Vec3 idx{double((c & 1) ? bb[3] + 1 : bb[0] - 1), double((c & 2) ? bb[4] + 1 : bb[1] - 1),
             double((c & 4) ? bb[5] + 1 : bb[2] - 1)};
    Vec3 ci = ct.world_to_index(mg.index_to_world(idx));
    for (int a = 0; a < 3; ++a) {
      mn[a] = std::min(mn[a], ci[a]);
      mx[a] = std::max(mx[a], ci[a]);
    }
  }
  Geometry sub = ct;
  for (int a = 0; a < 3; ++a) {
    std::int64_t s = std::max<std::int64_t>(0, static_cast<std::int64_t>(std::floor(mn[a])) - pad);
    std::int64_t e =
        std::min<std::int64_t>(ct.size[a] - 1, static_cast<std::int64_t>(std::ceil(mx[a])) + pad);
    if (e < s) e = s;
    start[a] = s;
    sub.size[a] = e - s + 1;
  }
  sub.origin = ct.index_to_world({double(start[0]), double(start[1]), double(start[2])});
  return sub;
}

// Where the model-grid crop [i0, i1) x [j0, j1) x [ka, kb) lies in a network tensor: voxel
// (i, j, k) at element (i - i0) * si + (j - j0) * sj + (k - ka) * sk (padding after the crop).
struct VolumeLayout {
  std::int64_t i0, i1, j0, j1, ka, kb;
  std::size_t si, sj, sk;
  std::size_t at(std::int64_t i, std::int64_t j, std::int64_t k) const {
    return static_cast<std::size_t>(i - i0) * si + static_cast<std::size_t>(j - j0) * sj +
           static_cast<std::size_t>(k - ka) * sk;
  }
};

// One axial slice k of a 2.5D input/output plane, px x py with y fastest.
VolumeLayout slice_layout(std::int64_t i0, std::int64_t i1, std::int64_t j0, std::int64_t j1,
                          std::int64_t k, int py) {
  return {i0, i1, j0, j1, k, k + 1, static_cast<std::size_t>(py), 1, 0};
}

// A 3-D window px x py x pz, C order with z fastest.
VolumeLayout volume_layout(std::int64_t i0, std::int64_t i1, std::int64_t j0, std::int64_t j1,
                           std::int64_t ka, std::int64_t kb, int py, int pz) {
  return {i0, i1, j0, j1, ka, kb, static_cast<std::size_t>(py) * pz, static_cast<std::size_t>(pz),
          1};
}

// Writes the normalised CT, clip(HU, hu_min, hu_max) / hu_scale, of the layout's voxels into
// `dst`; slices outside the model grid are skipped (they keep the outside value).
void fill_input(const Image& m, const ModelCard& card, const VolumeLayout& c, float* dst) {
  const Geometry& g = m.geometry();
  const std::int16_t* hu = m.data<std::int16_t>();
  for (std::int64_t k = std::max<std::int64_t>(c.ka, 0); k < std::min(c.kb, g.size[2]); ++k)
    for (std::int64_t i = c.i0; i < c.i1; ++i)
      for (std::int64_t j = c.j0; j < c.j1; ++j) {
        const double v = std::clamp<double>(hu[g.offset(i, j, k)], card.hu_min, card.hu_max);
        dst[c.at(i, j, k)] = static_cast<float>(v / card.hu_scale);
      }
}

// Copies one structure's network output over the layout's voxels into `dst` (model grid);
// with `weight` (one per slice ka..kb) the weighted values are added instead.
void take_output(const float* src, const VolumeLayout& c, const float* weight, Image& dst) {
  const Geometry& g = dst.geometry();
  float* d = dst.data<float>();
  for (std::int64_t k = c.ka; k < c.kb; ++k)
    for (std::int64_t i = c.i0; i < c.i1; ++i)
      for (std::int64_t j = c.j0; j < c.j1; ++j) {
        const float p = src[c.at(i, j, k)];
        if (weight)
          d[g.offset(i, j, k)] += weight[k - c.ka] * p;
        else
          d[g.offset(i, j, k)] = p;
      }
}

struct PostSpec {
  int components = 1;       // largest components kept
  double min_fraction = 0;  // ... and only those >= this fraction of the largest
};

// Removes t.inferior_mm / t.superior_mm from the ends of the mask along patient z (LPS: +z is
// superior), by voxel centre: a voxel is kept when zmin + inferior <= z <= zmax - superior.
// A structure shorter than the two trims together is left whole (never emptied).
void trim_extent(Image& mask, const ExtentTrim& t) {
  if (!(t.inferior_mm > 0 || t.superior_mm > 0)) return;
  const Geometry& g = mask.geometry();
  std::uint8_t* m = mask.data<std::uint8_t>();
  const Vec3 o = g.index_to_world({0, 0, 0});
  const double di = g.index_to_world({1, 0, 0})[2] - o[2], dj = g.index_to_world({0, 1, 0})[2] - o[2],
               dk = g.index_to_world({0, 0, 1})[2] - o[2];
  auto z_of = [&](std::int64_t i, std::int64_t j, std::int64_t k) {
    return o[2] + di * double(i) + dj * double(j) + dk * double(k);
  };
  double zmin = std::numeric_limits<double>::infinity(), zmax = -zmin;
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t j = 0; j < g.size[1]; ++j)
      for (std::int64_t i = 0; i < g.size[0]; ++i)
        if (m[g.offset(i, j, k)]) {
          const double z = z_of(i, j, k);
          zmin = std::min(zmin, z);
          zmax = std::max(zmax, z);
        }
  if (!(zmin <= zmax)) return;
  const double lo = zmin + t.inferior_mm - 1e-3, hi = zmax - t.superior_mm + 1e-3;
  if (hi < lo) return;  // shorter than the two trims: left whole rather than emptied
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t j = 0; j < g.size[1]; ++j)
      for (std::int64_t i = 0; i < g.size[0]; ++i) {
        std::uint8_t& v = m[g.offset(i, j, k)];
        if (v) {
          const double z = z_of(i, j, k);
          if (z < lo || z > hi) v = 0;
        }
      }
}

// Serial organs: a cord or an esophagus cut into pieces by a gap in the prediction (or in the
// image data) keeps its pieces. Keeping only the largest would drop a stretch of the organ
// from the plan's constraints, which is worse than keeping a stray piece a reviewer deletes;
// the pieces are flagged (below). Validation: SpinalCord 0.673 -> 0.686 on the model grid
// (the CTs with image data in a box), training split unchanged (docs/contouring.md). They also
// run on past the ends of every head-and-neck scan (not flagged as cut off by them).
bool serial_organ(const std::string& name) { return name == "SpinalCord" || name == "Esophagus"; }

PostSpec post_spec(const std::string& name) {
  if (name.rfind("PTV", 0) == 0 || name.rfind("CTV", 0) == 0 || name.rfind("GTV", 0) == 0)
    return {4, 0.1};  // targets may be multi-focal (primary + nodes)
  if (serial_organ(name)) return {4, 0.1};
  return {1, 0.0};
}

}  // namespace

std::string StructureQuality::summary() const {
  std::string s = "auto-contour; confidence " + fmt("%.2f", confidence) + "; " +
                  fmt("%.1f cc", volume_cc) + "; ";
  if (flags.empty()) return s + "flags: none";
  s += "CHECK:";
  for (std::size_t i = 0; i < flags.size(); ++i) s += (i ? "; " : " ") + flags[i];
  return s;
}

bool cuda_available() {
  return detail::torch_cuda_available();
}

core::Device network_device(core::Device requested, std::string* note) {
  if (requested != core::Device::CUDA || cuda_available()) return requested;
  if (note)
    *note = "the contouring network ran on the CPU: the linked LibTorch has no CUDA support "
            "(Debian's is CPU-only); the plan and dose used CUDA";
  return core::Device::CPU;
}

struct Model::Impl {
  ModelCard card;
  core::Device device;
  std::unique_ptr<detail::Network> net;
  std::mutex mutex;  // one forward pass at a time on the shared network
};

Model::Model(const std::string& card_path, core::Device device) : impl_(std::make_shared<Impl>()) {
  impl_->card = load_model_card(card_path.empty() ? default_model_card_path() : card_path);
  impl_->device = device;
  if (device == core::Device::CUDA && !cuda_available())
    core::fail<core::DeviceError>(kOp, "--device cuda",
                                  "the linked LibTorch has no CUDA support or no GPU is visible "
                                  "(Debian's libtorch is CPU-only); use --device cpu");
  impl_->net = std::make_unique<detail::Network>(impl_->card.model_path, device);
}

const ModelCard& Model::card() const {
  return impl_->card;
}
core::Device Model::device() const {
  return impl_->device;
}

ContourResult contour(const Image& ct, const ContourOptions& options,
                      const core::Progress& progress) {
  if (ct.empty()) core::fail<core::InvalidInput>(kOp, "CT", "image is empty");
  const Model model(options.model_card, options.device);
  return contour(ct, model, options, progress);
}

ContourResult contour(const Image& ct_in, const Model& model, const ContourOptions& options,
                      const core::Progress& progress) {
  if (ct_in.empty()) core::fail<core::InvalidInput>(kOp, "CT", "image is empty");
  ct_in.geometry().validate("CT");
  if (ct_in.pixel_type() == PixelType::UInt8)
    core::fail<core::InvalidInput>(kOp, "CT",
                                   "image is uint8 (a mask?), expected Hounsfield units");
  const ModelCard& card = model.card();
  // Which structures.
  std::vector<std::string> wanted = options.structures;
  bool want_body = wanted.empty();
  if (wanted.empty()) wanted = card.structures;
  std::vector<int> channels;
  std::vector<std::string> names;
  for (const auto& w : wanted) {
    if (w == kBody || w == "External" || w == "BODY") {
      want_body = true;
      continue;
    }
    auto it = std::find(card.structures.begin(), card.structures.end(), w);
    if (it == card.structures.end()) {
      std::string avail;
      for (const auto& s : card.structures) avail += " " + s;
      core::fail<core::InvalidInput>(kOp, w,
                                     "unknown structure; the model provides:" + avail + " Body");
    }
    channels.push_back(static_cast<int>(it - card.structures.begin()));
    names.push_back(w);
  }
  ContourResult result;
  result.model_name = card.name;
  result.model_version = card.version;
  const Image ct = ct_in.pixel_type() == PixelType::Int16 ? ct_in : ct_in.cast(PixelType::Int16);
  const Geometry& cg = ct.geometry();
  result.structures = core::StructureSet(cg);

  // 1. Model grid (orientation-independent: always LPS identity).
  progress.update(0.0, "resampling to the model grid");
  const Geometry mg = model_grid(cg, card.spacing);
  Image m = core::resample(ct, mg, core::Interpolation::Linear, card.outside_hu);
  const std::int16_t* hu = m.data<std::int16_t>();
  const auto nx = mg.size[0], ny = mg.size[1], nz = mg.size[2];

  // 2. Body on the model grid -> crop box and scope checks.
  Image mbody(mg, PixelType::UInt8);
  {
    std::uint8_t* b = mbody.data<std::uint8_t>();
    for (std::size_t v = 0; v < m.num_voxels(); ++v) b[v] = hu[v] > card.body_threshold_hu ? 1 : 0;
    mbody = core::keep_largest_components(mbody, 1);
  }
  auto bbox = core::bounding_box(mbody);
  if (!bbox)
    core::fail<core::InvalidInput>(kOp, "CT",
                                   "no body found (nothing above " +
                                       fmt("%.0f", card.body_threshold_hu) +
                                       " HU): not a CT in HU?");
  {  // Hounsfield units: every CT of a patient holds air (around the patient, airways, lungs).
     // Almost none below -500 is a CT in another convention (CT numbers without the rescale
     // intercept, air at 0) or cropped inside the body: the network's input is then meaningless.
    const std::int16_t* c = ct.data<std::int16_t>();
    std::size_t air = 0;
    const std::size_t n = ct.num_voxels();
    for (std::size_t v = 0; v < n; ++v) air += c[v] < -500;
    if (double(air) < 0.02 * double(n))
      result.warnings.push_back("the CT holds almost no air (" + fmt("%.1f %%", 100.0 * double(air) / double(n)) +
                                " of voxels below -500 HU): is it in Hounsfield units (rescale intercept)? the "
                                "contours are not reliable");
  }
  double lung_slice_fraction = 0;
  // Scope: a head-and-neck scan has lung-density tissue (-950..-400 HU) in its lowest slices
  // only; a chest CT has it in most slices. Per slice: lung-density voxels / non-air voxels.
  {
    const double area_min_mm2 = 2000;  // slices with at least 20 cm^2 of non-air
    int slices = 0, lung_slices = 0;
    for (std::int64_t k = 0; k < nz; ++k) {
      std::size_t nonair = 0, lung = 0;
      for (std::int64_t j = 0; j < ny; ++j)
        for (std::int64_t i = 0; i < nx; ++i) {
          const auto v = hu[mg.offset(i, j, k)];
          if (v > -950) {
            ++nonair;
            if (v < -400) ++lung;
          }
        }
      if (double(nonair) * mg.spacing[0] * mg.spacing[1] < area_min_mm2) continue;
      ++slices;
      if (double(lung) > 0.2 * double(nonair)) ++lung_slices;
    }
    const double frac = slices ? double(lung_slices) / double(slices) : 1.0;
    const double z_extent = double((*bbox)[5] - (*bbox)[2] + 1) * mg.spacing[2];
    const double width = double((*bbox)[3] - (*bbox)[0] + 1) * mg.spacing[0];
    lung_slice_fraction = frac;
    if (width < 100 || z_extent < 60)
      result.warnings.push_back("anatomy outside the model's scope? the body is only " +
                                fmt("%.0f mm", width) + " wide and " + fmt("%.0f mm", z_extent) +
                                " long (a partial or cropped scan)");
  }
  // The body centre positions are measured from: the median over axial slices (with at least
  // 20 cm^2 of body) of the slice's body centroid, as the model card's usual ranges were
  // computed (contouring/train/common.py, body_centre). Not the 3-D box centre: a few slices
  // reaching to the edge of the field (an arm, a mask) moved that by 47 mm on a normal case.
  double body_cx = mg.origin[0] + 0.5 * double((*bbox)[0] + (*bbox)[3]) * mg.spacing[0];
  double body_cy = mg.origin[1] + 0.5 * double((*bbox)[1] + (*bbox)[4]) * mg.spacing[1];
  {
    const std::uint8_t* b = mbody.data<std::uint8_t>();
    std::vector<double> xs, ys;
    for (std::int64_t k = 0; k < nz; ++k) {
      double sx = 0, sy = 0;
      std::size_t n = 0;
      for (std::int64_t j = 0; j < ny; ++j)
        for (std::int64_t i = 0; i < nx; ++i)
          if (b[mg.offset(i, j, k)]) sx += double(i), sy += double(j), ++n;
      if (double(n) * mg.spacing[0] * mg.spacing[1] < 2000.0) continue;
      xs.push_back(sx / double(n));
      ys.push_back(sy / double(n));
    }
    auto median = [](std::vector<double> v) {
      const std::size_t h = v.size() / 2;
      std::nth_element(v.begin(), v.begin() + h, v.end());
      if (v.size() % 2) return v[h];
      return 0.5 * (v[h] + *std::max_element(v.begin(), v.begin() + h));
    };
    if (!xs.empty()) {
      body_cx = mg.origin[0] + median(xs) * mg.spacing[0];
      body_cy = mg.origin[1] + median(ys) * mg.spacing[1];
    }
  }
  const std::int64_t i0 = std::max<std::int64_t>((*bbox)[0] - 4, 0),
                     i1 = std::min<std::int64_t>((*bbox)[3] + 5, nx);
  const std::int64_t j0 = std::max<std::int64_t>((*bbox)[1] - 4, 0),
                     j1 = std::min<std::int64_t>((*bbox)[4] + 5, ny);
  const std::int64_t k0 = (*bbox)[2], k1 = (*bbox)[5] + 1;
  const int mult = std::max(1, card.multiple_of);
  const int px = static_cast<int>((i1 - i0 + mult - 1) / mult * mult);
  const int py = static_cast<int>((j1 - j0 + mult - 1) / mult * mult);

  // 2b. Outside the patient the network sees air, as in its training CTs: OpenKBP's CTs hold
  // -1024 HU everywhere outside the body, so a couch, a head rest or a board on a clinical CT
  // is something the network never saw, and it moves the contours even with an air gap (a
  // 12 mm plate 8 mm below the neck: Larynx Dice 0.73 against the CT without it; validation.md,
  // "Devices outside the patient"). Everything farther than one voxel in-plane from the body
  // region (largest component above the body threshold) becomes card.outside_hu; the voxel
  // next to the skin keeps its partial-volume value. An OpenKBP CT changes only where it
  // holds such devices itself (a few of them: side supports, base plates).
  {
    const double r = mg.spacing[0] * 1.01;
    const Image keep = core::expand(mbody, core::Margin{r, r, r, r, 0, 0});
    const std::uint8_t* kp = keep.data<std::uint8_t>();
    std::int16_t* w = m.data<std::int16_t>();
    const auto air = static_cast<std::int16_t>(card.outside_hu);
    for (std::size_t v = 0; v < m.num_voxels(); ++v)
      if (!kp[v]) w[v] = air;
  }

  // 3. Network: a 2.5D network on batches of axial slices, or a 3-D one on the whole crop in
  // overlapping z windows (model card input.kind).
  std::vector<Image> prob;
  if (!channels.empty()) {
    detail::Network& net = *model.impl().net;
    const int S = static_cast<int>(card.structures.size());
    for (std::size_t s = 0; s < channels.size(); ++s) prob.emplace_back(mg, PixelType::Float32);
    const float outside =
        static_cast<float>(std::clamp(card.outside_hu, card.hu_min, card.hu_max) / card.hu_scale);
    const core::Progress pnet = progress.sub(0.05, 0.75, "network");
    auto predict = [&](const std::vector<float>& in, const std::vector<std::int64_t>& shape) {
      std::lock_guard<std::mutex> lock(model.impl().mutex);
      return net.predict(in, shape, S);
    };
    if (!card.volume) {
      const int C = card.channels();
      const int B = std::max(1, options.batch);
      const std::size_t plane = static_cast<std::size_t>(px) * py;
      for (std::int64_t kb = k0; kb < k1; kb += B) {
        const int nb = static_cast<int>(std::min<std::int64_t>(B, k1 - kb));
        std::vector<float> in(static_cast<std::size_t>(nb) * C * plane, outside);
        for (int b = 0; b < nb; ++b)
          for (int c = 0; c < C; ++c) {
            const std::int64_t k = kb + b + c - card.context;
            fill_input(m, card, slice_layout(i0, i1, j0, j1, k, py),
                       in.data() + (static_cast<std::size_t>(b) * C + c) * plane);
          }
        const std::vector<float> out = predict(in, {nb, C, px, py});
        for (int b = 0; b < nb; ++b)
          for (std::size_t s = 0; s < channels.size(); ++s)
            take_output(out.data() + (static_cast<std::size_t>(b) * S + channels[s]) * plane,
                        slice_layout(i0, i1, j0, j1, kb + b, py), nullptr, prob[s]);
        pnet.update(double(kb + nb - k0) / double(k1 - k0), "slices");
      }
    } else {
      // Windows of wl slices, evenly spaced so that consecutive ones share at least
      // kWindowOverlap slices; each weighs its slices by a linear ramp over kWindowOverlap
      // slices at the ends it shares with a neighbour (its edge slices, where the network saw
      // the least context, count least), and the weighted sum is normalised per slice.
      const std::int64_t L = k1 - k0, ov = ModelCard::kWindowOverlap;
      const std::int64_t wl = std::min<std::int64_t>(L, card.window_slices);
      const std::int64_t nw = L <= wl ? 1 : (L - wl + (wl - ov) - 1) / (wl - ov) + 1;
      const int pz = static_cast<int>((wl + mult - 1) / mult * mult);
      const std::size_t window_voxels = static_cast<std::size_t>(px) * py * pz;
      std::vector<double> weight_sum(static_cast<std::size_t>(nz), 0.0);
      for (std::int64_t w = 0; w < nw; ++w) {
        const std::int64_t ka = k0 + (nw == 1 ? 0 : (L - wl) * w / (nw - 1));
        const VolumeLayout layout = volume_layout(i0, i1, j0, j1, ka, ka + wl, py, pz);
        std::vector<float> in(window_voxels, outside);
        fill_input(m, card, layout, in.data());
        const std::vector<float> out = predict(in, {1, 1, px, py, pz});
        std::vector<float> weight(static_cast<std::size_t>(wl), 1.0f);
        for (std::int64_t t = 0; t < wl; ++t) {
          double v = 1.0;
          if (w > 0) v = std::min(v, (double(t) + 0.5) / double(ov));
          if (w + 1 < nw) v = std::min(v, (double(wl - t) - 0.5) / double(ov));
          weight[static_cast<std::size_t>(t)] = static_cast<float>(v);
          weight_sum[static_cast<std::size_t>(ka + t)] += v;
        }
        for (std::size_t s = 0; s < channels.size(); ++s)
          take_output(out.data() + static_cast<std::size_t>(channels[s]) * window_voxels, layout,
                      weight.data(), prob[s]);
        pnet.update(double(w + 1) / double(nw),
                    "z window " + std::to_string(w + 1) + "/" + std::to_string(nw));
      }
      if (nw > 1)
        for (auto& p : prob) {
          float* d = p.data<float>();
          for (std::int64_t k = k0; k < k1; ++k) {
            const float inv = static_cast<float>(1.0 / weight_sum[static_cast<std::size_t>(k)]);
            for (std::int64_t j = j0; j < j1; ++j)
              for (std::int64_t i = i0; i < i1; ++i) d[mg.offset(i, j, k)] *= inv;
          }
        }
    }
  }

  // 4. Per structure: back to the CT grid around the structure, threshold, post-process.
  const core::Progress ppost = progress.sub(0.75, 0.95, "post-processing");
  struct Info {
    double cx = 0, cy = 0;
    bool found = false;
    bool first_slice = false, last_slice = false;  ///< reaches the CT's first / last slice
  };
  std::vector<Info> info(names.size());
  for (std::size_t s = 0; s < names.size(); ++s) {
    ppost.update(double(s) / double(names.size() + 1), names[s]);
    StructureQuality q;
    q.name = names[s];
    const float* p = prob[s].data<float>();
    const double threshold = card.threshold_of(names[s]);
    Image mm(mg, PixelType::UInt8);
    std::uint8_t* mmp = mm.data<std::uint8_t>();
    double psum = 0;
    std::size_t pn = 0;
    for (std::size_t v = 0; v < mm.num_voxels(); ++v)
      if (p[v] >= threshold) {
        mmp[v] = 1;
        psum += p[v];
        ++pn;
      }
    Image full(cg, PixelType::UInt8);
    if (pn > 0) {
      mm = core::keep_largest_components(mm, post_spec(names[s]).components,
                                         post_spec(names[s]).min_fraction);
      q.kept_fraction = double(mm.count_nonzero()) / double(pn);
      auto bb = core::bounding_box(mm);
      core::Index3 start{};
      Geometry sub = ct_subgrid(cg, mg, *bb, 2, start);
      Image sp = core::resample(prob[s], sub, core::Interpolation::Linear, 0.0);
      Image sm(sub, PixelType::UInt8);
      const float* spp = sp.data<float>();
      std::uint8_t* smp = sm.data<std::uint8_t>();
      for (std::size_t v = 0; v < sm.num_voxels(); ++v) smp[v] = spp[v] >= threshold ? 1 : 0;
      if (auto br = card.bone_refinement.find(names[s]); br != card.bone_refinement.end()) {
        // Bony organ: the bone the CT shows within margin_mm of the prediction (cavities
        // such as the marrow are filled below).
        const double r = br->second.margin_mm;
        if (r > 0) sm = core::expand(sm, core::Margin::uniform(r));
        smp = sm.data<std::uint8_t>();
        const std::int16_t* chu = ct.data<std::int16_t>();
        for (std::int64_t k = 0; k < sub.size[2]; ++k)
          for (std::int64_t j = 0; j < sub.size[1]; ++j)
            for (std::int64_t i = 0; i < sub.size[0]; ++i) {
              std::uint8_t& v = smp[sub.offset(i, j, k)];
              const double h = chu[cg.offset(i + start[0], j + start[1], k + start[2])];
              if (v && !(h > br->second.min_hu)) v = 0;
            }
      }
      if (auto tr = card.extent_trim.find(names[s]); tr != card.extent_trim.end())
        trim_extent(sm, tr->second);
      const PostSpec ps = post_spec(names[s]);
      sm = core::keep_largest_components(sm, ps.components, ps.min_fraction);
      if (serial_organ(names[s])) q.pieces = core::count_components(sm);
      sm = core::fill_holes(sm, false);
      std::uint8_t* fp = full.data<std::uint8_t>();
      smp = sm.data<std::uint8_t>();
      double sx = 0, sy = 0;
      std::size_t cnt = 0;
      for (std::int64_t k = 0; k < sub.size[2]; ++k)
        for (std::int64_t j = 0; j < sub.size[1]; ++j)
          for (std::int64_t i = 0; i < sub.size[0]; ++i)
            if (smp[sub.offset(i, j, k)]) {
              info[s].first_slice |= k + start[2] == 0;
              info[s].last_slice |= k + start[2] == cg.size[2] - 1;
              fp[cg.offset(i + start[0], j + start[1], k + start[2])] = 1;
              Vec3 w = cg.index_to_world(
                  {double(i + start[0]), double(j + start[1]), double(k + start[2])});
              sx += w[0];
              sy += w[1];
              ++cnt;
            }
      if (cnt) {
        info[s].cx = sx / double(cnt);
        info[s].cy = sy / double(cnt);
        info[s].found = true;
        q.volume_cc = double(cnt) * cg.voxel_volume_mm3() / 1000.0;
      }
      q.confidence = psum / double(pn);
    }
    if (!info[s].found) {
      q.confidence = 0;  // the mean probability of nothing
      q.kept_fraction = 0;
      q.flags.push_back("missing: the model found none (check whether the organ is on the CT)");
    } else {
      if (q.confidence < card.low_confidence) q.flags.push_back("low confidence " + fmt("%.2f", q.confidence));
      if (q.kept_fraction < card.min_kept_fraction)
        q.flags.push_back("in pieces: " + fmt("%.0f %%", 100 * (1 - q.kept_fraction)) +
                          " of the network's prediction lay apart from the part kept (check that "
                          "the part kept is the organ)");
      if (q.pieces > 1)
        q.flags.push_back("in " + std::to_string(q.pieces) +
                          " pieces: all kept, as a serial organ is not cut short (check the gaps)");
      // An organ that reaches the first or last slice is probably cut off by the end of the
      // scan (its volume and any dose to it are then incomplete). The cord and the esophagus
      // run on past the scan in every head-and-neck CT: not flagged.
      if ((info[s].first_slice || info[s].last_slice) && !serial_organ(names[s]))
        q.flags.push_back(std::string("reaches the ") + (info[s].first_slice ? "first" : "last") +
                          (info[s].first_slice && info[s].last_slice ? " and last" : "") +
                          " slice of the CT: may be cut off by the end of the scan");
      auto e = card.expected.find(names[s]);
      if (e != card.expected.end() && e->second.known) {
        const auto& r = e->second;
        if (q.volume_cc < r.volume_cc_min || q.volume_cc > r.volume_cc_max)
          q.flags.push_back("volume " + cc(q.volume_cc) + " cc outside usual " + cc(r.volume_cc_min) + "-" +
                            cc(r.volume_cc_max) + " cc");
        const double dx = info[s].cx - body_cx, dy = info[s].cy - body_cy;
        if (dx < r.dx_min || dx > r.dx_max || dy < r.dy_min || dy > r.dy_max)
          q.flags.push_back("unusual position (" + fmt("%+.0f", dx) +
                            fmt(", %+.0f mm from body centre)", dy));
      }
    }
    core::Structure st;
    st.name = names[s];
    st.type = core::guess_structure_type(names[s]);
    st.color = core::default_color(names[s], s);
    st.mask = std::move(full);
    result.quality.push_back(q);
    result.structures.add(std::move(st));
  }
  // Left/right consistency: the right parotid lies on the patient's right (LPS -x).
  for (std::size_t s = 0; s < names.size(); ++s) {
    if (!info[s].found) continue;
    const bool right = names[s].find("Right") != std::string::npos;
    const bool left = names[s].find("Left") != std::string::npos;
    if ((right && info[s].cx > body_cx + 5) || (left && info[s].cx < body_cx - 5))
      result.quality[s].flags.push_back(std::string("left/right: centroid on the patient's ") +
                                        (right ? "left" : "right") + " side");
  }
  // Scope: core head-and-neck organs should be found with confidence.
  {
    int weak = 0, total = 0;
    for (std::size_t s = 0; s < names.size(); ++s)
      if (names[s] == "Brainstem" || names[s] == "Mandible" || names[s] == "SpinalCord") {
        ++total;
        // A detection of implausible volume is not a landmark. (An unusual position still is:
        // on a scan reaching far into the chest the body centre moves with the chest, and
        // validation patient 230's Brainstem and SpinalCord read as "unusual".)
        bool odd = false;
        for (const auto& f : result.quality[s].flags) odd = odd || f.rfind("volume", 0) == 0;
        if (!info[s].found || result.quality[s].confidence < 0.6 || odd) ++weak;
      }
    const int found = total - weak;
    if (total > 0 && found == 0) {
      result.warnings.push_back(
          "anatomy outside the model's scope? none of Brainstem, Mandible, SpinalCord "
          "was found with confidence (the model is for " +
          card.scope + ")");
    } else if (lung_slice_fraction > 0.6 && (total == 0 || found < 2)) {
      // Head-and-neck scans reaching far into the thorax exist (up to ~80 % of slices with
      // lung in OpenKBP), so lung alone is not enough: it must come with missing landmarks.
      result.warnings.push_back(
          "anatomy outside the model's scope? " + fmt("%.0f %%", 100 * lung_slice_fraction) +
          " of the slices are mostly lung and the head-and-neck landmarks are "
          "not found (a chest CT?); the model is for " +
          card.scope);
    }
  }
  for (std::size_t s = 0; s < names.size(); ++s)
    result.structures[s].description = result.quality[s].summary();
  result.in_scope = result.warnings.empty();

  // 5. Body.
  if (want_body) {
    ppost.update(double(names.size()) / double(names.size() + 1), "body");
    core::Structure st;
    st.name = kBody;
    st.type = core::StructureType::External;
    st.color = core::default_color(kBody, names.size());
    st.mask = body_mask(ct);
    StructureQuality q;
    q.name = kBody;
    q.confidence = 1.0;
    q.volume_cc = st.mask.count_nonzero() * cg.voxel_volume_mm3() / 1000.0;
    if (q.volume_cc <= 0) q.flags.push_back("missing: no body found");
    st.description = "threshold -350 HU + morphology; " + fmt("%.1f cc", q.volume_cc);
    result.quality.push_back(q);
    result.structures.add(std::move(st));
  }
  progress.done();
  return result;
}

}  // namespace isoline::contouring
