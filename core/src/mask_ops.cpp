// Mask operations and resampling through ITK.
#include "isoline/core/mask_ops.h"

#include <algorithm>
#include <cmath>

#include <itkBinaryDilateImageFilter.h>
#include <itkBinaryFillholeImageFilter.h>
#include <itkConnectedComponentImageFilter.h>
#include <itkFlatStructuringElement.h>
#include <itkLinearInterpolateImageFunction.h>
#include <itkNearestNeighborInterpolateImageFunction.h>
#include <itkRelabelComponentImageFilter.h>
#include <itkResampleImageFilter.h>
#include <itkSignedMaurerDistanceMapImageFilter.h>
#include <itkSliceBySliceImageFilter.h>
#include <itkSmoothingRecursiveGaussianImageFilter.h>

#include "isoline/core/error.h"
#include "isoline/core/itk_bridge.h"

namespace isoline::core {

using detail::from_itk;
using detail::ItkImage;
using detail::to_itk;
using Mask = ItkImage<std::uint8_t>;

bool Margin::is_zero() const {
  return left == 0 && right == 0 && anterior == 0 && posterior == 0 && superior == 0 &&
         inferior == 0;
}

void Margin::validate(std::string_view what) const {
  for (double v : {left, right, anterior, posterior, superior, inferior})
    if (!(v >= 0) || !std::isfinite(v))
      fail<InvalidInput>("apply margin", what, "margins must be finite and >= 0 mm");
}

namespace {

void check_mask(const Image& m, const char* op) {
  if (m.empty()) fail<InvalidInput>(op, "mask", "mask is empty");
  if (m.pixel_type() != PixelType::UInt8)
    fail<InvalidInput>(op, "mask", std::string("mask must be uint8, got ") + to_string(m.pixel_type()));
}

void check_same_grid(const Image& a, const Image& b, const char* op) {
  check_mask(a, op);
  check_mask(b, op);
  if (!a.geometry().same_grid(b.geometry()))
    fail<InvalidInput>(op, "masks", "the two masks are not on the same grid");
}

// Margin in mm along +index and -index of each axis, from the patient-direction margin.
void index_margins(const Geometry& g, const Margin& m, double plus[3], double minus[3]) {
  // patient axis p (0 = x L/R, 1 = y P/A, 2 = z S/I): margin towards +p and -p
  const double pos[3] = {m.left, m.posterior, m.superior};
  const double neg[3] = {m.right, m.anterior, m.inferior};
  for (int a = 0; a < 3; ++a) {
    Vec3 col = g.axis(a);
    int p = 0;
    for (int q = 1; q < 3; ++q)
      if (std::abs(col[q]) > std::abs(col[p])) p = q;
    const bool same = col[p] >= 0;
    plus[a] = same ? pos[p] : neg[p];
    minus[a] = same ? neg[p] : pos[p];
  }
}

// Copies mask voxels [lo, lo + size) (may extend beyond the image: outside is `outside`)
// into a new ITK image, optionally complemented.
Mask::Pointer extract(const Image& mask, const std::array<std::int64_t, 3>& lo,
                      const std::array<std::int64_t, 3>& size, bool complement) {
  auto img = Mask::New();
  Mask::SizeType s;
  for (int a = 0; a < 3; ++a) s[a] = static_cast<itk::SizeValueType>(size[a]);
  img->SetRegions(Mask::RegionType(s));
  img->Allocate();
  const auto& g = mask.geometry();
  const std::uint8_t* src = mask.data<std::uint8_t>();
  std::uint8_t* dst = img->GetBufferPointer();
  const std::uint8_t in_val = complement ? 0 : 1, out_val = complement ? 1 : 0;
  for (std::int64_t k = 0; k < size[2]; ++k)
    for (std::int64_t j = 0; j < size[1]; ++j)
      for (std::int64_t i = 0; i < size[0]; ++i) {
        const std::int64_t gi = lo[0] + i, gj = lo[1] + j, gk = lo[2] + k;
        std::uint8_t v = out_val;
        if (g.contains({gi, gj, gk})) v = src[g.offset(gi, gj, gk)] ? in_val : out_val;
        dst[i + size[0] * (j + size[1] * k)] = v;
      }
  return img;
}

// Dilation with an octant-wise ellipsoid (semi-axes plus[a] towards +index, minus[a]
// towards -index, in mm), restricted to the bounding box; returns the grown mask.
Image dilate(const Image& mask, const double plus[3], const double minus[3], bool complement_in_out) {
  const Geometry& g = mask.geometry();
  std::array<std::int64_t, 3> rp{}, rm{};
  for (int a = 0; a < 3; ++a) {
    rp[a] = static_cast<std::int64_t>(std::floor(plus[a] / g.spacing[a] + 1e-6));
    rm[a] = static_cast<std::int64_t>(std::floor(minus[a] / g.spacing[a] + 1e-6));
  }
  // Work in the bounding box padded by the kernel radius: growth towards +index uses the
  // plus margin, towards -index the minus margin. For shrinking (complement dilated), pad
  // by the full radius on both sides: background beyond that cannot reach the mask.
  auto bb = bounding_box(mask);
  if (!bb) return Image(g, PixelType::UInt8);
  std::array<std::int64_t, 3> lo{}, size{};
  for (int a = 0; a < 3; ++a) {
    const std::int64_t pad_lo = complement_in_out ? std::max(rp[a], rm[a]) + 1 : rm[a] + 1;
    const std::int64_t pad_hi = complement_in_out ? std::max(rp[a], rm[a]) + 1 : rp[a] + 1;
    lo[a] = (*bb)[a] - pad_lo;
    size[a] = (*bb)[3 + a] + pad_hi - lo[a] + 1;
  }
  Mask::Pointer src = extract(mask, lo, size, complement_in_out);

  // Structuring element in a centred box of radius max(rp, rm) per axis.
  Mask::SizeType radius;
  for (int a = 0; a < 3; ++a) radius[a] = static_cast<itk::SizeValueType>(std::max(rp[a], rm[a]));
  using SE = itk::FlatStructuringElement<3>;
  SE kernel = SE::Box(radius);  // all-true box of the right size; elements set below
  std::size_t idx = 0;
  for (auto it = kernel.Begin(); it != kernel.End(); ++it, ++idx) {
    // offset of this element: row-major over the box, i fastest
    std::int64_t off[3];
    std::size_t rem = idx;
    for (int a = 0; a < 3; ++a) {
      const std::size_t w = 2 * radius[a] + 1;
      off[a] = static_cast<std::int64_t>(rem % w) - static_cast<std::int64_t>(radius[a]);
      rem /= w;
    }
    // Dilation places the element's offset `d` at each input voxel: the output voxel is
    // input + d, so d > 0 grows towards +index (plus margin).
    double r2 = 0;
    bool inside = true;
    for (int a = 0; a < 3; ++a) {
      if (off[a] == 0) continue;
      const double semi = off[a] > 0 ? plus[a] : minus[a];
      if (semi <= 0) {
        inside = false;
        break;
      }
      const double t = off[a] * g.spacing[a] / semi;
      r2 += t * t;
    }
    *it = inside && r2 <= 1.0 + 1e-9;
  }
  using Dilate = itk::BinaryDilateImageFilter<Mask, Mask, SE>;
  auto f = Dilate::New();
  f->SetInput(src);
  f->SetKernel(kernel);
  f->SetForegroundValue(1);
  f->SetBackgroundValue(0);
  f->Update();
  const std::uint8_t* res = f->GetOutput()->GetBufferPointer();

  Image out(g, PixelType::UInt8);
  std::uint8_t* dst = out.data<std::uint8_t>();
  for (std::int64_t k = 0; k < g.size[2]; ++k) {
    const std::int64_t lk = k - lo[2];
    for (std::int64_t j = 0; j < g.size[1]; ++j) {
      const std::int64_t lj = j - lo[1];
      for (std::int64_t i = 0; i < g.size[0]; ++i) {
        const std::int64_t li = i - lo[0];
        const std::size_t n = g.offset(i, j, k);
        bool in_region = li >= 0 && lj >= 0 && lk >= 0 && li < size[0] && lj < size[1] && lk < size[2];
        std::uint8_t v = in_region ? res[li + size[0] * (lj + size[1] * lk)] : 0;
        if (complement_in_out) v = in_region && !v;
        dst[n] = v ? 1 : 0;
      }
    }
  }
  return out;
}

template <class F>
Image combine(const Image& a, const Image& b, const char* op, F f) {
  check_same_grid(a, b, op);
  Image out(a.geometry(), PixelType::UInt8);
  const std::uint8_t* pa = a.data<std::uint8_t>();
  const std::uint8_t* pb = b.data<std::uint8_t>();
  std::uint8_t* po = out.data<std::uint8_t>();
  const std::size_t n = a.num_voxels();
  for (std::size_t i = 0; i < n; ++i) po[i] = f(pa[i] != 0, pb[i] != 0) ? 1 : 0;
  return out;
}

// Relabels 26-connected components by decreasing size.
ItkImage<std::uint32_t>::Pointer sorted_components(const Image& mask, std::size_t min_voxels,
                                                   std::vector<itk::SizeValueType>* sizes) {
  auto cc = itk::ConnectedComponentImageFilter<Mask, ItkImage<std::uint32_t>>::New();
  auto in = to_itk<std::uint8_t>(mask);
  cc->SetInput(in);
  cc->SetFullyConnected(true);
  auto relabel = itk::RelabelComponentImageFilter<ItkImage<std::uint32_t>, ItkImage<std::uint32_t>>::New();
  relabel->SetInput(cc->GetOutput());
  relabel->SetMinimumObjectSize(min_voxels);
  relabel->Update();
  *sizes = relabel->GetSizeOfObjectsInPixels();
  return relabel->GetOutput();
}

}  // namespace

Image expand(const Image& mask, const Margin& margin) {
  check_mask(mask, "expand mask");
  margin.validate("expand mask");
  if (margin.is_zero()) return mask.clone();
  double plus[3], minus[3];
  index_margins(mask.geometry(), margin, plus, minus);
  return dilate(mask, plus, minus, false);
}

Image shrink(const Image& mask, const Margin& margin) {
  check_mask(mask, "shrink mask");
  margin.validate("shrink mask");
  if (margin.is_zero()) return mask.clone();
  double plus[3], minus[3];
  index_margins(mask.geometry(), margin, plus, minus);
  // Shrinking by `left` moves the structure's left (+x) boundary inwards, i.e. the background
  // beyond it grows towards -x: the complement is dilated with the margins swapped.
  return dilate(mask, minus, plus, true);
}

Image mask_union(const Image& a, const Image& b) {
  return combine(a, b, "union of masks", [](bool x, bool y) { return x || y; });
}
Image mask_intersect(const Image& a, const Image& b) {
  return combine(a, b, "intersection of masks", [](bool x, bool y) { return x && y; });
}
Image mask_subtract(const Image& a, const Image& b) {
  return combine(a, b, "subtraction of masks", [](bool x, bool y) { return x && !y; });
}

Image keep_largest_components(const Image& mask, int count, double min_fraction) {
  check_mask(mask, "keep largest components");
  if (count < 1) fail<InvalidInput>("keep largest components", "count", "must be at least 1");
  std::vector<itk::SizeValueType> sizes;
  auto labels = sorted_components(mask, 0, &sizes);
  Image out(mask.geometry(), PixelType::UInt8);
  if (sizes.empty()) return out;
  std::uint32_t keep = 0;
  for (std::size_t l = 0; l < sizes.size() && static_cast<int>(l) < count; ++l)
    if (static_cast<double>(sizes[l]) >= min_fraction * static_cast<double>(sizes[0])) keep = static_cast<std::uint32_t>(l + 1);
  const std::uint32_t* p = labels->GetBufferPointer();
  std::uint8_t* o = out.data<std::uint8_t>();
  for (std::size_t n = 0; n < out.num_voxels(); ++n) o[n] = (p[n] != 0 && p[n] <= keep) ? 1 : 0;
  return out;
}

std::size_t count_components(const Image& mask) {
  check_mask(mask, "count components");
  std::vector<itk::SizeValueType> sizes;
  sorted_components(mask, 0, &sizes);
  return sizes.size();
}

Image remove_islands(const Image& mask, double min_cc) {
  check_mask(mask, "remove islands");
  if (!(min_cc >= 0)) fail<InvalidInput>("remove islands", "min_cc", "the smallest volume to keep must be >= 0 cc");
  const double voxels = min_cc * 1000.0 / mask.geometry().voxel_volume_mm3();
  std::vector<itk::SizeValueType> sizes;
  auto labels = sorted_components(mask, static_cast<std::size_t>(std::ceil(voxels - 1e-9)), &sizes);
  Image out(mask.geometry(), PixelType::UInt8);
  const std::uint32_t* p = labels->GetBufferPointer();
  std::uint8_t* o = out.data<std::uint8_t>();
  for (std::size_t n = 0; n < out.num_voxels(); ++n) o[n] = p[n] != 0 ? 1 : 0;
  return out;
}

Image fill_holes(const Image& mask, bool per_slice) {
  check_mask(mask, "fill holes");
  auto in = to_itk<std::uint8_t>(mask);
  if (!per_slice) {
    auto f = itk::BinaryFillholeImageFilter<Mask>::New();
    f->SetInput(in);
    f->SetForegroundValue(1);
    f->SetFullyConnected(false);
    f->Update();
    return from_itk<std::uint8_t>(f->GetOutput());
  }
  using Slice = itk::Image<std::uint8_t, 2>;
  auto sbs = itk::SliceBySliceImageFilter<Mask, Mask>::New();
  auto f2 = itk::BinaryFillholeImageFilter<Slice>::New();
  f2->SetForegroundValue(1);
  sbs->SetFilter(f2);
  sbs->SetDimension(2);
  sbs->SetInput(in);
  sbs->Update();
  return from_itk<std::uint8_t>(sbs->GetOutput());
}

Image distance_map(const Image& mask) {
  check_mask(mask, "distance map");
  using Dist = detail::ItkImage<float>;
  auto f = itk::SignedMaurerDistanceMapImageFilter<detail::ItkImage<std::uint8_t>, Dist>::New();
  f->SetInput(detail::to_itk<std::uint8_t>(mask));
  f->SetUseImageSpacing(true);
  f->SetSquaredDistance(false);
  f->SetInsideIsPositive(false);  // inside negative: clamped to 0 below
  f->SetBackgroundValue(0);
  f->Update();
  Image out = detail::from_itk<float>(f->GetOutput());
  float* d = out.data<float>();
  for (std::size_t v = 0; v < out.num_voxels(); ++v) d[v] = std::max(0.f, d[v]);
  return out;
}

Image smooth(const Image& mask, double sigma_mm) {
  check_mask(mask, "smooth mask");
  if (!(sigma_mm > 0)) fail<InvalidInput>("smooth mask", "sigma", "must be > 0 mm");
  Image f = mask.cast(PixelType::Float32);
  auto g = itk::SmoothingRecursiveGaussianImageFilter<ItkImage<float>, ItkImage<float>>::New();
  auto in = to_itk<float>(f);
  g->SetInput(in);
  g->SetSigma(sigma_mm);
  g->Update();
  Image out(mask.geometry(), PixelType::UInt8);
  const float* p = g->GetOutput()->GetBufferPointer();
  std::uint8_t* o = out.data<std::uint8_t>();
  for (std::size_t n = 0; n < out.num_voxels(); ++n) o[n] = p[n] >= 0.5f ? 1 : 0;
  return out;
}

std::optional<std::array<std::int64_t, 6>> bounding_box(const Image& mask) {
  check_mask(mask, "bounding box");
  const auto& g = mask.geometry();
  const std::uint8_t* p = mask.data<std::uint8_t>();
  std::array<std::int64_t, 6> bb{g.size[0], g.size[1], g.size[2], -1, -1, -1};
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t j = 0; j < g.size[1]; ++j) {
      const std::uint8_t* row = p + g.offset(0, j, k);
      for (std::int64_t i = 0; i < g.size[0]; ++i)
        if (row[i]) {
          bb[0] = std::min(bb[0], i);
          bb[3] = std::max(bb[3], i);
          bb[1] = std::min(bb[1], j);
          bb[4] = std::max(bb[4], j);
          bb[2] = std::min(bb[2], k);
          bb[5] = std::max(bb[5], k);
        }
    }
  if (bb[3] < 0) return std::nullopt;
  return bb;
}

double fraction_outside(const Image& mask, const Geometry& grid) {
  check_mask(mask, "fraction outside a grid");
  const auto& mg = mask.geometry();
  const std::uint8_t* m = mask.data<std::uint8_t>();
  std::int64_t in = 0, out = 0;
  for (std::int64_t k = 0; k < mg.size[2]; ++k)
    for (std::int64_t j = 0; j < mg.size[1]; ++j)
      for (std::int64_t i = 0; i < mg.size[0]; ++i) {
        if (!m[mg.offset(i, j, k)]) continue;
        const Vec3 c = grid.world_to_index(mg.index_to_world({double(i), double(j), double(k)}));
        bool inside = true;
        for (int a = 0; a < 3; ++a) inside = inside && c[a] >= -0.5 && c[a] <= double(grid.size[a]) - 0.5;
        ++(inside ? in : out);
      }
  return in + out == 0 ? 0.0 : double(out) / double(in + out);
}

namespace {
template <class T>
Image resample_typed(const Image& image, const Geometry& grid, Interpolation interp, double def) {
  using In = ItkImage<T>;
  using Out = ItkImage<float>;
  auto in = to_itk<T>(image);
  auto f = itk::ResampleImageFilter<In, Out, double>::New();
  f->SetInput(in);
  auto ref = Out::New();
  detail::copy_geometry_to_itk(grid, ref.GetPointer());
  f->SetUseReferenceImage(true);
  f->SetReferenceImage(ref);
  f->SetDefaultPixelValue(static_cast<float>(def));
  if (interp == Interpolation::Nearest)
    f->SetInterpolator(itk::NearestNeighborInterpolateImageFunction<In, double>::New());
  else
    f->SetInterpolator(itk::LinearInterpolateImageFunction<In, double>::New());
  f->Update();
  Image out = from_itk<float>(f->GetOutput());
  return image.pixel_type() == PixelType::Float32 ? out : out.cast(image.pixel_type());
}
}  // namespace

Image resample(const Image& image, const Geometry& grid, Interpolation interpolation,
               double default_value) {
  if (image.empty()) fail<InvalidInput>("resample image", "", "image is empty");
  grid.validate("resample target grid");
  switch (image.pixel_type()) {
    case PixelType::UInt8: return resample_typed<std::uint8_t>(image, grid, interpolation, default_value);
    case PixelType::Int16: return resample_typed<std::int16_t>(image, grid, interpolation, default_value);
    case PixelType::Float32: break;
  }
  return resample_typed<float>(image, grid, interpolation, default_value);
}

}  // namespace isoline::core
