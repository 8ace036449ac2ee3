// Rigid + deformable registration through ITK. ITK headers stay in this file.
#include "isoline/adaptive/registration.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <sstream>

#include <itkBinaryDilateImageFilter.h>
#include <itkBinaryThresholdImageFilter.h>
#include <itkCenteredTransformInitializer.h>
#include <itkMultiThreaderBase.h>
#include <itkCommand.h>
#include <itkDiffeomorphicDemonsRegistrationFilter.h>
#include <itkDisplacementFieldJacobianDeterminantFilter.h>
#include <itkFlatStructuringElement.h>
#include <itkHistogramMatchingImageFilter.h>
#include <itkImageFileReader.h>
#include <itkImageFileWriter.h>
#include <itkImageMaskSpatialObject.h>
#include <itkImageRegistrationMethodv4.h>
#include <itkLinearInterpolateImageFunction.h>
#include <itkMattesMutualInformationImageToImageMetricv4.h>
#include <itkMultiResolutionPDEDeformableRegistration.h>
#include <itkRegistrationParameterScalesFromPhysicalShift.h>
#include <itkRegularStepGradientDescentOptimizerv4.h>
#include <itkResampleImageFilter.h>
#include <itkShrinkImageFilter.h>
#include <itkSmoothingRecursiveGaussianImageFilter.h>
#include <itkVersorRigid3DTransform.h>
#include <itkWarpImageFilter.h>

#include "isoline/core/atomic_file.h"
#include "isoline/core/error.h"
#include "isoline/core/io.h"
#include "isoline/core/itk_bridge.h"

namespace isoline::adaptive {

using core::fail;
using core::Geometry;
using core::Image;
using core::InvalidInput;
using core::IoError;
using core::PixelType;
using core::Vec3;

namespace {

using FloatImage = itk::Image<float, 3>;
using MaskImage = itk::Image<unsigned char, 3>;
using VectorType = itk::Vector<float, 3>;
using FieldImage = itk::Image<VectorType, 3>;

// A float ITK copy of any image, optionally clamped to [lo, hi].
FloatImage::Pointer to_float(const Image& img, double lo = -1e30, double hi = 1e30) {
  auto out = FloatImage::New();
  core::detail::copy_geometry_to_itk(img.geometry(), out.GetPointer());
  out->Allocate();
  float* p = out->GetBufferPointer();
  for (std::size_t n = 0; n < img.num_voxels(); ++n) p[n] = static_cast<float>(std::clamp(img.value(n), lo, hi));
  return out;
}

FieldImage::Pointer to_itk_field(const DisplacementField& f) {
  auto out = FieldImage::New();
  core::detail::copy_geometry_to_itk(f.geometry, out.GetPointer());
  out->Allocate();
  // itk::Vector<float, 3> is three packed floats (the layout ITK's own field I/O relies on)
  std::memcpy(static_cast<void*>(out->GetBufferPointer()), f.data.data(), f.data.size() * sizeof(float));
  return out;
}

DisplacementField from_itk_field(const FieldImage* img) {
  DisplacementField f;
  f.geometry = core::detail::geometry_from_itk(img);
  f.data.resize(f.geometry.num_voxels() * 3);
  std::memcpy(f.data.data(), img->GetBufferPointer(), f.data.size() * sizeof(float));
  return f;
}

// The axis-aligned world box of a grid's voxel centres: min x, y, z, then max x, y, z.
std::array<double, 6> world_box(const Geometry& g) {
  std::array<double, 6> bb{1e30, 1e30, 1e30, -1e30, -1e30, -1e30};
  for (int c = 0; c < 8; ++c) {
    const Vec3 w = g.index_to_world({(c & 1) ? g.size[0] - 1.0 : 0.0, (c & 2) ? g.size[1] - 1.0 : 0.0,
                                     (c & 4) ? g.size[2] - 1.0 : 0.0});
    for (int a = 0; a < 3; ++a) {
      bb[a] = std::min(bb[a], w[a]);
      bb[3 + a] = std::max(bb[3 + a], w[a]);
    }
  }
  return bb;
}

bool overlap(const Geometry& a, const Geometry& b) {
  // Axis-aligned world bounding boxes intersect.
  const auto p = world_box(a), q = world_box(b);
  for (int i = 0; i < 3; ++i)
    if (p[i] > q[3 + i] || q[i] > p[3 + i]) return false;
  return true;
}

// The grid of `g` with spacing at least `mm` per axis, same extent (outer voxel boundaries)
// and direction; `g` itself when no axis is finer.
Geometry coarsen(const Geometry& g, double mm) {
  if (!(mm > 0)) return g;
  Geometry out = g;
  bool changed = false;
  for (int a = 0; a < 3; ++a) {
    if (g.spacing[a] >= mm - 1e-6) continue;
    const double extent = g.spacing[a] * g.size[a];
    out.size[a] = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::floor(extent / mm + 1e-6)));
    out.spacing[a] = extent / out.size[a];
    changed = true;
  }
  if (!changed) return g;
  Vec3 shift{};
  for (int a = 0; a < 3; ++a) shift[a] = 0.5 * (out.spacing[a] - g.spacing[a]);
  const Vec3 o = g.index_to_world({0, 0, 0});
  for (int r = 0; r < 3; ++r) {
    double v = 0;
    for (int c = 0; c < 3; ++c) v += g.direction[r * 3 + c] * shift[c];
    out.origin[r] = o[r] + v;
  }
  return out;
}

// Linear resampling of an ITK image onto a grid (Gaussian pre-smoothing is left to the caller).
FloatImage::Pointer resample_to(FloatImage* in, const Geometry& g, float default_value) {
  auto ref = FloatImage::New();
  core::detail::copy_geometry_to_itk(g, ref.GetPointer());
  auto rs = itk::ResampleImageFilter<FloatImage, FloatImage>::New();
  rs->SetInput(in);
  rs->SetReferenceImage(ref);
  rs->SetUseReferenceImage(true);
  rs->SetDefaultPixelValue(default_value);
  rs->Update();
  return rs->GetOutput();
}

// The noise of a CT (HU, one standard deviation per voxel): each voxel of soft tissue (it and its
// six neighbours within [-150, 150] HU) minus the mean of its six neighbours, whose spread is
// sqrt(7/6) times the noise for independent noise; the median absolute value (x 1.4826) leaves
// out the anatomy's edges. 0 when fewer than 1000 such voxels.
double noise_hu(const Image& im) {
  const Geometry& g = im.geometry();
  std::vector<float> r;
  if (g.size[0] < 3 || g.size[1] < 3 || g.size[2] < 3) return 0.0;
  const auto soft = [](double v) { return v >= -150.0 && v <= 150.0; };
  for (std::int64_t k = 1; k + 1 < g.size[2]; ++k)
    for (std::int64_t j = 1; j + 1 < g.size[1]; ++j)
      for (std::int64_t i = 1; i + 1 < g.size[0]; ++i) {
        const double c = im.value(g.offset(i, j, k));
        if (!soft(c)) continue;
        const double n[6] = {im.value(g.offset(i - 1, j, k)), im.value(g.offset(i + 1, j, k)),
                             im.value(g.offset(i, j - 1, k)), im.value(g.offset(i, j + 1, k)),
                             im.value(g.offset(i, j, k - 1)), im.value(g.offset(i, j, k + 1))};
        double m = 0;
        bool ok = true;
        for (double x : n) {
          ok = ok && soft(x);
          m += x / 6.0;
        }
        if (ok) r.push_back(static_cast<float>(std::abs(c - m)));
      }
  if (r.size() < 1000) return 0.0;
  auto mid = r.begin() + static_cast<std::ptrdiff_t>(r.size() / 2);
  std::nth_element(r.begin(), mid, r.end());
  return 1.4826 * double(*mid) / std::sqrt(7.0 / 6.0);
}

// ITK objects created while one of these lives run on one thread. The rigid stage is not
// repeatable on several: its result varied by about 0.002 mm from run to run (thread timing
// inside ITK's v4 registration), and the deformable stage grew that into millimetres. On
// shrunk, 10 %-sampled images one thread costs little; register() is then the same for a
// seed whatever the thread count. (Counted: overlapping registrations restore it once.)
std::mutex itk_threads_mu;
int itk_threads_depth = 0;
itk::ThreadIdType itk_threads_saved = 0;

class SingleThreadedItk {
 public:
  SingleThreadedItk() {
    std::lock_guard<std::mutex> l(itk_threads_mu);
    if (itk_threads_depth++ == 0) {
      itk_threads_saved = itk::MultiThreaderBase::GetGlobalDefaultNumberOfThreads();
      itk::MultiThreaderBase::SetGlobalDefaultNumberOfThreads(1);
    }
  }
  ~SingleThreadedItk() {
    std::lock_guard<std::mutex> l(itk_threads_mu);
    if (--itk_threads_depth == 0) itk::MultiThreaderBase::SetGlobalDefaultNumberOfThreads(itk_threads_saved);
  }
  SingleThreadedItk(const SingleThreadedItk&) = delete;
  SingleThreadedItk& operator=(const SingleThreadedItk&) = delete;
};

using RigidItk = itk::VersorRigid3DTransform<double>;
using MaskObject = itk::ImageMaskSpatialObject<3>;

// One level of the rigid step: shrink factor and Gaussian smoothing (voxels of the full grid).
struct Level {
  unsigned shrink;
  double sigma;
};

// Runs ITK's v4 rigid registration (Mattes MI, regular-step gradient descent) from `transform`,
// which it updates in place, over the given levels (coarse to fine; `first_level`: the index of
// the first of them in the whole schedule). Throws itk::ExceptionObject when ITK fails (e.g. too
// few samples fall inside the moving image).
void run_rigid_levels(FloatImage* fixed, FloatImage* moving, MaskObject* mask, const RigidOptions& opt,
                        RigidItk* transform, const std::vector<Level>& schedule, int first_level,
                        double& max_step_mm, const core::Progress& progress) {
  using Optimizer = itk::RegularStepGradientDescentOptimizerv4<double>;
  using Metric = itk::MattesMutualInformationImageToImageMetricv4<FloatImage, FloatImage>;
  using Method = itk::ImageRegistrationMethodv4<FloatImage, FloatImage, RigidItk>;

  auto metric = Metric::New();
  metric->SetNumberOfHistogramBins(50);
  if (mask) metric->SetFixedImageMask(mask);
  auto optimizer = Optimizer::New();
  optimizer->SetLearningRate(2.0);
  optimizer->SetMinimumStepLength(1e-3);
  optimizer->SetRelaxationFactor(0.5);
  optimizer->SetNumberOfIterations(static_cast<itk::SizeValueType>(opt.iterations));
  auto scales = itk::RegistrationParameterScalesFromPhysicalShift<Metric>::New();
  scales->SetMetric(metric);
  optimizer->SetScalesEstimator(scales);
  optimizer->SetDoEstimateLearningRateOnce(true);
  // ITK estimates the largest step (mm) at the first level it runs, from that level's voxels,
  // and keeps it for the next levels: levels run separately take it over (max_step_mm > 0).
  if (max_step_mm > 0) optimizer->SetMaximumStepSizeInPhysicalUnits(max_step_mm);

  auto method = Method::New();
  method->SetFixedImage(fixed);
  method->SetMovingImage(moving);
  method->SetMetric(metric);
  method->SetOptimizer(optimizer);
  method->SetInitialTransform(transform);
  method->InPlaceOn();
  const int levels = static_cast<int>(schedule.size());
  Method::ShrinkFactorsArrayType shrink(levels);
  Method::SmoothingSigmasArrayType sigmas(levels);
  for (int l = 0; l < levels; ++l) {
    shrink[l] = schedule[static_cast<std::size_t>(l)].shrink;
    sigmas[l] = schedule[static_cast<std::size_t>(l)].sigma;
  }
  method->SetSmoothingSigmasAreSpecifiedInPhysicalUnits(false);
  method->SetNumberOfLevels(static_cast<itk::SizeValueType>(levels));
  method->SetShrinkFactorsPerLevel(shrink);
  method->SetSmoothingSigmasPerLevel(sigmas);
  method->SetMetricSamplingStrategy(Method::MetricSamplingStrategyEnum::RANDOM);
  method->SetMetricSamplingPercentage(std::clamp(opt.sampling, 0.01, 1.0));
  // Deterministic sampling. ITK draws two seeds per level (seed, seed + 1 at the first level,
  // then seed + 2, ...): levels run separately from `first_level` on sample the same points as
  // those levels of one run through all of them.
  method->MetricSamplingReinitializeSeed(static_cast<int>(opt.seed + 2u * static_cast<unsigned>(first_level)));

  auto observer = itk::CStyleCommand::New();
  struct Ctx {
    const core::Progress* progress;
    int level = 0;
    int levels;
    int iterations;
    int iteration = 0;
  } ctx{&progress, 0, levels, std::max(1, opt.iterations)};
  observer->SetClientData(&ctx);
  observer->SetCallback([](itk::Object*, const itk::EventObject&, void* data) {
    auto* c = static_cast<Ctx*>(data);
    ++c->level;
    c->iteration = 0;
    c->progress->update(double(c->level) / c->levels, "rigid level " + std::to_string(c->level));
  });
  method->AddObserver(itk::MultiResolutionIterationEvent(), observer);
  // Every optimiser iteration reports too: a stop (Ctrl-C, a raising callback) is seen within
  // one iteration, not at the end of a level.
  auto step = itk::CStyleCommand::New();
  step->SetClientData(&ctx);
  step->SetCallback([](itk::Object*, const itk::EventObject&, void* data) {
    auto* c = static_cast<Ctx*>(data);
    ++c->iteration;
    const double within = std::min(1.0, double(c->iteration) / c->iterations);
    c->progress->update((std::max(0, c->level - 1) + within) / c->levels);
  });
  optimizer->AddObserver(itk::IterationEvent(), step);
  method->Update();
  max_step_mm = optimizer->GetMaximumStepSizeInPhysicalUnits();
}

// Centre of mass of the body (voxels above -500 HU, the same threshold as histogram matching's
// body fraction); false when there is no body.
bool body_centre(const FloatImage* im, Vec3& out) {
  const Geometry g = core::detail::geometry_from_itk(im);
  const float* p = im->GetBufferPointer();
  double s[3] = {0, 0, 0};
  double n = 0;
  std::size_t v = 0;
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t j = 0; j < g.size[1]; ++j)
      for (std::int64_t i = 0; i < g.size[0]; ++i, ++v) {
        if (!(p[v] > -500.f)) continue;
        s[0] += double(i);
        s[1] += double(j);
        s[2] += double(k);
        n += 1;
      }
  if (n < 1) return false;
  out = g.index_to_world({s[0] / n, s[1] / n, s[2] / n});
  return true;
}

// A start of the rigid step: the translation (moving minus fixed, mm) with which it begins.
struct RigidStart {
  std::string name;
  Vec3 translation;
};

// The starts tried (see RigidOptions::multi_start): the images' centres aligned (ITK's
// CenteredTransformInitializer, geometry mode: what the rigid step always did), the images as
// they lie in patient space, the centres of mass of their bodies aligned, and, along a world
// axis where the two boxes' lengths differ by more than 20 mm, their lower or upper ends aligned
// (the centres in the other axes). Starts within 5 mm of an earlier one are left out: the
// coarsest level moves that far anyway.
std::vector<RigidStart> rigid_starts(FloatImage* fixed, FloatImage* moving, const Vec3& centres) {
  std::vector<RigidStart> starts{{"centres aligned", centres}};
  auto add = [&](std::string name, const Vec3& t) {
    for (const auto& s : starts) {
      double d = 0;
      for (int a = 0; a < 3; ++a) d += (t[a] - s.translation[a]) * (t[a] - s.translation[a]);
      if (std::sqrt(d) < 5.0) return;
    }
    starts.push_back({std::move(name), t});
  };
  const Geometry gf = core::detail::geometry_from_itk(fixed), gm = core::detail::geometry_from_itk(moving);
  if (overlap(gf, gm)) add("as scanned", {0, 0, 0});
  const auto bf = world_box(gf), bm = world_box(gm);
  Vec3 cf, cm;
  if (body_centre(fixed, cf) && body_centre(moving, cm))
    add("body centres of mass aligned", {cm[0] - cf[0], cm[1] - cf[1], cm[2] - cf[2]});
  const char* axis[3] = {"x", "y", "z"};
  for (int a = 0; a < 3; ++a) {
    if (std::abs((bf[3 + a] - bf[a]) - (bm[3 + a] - bm[a])) <= 20.0) continue;
    Vec3 lo = centres, hi = centres;
    lo[a] = bm[a] - bf[a];
    hi[a] = bm[3 + a] - bf[3 + a];
    add(std::string("lower ends aligned in ") + axis[a], lo);
    add(std::string("upper ends aligned in ") + axis[a], hi);
  }
  return starts;
}

// `im` smoothed by a Gaussian of `sigma` of its voxels per axis, as ITK's v4 registration smooths
// a level (SmoothingRecursiveGaussianImageFilter, sigmas in voxels): `im` itself for 0.
FloatImage::Pointer smoothed(FloatImage* im, double sigma) {
  if (!(sigma > 0)) return im;
  using Smooth = itk::SmoothingRecursiveGaussianImageFilter<FloatImage, FloatImage>;
  auto sm = Smooth::New();
  Smooth::SigmaArrayType s;
  for (int a = 0; a < 3; ++a) s[a] = sigma * im->GetSpacing()[a];
  sm->SetSigmaArray(s);
  sm->SetInput(im);
  sm->Update();
  FloatImage::Pointer out = sm->GetOutput();
  out->DisconnectPipeline();
  return out;
}

// Judges rigid transforms by the registration's metric (Mattes MI, 50 bins; lower is better) on
// every voxel of the fixed image shrunk as at the finest level that leaves at most 100 000 of
// them, both images smoothed as at that level: on a 128^3 CT the 4x level, 32^3 voxels.
class Judge {
 public:
  Judge(FloatImage* fixed, FloatImage* moving, MaskObject* mask, const std::vector<Level>& schedule) {
    const auto size = fixed->GetLargestPossibleRegion().GetSize();
    const double voxels = double(size[0]) * double(size[1]) * double(size[2]);
    Level level = schedule.front();
    for (auto it = schedule.rbegin(); it != schedule.rend(); ++it)
      if (voxels / (double(it->shrink) * it->shrink * it->shrink) <= 100000.0) {
        level = *it;
        break;
      }
    auto shrink = itk::ShrinkImageFilter<FloatImage, FloatImage>::New();
    shrink->SetInput(smoothed(fixed, level.sigma));
    shrink->SetShrinkFactors(level.shrink);
    shrink->Update();
    transform_ = RigidItk::New();
    metric_ = Metric::New();
    metric_->SetNumberOfHistogramBins(50);
    metric_->SetFixedImage(shrink->GetOutput());
    metric_->SetMovingImage(smoothed(moving, level.sigma));
    if (mask) metric_->SetFixedImageMask(mask);
    metric_->SetMovingTransform(transform_);
    try {
      metric_->Initialize();
    } catch (const itk::ExceptionObject&) {
      metric_ = nullptr;  // nothing can be judged
    }
  }
  // +inf when ITK cannot evaluate it (no fixed voxel on the moving image).
  double value(const RigidItk* t) const {
    if (!metric_) return std::numeric_limits<double>::infinity();
    transform_->SetFixedParameters(t->GetFixedParameters());
    transform_->SetParameters(t->GetParameters());
    try {
      const double v = metric_->GetValue();
      return metric_->GetNumberOfValidPoints() > 0 && std::isfinite(v) ? v : std::numeric_limits<double>::infinity();
    } catch (const itk::ExceptionObject&) {
      return std::numeric_limits<double>::infinity();
    }
  }

 private:
  using Metric = itk::MattesMutualInformationImageToImageMetricv4<FloatImage, FloatImage>;
  RigidItk::Pointer transform_;
  Metric::Pointer metric_;
};

RigidTransform rigid_register(FloatImage* fixed, FloatImage* moving, const RigidOptions& opt,
                              const core::Progress& progress, std::string* chosen_start) {
  const SingleThreadedItk one_thread;
  const int levels = std::clamp(opt.levels, 1, 4);
  {
    // The coarsest level shrinks the images by finest << (levels - 1) and samples a fraction of
    // the voxels: too small an image leaves the metric no points (ITK's message names a pointer
    // and a "VirtualSampledPointSet"). Say so in the user's terms first.
    const unsigned coarsest = static_cast<unsigned>(std::clamp(opt.finest_shrink, 1, 8)) << (levels - 1);
    for (FloatImage* im : {fixed, moving}) {
      const auto size = im->GetLargestPossibleRegion().GetSize();
      const double voxels = double(size[0]) * double(size[1]) * double(size[2]);
      const double coarse_voxels = voxels / (double(coarsest) * coarsest * coarsest);
      if (std::min({size[0], size[1], size[2]}) < coarsest || coarse_voxels * std::clamp(opt.sampling, 0.01, 1.0) < 10) {
        char b[240];
        std::snprintf(b, sizeof b,
                      "%s image of %lu x %lu x %lu voxels is too small for rigid registration in %d levels (the "
                      "coarsest shrinks it %u times per axis): it needs at least %u voxels per axis and more in all",
                      im == fixed ? "the fixed" : "the moving", static_cast<unsigned long>(size[0]),
                      static_cast<unsigned long>(size[1]), static_cast<unsigned long>(size[2]), levels, coarsest,
                      coarsest);
        fail<InvalidInput>("rigid registration", "images", b);
      }
    }
  }
  MaskObject::Pointer bone_mask;
  if (opt.bony) {
    auto th = itk::BinaryThresholdImageFilter<FloatImage, MaskImage>::New();
    th->SetInput(fixed);
    th->SetLowerThreshold(static_cast<float>(opt.bone_hu));
    th->SetInsideValue(1);
    th->SetOutsideValue(0);
    using SE = itk::FlatStructuringElement<3>;
    SE::RadiusType r;
    r.Fill(2);
    auto dil = itk::BinaryDilateImageFilter<MaskImage, MaskImage, SE>::New();
    dil->SetInput(th->GetOutput());
    dil->SetKernel(SE::Ball(r));
    dil->SetForegroundValue(1);
    dil->Update();
    bone_mask = MaskObject::New();
    bone_mask->SetImage(dil->GetOutput());
    bone_mask->Update();
  }
  std::vector<Level> schedule;  // coarse to fine: shrink 8, 4, 2 smoothed by 3, 2, 1 voxels by default
  const unsigned finest = static_cast<unsigned>(std::clamp(opt.finest_shrink, 1, 8));
  for (int l = 0; l < levels; ++l) {
    const unsigned f = finest << (levels - 1 - l);
    schedule.push_back({f, std::log2(double(f))});
  }

  // Rotation centre (the fixed image's centre) and the centres-aligned translation.
  auto transform = RigidItk::New();
  auto init = itk::CenteredTransformInitializer<RigidItk, FloatImage, FloatImage>::New();
  init->SetTransform(transform);
  init->SetFixedImage(fixed);
  init->SetMovingImage(moving);
  init->GeometryOn();
  init->InitializeTransform();
  const RigidItk::InputPointType centre = transform->GetCenter();
  const Vec3 centres{transform->GetTranslation()[0], transform->GetTranslation()[1], transform->GetTranslation()[2]};
  const std::vector<RigidStart> starts =
      opt.multi_start ? rigid_starts(fixed, moving, centres) : std::vector<RigidStart>{{"centres aligned", centres}};
  auto set_start = [&](RigidItk* t, const RigidStart& s) {
    t->SetIdentity();
    t->SetCenter(centre);
    RigidItk::OutputVectorType v;
    for (int a = 0; a < 3; ++a) v[a] = s.translation[a];
    t->SetTranslation(v);
  };

  // Several starts: each runs the coarsest level, on the same sampled points. That level's
  // metric is too rough to choose between them: it samples few points (10 % of a 16^3 image for
  // a 128^3 CT: a few hundred; of a small image a few dozen), and on a 48^3 phantom cut short a
  // start 75 mm off ended with a better value there than the right one. Each start and each
  // coarse result is judged instead by the same metric on every voxel of the images as at a finer
  // level (Judge), and the remaining levels run from the best of them (so from a start itself
  // when the coarsest level led it astray). A start whose coarse level ITK cannot run (too
  // little of the fixed image on the moving one) leaves only the start itself; when nothing could
  // be judged, the centres-aligned start runs through all levels (and reports ITK's error as
  // before). One start (the usual case for two scans of the same box) runs as before.
  std::size_t chosen = 0;
  RigidItk::Pointer from;  // where the finer levels start; none: all levels from starts[chosen]
  double max_step = 0;     // ITK's largest step, estimated at the coarsest level (the same from every start)
  const double share = starts.size() > 1 ? 0.4 : 0.0;  // of the rigid step's progress
  if (starts.size() > 1) {
    const Judge judge(fixed, moving, bone_mask.GetPointer(), schedule);
    // The coarsest level's smoothing once for all starts (as ITK's registration does it itself).
    const FloatImage::Pointer fixed_coarse = smoothed(fixed, schedule[0].sigma);
    const FloatImage::Pointer moving_coarse = smoothed(moving, schedule[0].sigma);
    double best = std::numeric_limits<double>::infinity();
    for (std::size_t n = 0; n < starts.size(); ++n) {
      auto t0 = RigidItk::New();
      set_start(t0, starts[n]);
      const double v0 = judge.value(t0);
      auto t1 = RigidItk::New();
      set_start(t1, starts[n]);
      double v1 = std::numeric_limits<double>::infinity();
      try {
        double step = 0;
        run_rigid_levels(fixed_coarse, moving_coarse, bone_mask.GetPointer(), opt, t1, {{schedule[0].shrink, 0.0}}, 0,
                         step, progress.sub(share * double(n) / double(starts.size()),
                                            share * double(n + 1) / double(starts.size()),
                                            "start " + std::to_string(n + 1)));
        v1 = judge.value(t1);
        max_step = step;
      } catch (const itk::ExceptionObject&) {
        // too little of the fixed image on the moving one from this start: no coarse result
      }
      for (const auto& [t, v] : {std::pair{t0, v0}, std::pair{t1, v1}})
        if (v < best) {
          best = v;
          chosen = n;
          from = t;
        }
    }
  }
  if (chosen_start) *chosen_start = starts[chosen].name;
  try {
    if (from && schedule.size() > 1) {
      transform->SetParameters(from->GetParameters());  // the same centre for every start
      run_rigid_levels(fixed, moving, bone_mask.GetPointer(), opt, transform,
                       std::vector<Level>(schedule.begin() + 1, schedule.end()), 1, max_step, progress.sub(share, 1.0));
    } else {
      set_start(transform, starts[chosen]);
      max_step = 0;
      run_rigid_levels(fixed, moving, bone_mask.GetPointer(), opt, transform, schedule, 0, max_step,
                       progress.sub(share, 1.0));
    }
  } catch (const itk::ExceptionObject& e) {
    fail<InvalidInput>("rigid registration", "images", core::detail::itk_description(e));
  }
  RigidTransform r;
  const auto& m = transform->GetMatrix();
  for (int a = 0; a < 3; ++a) {
    for (int b = 0; b < 3; ++b) r.rotation[a * 3 + b] = m(a, b);
    r.center[a] = transform->GetCenter()[a];
    r.translation[a] = transform->GetTranslation()[a];
  }
  progress.done();
  return r;
}

}  // namespace

Geometry demons_grid(const Geometry& fixed, const DeformableOptions& options) {
  const Geometry g = coarsen(fixed, options.max_resolution_mm);
  const auto voxels = [](const Geometry& x) { return static_cast<std::int64_t>(x.num_voxels()); };
  if (options.max_voxels <= 0 || voxels(g) <= options.max_voxels) return g;
  // The smallest spacing floor (coarsen's per-axis rule) whose grid fits the budget.
  double lo = std::min({g.spacing[0], g.spacing[1], g.spacing[2]});
  double hi = std::max({g.spacing[0], g.spacing[1], g.spacing[2]});
  while (voxels(coarsen(g, hi)) > options.max_voxels) hi *= 2;
  for (int it = 0; it < 40; ++it) {
    const double mid = 0.5 * (lo + hi);
    (voxels(coarsen(g, mid)) > options.max_voxels ? lo : hi) = mid;
  }
  return coarsen(g, hi);
}

// ---------------------------------------------------------------------------------------

Vec3 RigidTransform::apply(const Vec3& x) const {
  Vec3 y{};
  for (int a = 0; a < 3; ++a) {
    double s = center[a] + translation[a];
    for (int b = 0; b < 3; ++b) s += rotation[a * 3 + b] * (x[b] - center[b]);
    y[a] = s;
  }
  return y;
}

DisplacementField DisplacementField::zeros(const Geometry& g) {
  g.validate("displacement field");
  DisplacementField f;
  f.geometry = g;
  f.data.assign(g.num_voxels() * 3, 0.f);
  return f;
}

Vec3 DisplacementField::at(std::int64_t i, std::int64_t j, std::int64_t k) const {
  const std::size_t n = geometry.offset(i, j, k) * 3;
  return {data[n], data[n + 1], data[n + 2]};
}

Vec3 DisplacementField::sample(const Vec3& world) const {
  const Vec3 c = geometry.world_to_index(world);
  std::int64_t i0[3];
  double f[3];
  for (int a = 0; a < 3; ++a) {
    if (c[a] < -0.5 || c[a] > geometry.size[a] - 0.5) return {0, 0, 0};
    const double x = std::clamp(c[a], 0.0, double(geometry.size[a] - 1));
    i0[a] = std::min<std::int64_t>(static_cast<std::int64_t>(x), std::max<std::int64_t>(geometry.size[a] - 2, 0));
    f[a] = geometry.size[a] > 1 ? x - i0[a] : 0.0;
  }
  Vec3 u{0, 0, 0};
  for (int dk = 0; dk < 2; ++dk)
    for (int dj = 0; dj < 2; ++dj)
      for (int di = 0; di < 2; ++di) {
        const double w = (di ? f[0] : 1 - f[0]) * (dj ? f[1] : 1 - f[1]) * (dk ? f[2] : 1 - f[2]);
        if (w == 0) continue;
        const Vec3 v = at(std::min(i0[0] + di, geometry.size[0] - 1), std::min(i0[1] + dj, geometry.size[1] - 1),
                          std::min(i0[2] + dk, geometry.size[2] - 1));
        for (int a = 0; a < 3; ++a) u[a] += w * v[a];
      }
  return u;
}

Vec3 DisplacementField::transform_point(const Vec3& p) const {
  const Vec3 u = sample(p);
  return {p[0] + u[0], p[1] + u[1], p[2] + u[2]};
}

RegistrationResult register_images(const Image& fixed_in, const Image& moving_in,
                                   const RegistrationOptions& opt, const core::Progress& progress) {
  const char* op = "register images";
  if (fixed_in.empty()) fail<InvalidInput>(op, "fixed image", "image is empty");
  if (moving_in.empty()) fail<InvalidInput>(op, "moving image", "image is empty");
  // One of the rigid step's starts has the images' centres aligned, so a re-scan in other
  // coordinates (another table position or origin: the two boxes apart) is registered; without
  // it the demons need the images on top of each other.
  if (!opt.rigid && !overlap(fixed_in.geometry(), moving_in.geometry()))
    fail<InvalidInput>(op, "images",
                       "the fixed and moving images do not overlap in patient space (the rigid step, which "
                       "would align them, is off)");
  const auto t0 = std::chrono::steady_clock::now();
  const auto& dopt = opt.deformable_options;
  auto fixed = to_float(fixed_in, dopt.window_low, dopt.window_high);
  auto moving = to_float(moving_in, dopt.window_low, dopt.window_high);

  RegistrationResult res;
  if (opt.rigid)
    res.rigid = rigid_register(fixed, moving, opt.rigid_options, progress.sub(0.0, 0.3, "rigid"), &res.rigid_start);

  const Geometry& g = fixed_in.geometry();
  DisplacementField deform = DisplacementField::zeros(g);
  if (opt.deformable) {
    // Moving image resampled through the rigid transform onto the fixed grid.
    using Rigid = itk::VersorRigid3DTransform<double>;
    auto t = Rigid::New();
    Rigid::MatrixType m;
    Rigid::OutputVectorType tr;
    Rigid::InputPointType c;
    for (int a = 0; a < 3; ++a) {
      for (int b = 0; b < 3; ++b) m(a, b) = res.rigid.rotation[a * 3 + b];
      tr[a] = res.rigid.translation[a];
      c[a] = res.rigid.center[a];
    }
    t->SetCenter(c);
    t->SetMatrix(m, 1e-6);
    t->SetTranslation(tr);
    auto rs = itk::ResampleImageFilter<FloatImage, FloatImage>::New();
    rs->SetInput(moving);
    rs->SetTransform(t);
    rs->SetReferenceImage(fixed);
    rs->SetUseReferenceImage(true);
    rs->SetDefaultPixelValue(static_cast<float>(dopt.window_low));
    rs->Update();

    FloatImage::Pointer dfixed = fixed, dmoving = rs->GetOutput();
    // Histogram matching (threshold at the mean intensity) equalises e.g. lung density between
    // breathing states, but on a CT that is mostly air the mean falls in the air and the
    // matching shifts soft tissue (OpenKBP pt_203: 4.4 mm instead of 0.4 mm error on a known
    // field): only on body-dominated images.
    std::size_t body_voxels = 0;
    for (std::size_t n = 0; n < fixed_in.num_voxels(); ++n) body_voxels += fixed_in.value(n) > -500.0;
    const double body_fraction = double(body_voxels) / double(std::max<std::size_t>(fixed_in.num_voxels(), 1));
    if (body_fraction >= dopt.histogram_matching_min_body_fraction) {
      auto match = itk::HistogramMatchingImageFilter<FloatImage, FloatImage>::New();
      match->SetInput(rs->GetOutput());
      match->SetReferenceImage(fixed);
      match->SetNumberOfHistogramLevels(256);
      match->SetNumberOfMatchPoints(15);
      match->ThresholdAtMeanIntensityOn();
      match->Update();
      dmoving = match->GetOutput();
    }

    // Demons grid: the fixed grid, coarsened to max_resolution_mm per axis and then, if it has
    // more than max_voxels voxels, to the finest spacing that fits the budget.
    const Geometry dg = demons_grid(g, dopt);
    const bool coarse = !dg.same_grid(g, 1e-6);
    if (coarse) {
      dfixed = resample_to(fixed, dg, static_cast<float>(dopt.window_low));
      dmoving = resample_to(dmoving, dg, static_cast<float>(dopt.window_low));
    }

    using Demons = itk::DiffeomorphicDemonsRegistrationFilter<FloatImage, FloatImage, FieldImage>;
    using MultiRes = itk::MultiResolutionPDEDeformableRegistration<FloatImage, FloatImage, FieldImage, float>;
    auto demons = Demons::New();
    demons->SetUseGradientType(itk::ESMDemonsRegistrationFunctionEnums::Gradient::Symmetric);
    demons->SetMaximumUpdateStepLength(dopt.max_step_voxels);
    demons->SmoothDisplacementFieldOn();
    const double min_spacing = std::min({dg.spacing[0], dg.spacing[1], dg.spacing[2]});
    demons->SetStandardDeviations(std::max(dopt.min_field_sigma_voxels, dopt.field_sigma_mm / min_spacing));
    if (dopt.update_sigma_mm > 0) {
      demons->SmoothUpdateFieldOn();
      demons->SetUpdateFieldStandardDeviations(std::max(0.5, dopt.update_sigma_mm / min_spacing));
    }
    // Where the intensity difference and the gradient are both noise, the demons' force is as
    // large as on anatomy (it is normalised by both) and points at random: a new CT noisier
    // than the planning CT walked the field off in uniform tissue (pt_201 registered to itself
    // with 15 HU of noise added: 2.2 mm p95, 6.3 mm at most in the body). Differences below
    // noise_threshold_factor times the noise that the new CT has beyond the planning CT's move
    // nothing; two CTs of the same noise (the lung pair) and a new CT that is an interpolated
    // copy of the planning CT (less noise) keep ITK's threshold, and so their fields.
    const double sigma_fixed = noise_hu(fixed_in), sigma_moving = noise_hu(moving_in);
    const double excess = std::sqrt(std::max(0.0, sigma_fixed * sigma_fixed - sigma_moving * sigma_moving));
    if (dopt.noise_threshold_factor > 0 && dopt.noise_threshold_factor * excess > 1.0)
      demons->SetIntensityDifferenceThreshold(dopt.noise_threshold_factor * excess);
    auto multires = MultiRes::New();
    multires->SetRegistrationFilter(demons);
    const int levels = std::clamp(dopt.levels, 1, 4);
    multires->SetNumberOfLevels(static_cast<unsigned>(levels));
    std::vector<unsigned> iters(static_cast<std::size_t>(levels), 20);
    for (int l = 0; l < levels && l < static_cast<int>(dopt.iterations.size()); ++l)
      iters[static_cast<std::size_t>(l)] = static_cast<unsigned>(std::max(1, dopt.iterations[static_cast<std::size_t>(l)]));
    multires->SetNumberOfIterations(iters.data());
    multires->SetFixedImage(dfixed);
    multires->SetMovingImage(dmoving);

    core::Progress dprog = progress.sub(0.3, 0.95, "deformable");
    auto observer = itk::CStyleCommand::New();
    struct Ctx {
      const core::Progress* progress;
      int level;
      int levels;
      const std::vector<unsigned>* iters;
      Demons* demons;
    } ctx{&dprog, 0, levels, &iters, demons.GetPointer()};
    observer->SetClientData(&ctx);
    observer->SetCallback([](itk::Object*, const itk::EventObject&, void* data) {
      auto* c = static_cast<Ctx*>(data);
      c->progress->update(double(c->level) / c->levels, "level " + std::to_string(c->level + 1));
      ++c->level;
    });
    multires->AddObserver(itk::IterationEvent(), observer);
    // Every demons iteration reports too (one takes up to seconds on a large CT): a stop
    // (Ctrl-C, a raising callback) is seen within one iteration, not at the end of a level.
    auto step = itk::CStyleCommand::New();
    step->SetClientData(&ctx);
    step->SetCallback([](itk::Object*, const itk::EventObject&, void* data) {
      auto* c = static_cast<Ctx*>(data);
      const int level = std::max(0, c->level - 1);  // the multi-resolution event came first
      const double n = (*c->iters)[static_cast<std::size_t>(std::min(level, c->levels - 1))];
      const double within = std::min(1.0, double(c->demons->GetElapsedIterations()) / std::max(1.0, n));
      c->progress->update((level + within) / c->levels);
    });
    demons->AddObserver(itk::IterationEvent(), step);
    try {
      multires->Update();
    } catch (const itk::ExceptionObject& e) {
      fail<InvalidInput>("deformable registration", "images", core::detail::itk_description(e));
    }
    deform = from_itk_field(multires->GetOutput());
    if (coarse) {  // trilinear onto the fixed grid (same outer voxel boundaries)
      DisplacementField fine = DisplacementField::zeros(g);
      const std::int64_t nz = g.size[2];
#pragma omp parallel for schedule(static)
      for (std::int64_t k = 0; k < nz; ++k)
        for (std::int64_t j = 0; j < g.size[1]; ++j)
          for (std::int64_t i = 0; i < g.size[0]; ++i) {
            const Vec3 u = deform.sample(g.index_to_world({double(i), double(j), double(k)}));
            const std::size_t n = g.offset(i, j, k) * 3;
            for (int a = 0; a < 3; ++a) fine.data[n + a] = static_cast<float>(u[a]);
          }
      deform = std::move(fine);
    }
    dprog.done();
  }

  // Total displacement: T(x) = R(x + u_d(x)), u(x) = T(x) - x.
  res.field = DisplacementField::zeros(g);
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t j = 0; j < g.size[1]; ++j)
      for (std::int64_t i = 0; i < g.size[0]; ++i) {
        const Vec3 x = g.index_to_world({double(i), double(j), double(k)});
        const Vec3 ud = deform.at(i, j, k);
        const Vec3 y = res.rigid.apply({x[0] + ud[0], x[1] + ud[1], x[2] + ud[2]});
        const std::size_t n = g.offset(i, j, k) * 3;
        for (int a = 0; a < 3; ++a) res.field.data[n + a] = static_cast<float>(y[a] - x[a]);
      }
  Image jac = jacobian_determinant(res.field);
  const float* jp = jac.data<float>();
  double mn = 1e30;
  std::size_t folded = 0;
  for (std::size_t n = 0; n < jac.num_voxels(); ++n) {
    mn = std::min(mn, double(jp[n]));
    folded += jp[n] <= 0.f;
  }
  res.min_jacobian = mn;
  res.folding_fraction = double(folded) / double(jac.num_voxels());
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  progress.done();
  return res;
}

Image jacobian_determinant(const DisplacementField& field) {
  if (field.empty()) fail<InvalidInput>("jacobian determinant", "field", "field is empty");
  auto f = itk::DisplacementFieldJacobianDeterminantFilter<FieldImage, float, FloatImage>::New();
  auto in = to_itk_field(field);
  f->SetInput(in);
  f->SetUseImageSpacingOn();
  f->Update();
  Image out(field.geometry, PixelType::Float32);
  std::memcpy(out.raw(), f->GetOutput()->GetBufferPointer(), out.byte_size());
  return out;
}

Image warp(const Image& moving, const DisplacementField& field, double default_value) {
  if (moving.empty()) fail<InvalidInput>("warp image", "image", "image is empty");
  if (field.empty()) fail<InvalidInput>("warp image", "field", "field is empty");
  auto in = to_float(moving);
  auto f = to_itk_field(field);
  auto w = itk::WarpImageFilter<FloatImage, FloatImage, FieldImage>::New();
  w->SetInput(in);
  w->SetDisplacementField(f);
  w->SetOutputParametersFromImage(f);
  w->SetEdgePaddingValue(static_cast<float>(default_value));
  w->SetInterpolator(itk::LinearInterpolateImageFunction<FloatImage, double>::New());
  w->Update();
  Image out(field.geometry, PixelType::Float32);
  std::memcpy(out.raw(), w->GetOutput()->GetBufferPointer(), out.byte_size());
  if (moving.pixel_type() == PixelType::UInt8) {
    Image m(field.geometry, PixelType::UInt8);
    const float* p = out.data<float>();
    std::uint8_t* q = m.data<std::uint8_t>();
    for (std::size_t n = 0; n < m.num_voxels(); ++n) q[n] = p[n] >= 0.5f ? 1 : 0;
    return m;
  }
  return moving.pixel_type() == PixelType::Float32 ? out : out.cast(moving.pixel_type());
}

DisplacementField read_field(const std::string& path) {
  core::detail::register_itk_io_factories();
  {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) fail<core::IoError>("read displacement field", path, "file does not exist");
    if (!core::is_image_path(path))
      fail<core::IoError>("read displacement field", path, "not an image file (.nii.gz, .nii, .nrrd or .mha)");
  }
  auto r = itk::ImageFileReader<FieldImage>::New();
  r->SetFileName(path);
  try {
    r->UpdateOutputInformation();
    // ITK would spread a scalar image (e.g. a CT) over the three components.
    const unsigned components = r->GetImageIO()->GetNumberOfComponents();
    if (components != 3)
      fail<InvalidInput>("read displacement field", path,
                         "not a displacement field (" + std::to_string(components) +
                             " value(s) per voxel; a field has 3: x, y, z in mm)");
    r->Update();
  } catch (const itk::ExceptionObject& e) {
    fail<IoError>("read displacement field", path, core::detail::itk_description(e));
  }
  DisplacementField f = from_itk_field(r->GetOutput());
  f.geometry.validate(path);
  return f;
}

void write_field(const DisplacementField& field, const std::string& path) {
  if (field.empty()) fail<InvalidInput>("write displacement field", path, "field is empty");
  if (!core::is_image_path(path))
    fail<InvalidInput>("write displacement field", path, "unknown image format (use .nii.gz, .nii, .nrrd or .mha)");
  core::detail::register_itk_io_factories();
  core::AtomicOutput out(path);
  auto w = itk::ImageFileWriter<FieldImage>::New();
  auto img = to_itk_field(field);
  w->SetFileName(out.temp_path());
  w->SetInput(img);
  w->SetUseCompression(true);
  try {
    w->Update();
  } catch (const itk::ExceptionObject& e) {
    fail<IoError>("write displacement field", path,
                  core::write_failure_problem(out.temp_path(), core::detail::itk_description(e)));
  }
  // ITK's writers report a failed write on stderr only, or not at all (a short file).
  core::detail::check_itk_written(out.temp_path(), path, "write displacement field",
                                  field.data.data(), field.data.size() * sizeof(float));
  out.commit();
}

std::vector<Vec3> read_points(const std::string& path, const Geometry* grid) {
  const char* op = "read points";
  std::ifstream in(path);
  if (!in) fail<IoError>(op, path, "cannot open file");
  std::string kind;
  long count = -1;
  in >> kind >> count;
  if (kind != "point" && kind != "index")
    fail<IoError>(op, path, "first word must be 'point' or 'index' (elastix point file)");
  if (kind == "index" && !grid) fail<InvalidInput>(op, path, "index points need the image grid");
  if (count < 0) fail<IoError>(op, path, "missing point count");
  std::vector<Vec3> pts;
  for (long n = 0; n < count; ++n) {
    Vec3 p;
    if (!(in >> p[0] >> p[1] >> p[2]))
      fail<IoError>(op, path, "expected " + std::to_string(count) + " points, found " + std::to_string(n));
    pts.push_back(kind == "index" ? grid->index_to_world(p) : p);
  }
  return pts;
}

std::vector<double> target_registration_errors(const DisplacementField& field, const std::vector<Vec3>& fixed_points,
                                               const std::vector<Vec3>& moving_points) {
  if (fixed_points.size() != moving_points.size())
    fail<InvalidInput>("target registration error", "landmarks", "fixed and moving landmark counts differ");
  std::vector<double> out;
  for (std::size_t n = 0; n < fixed_points.size(); ++n) {
    const Vec3 t = field.transform_point(fixed_points[n]);
    double s = 0;
    for (int a = 0; a < 3; ++a) s += (t[a] - moving_points[n][a]) * (t[a] - moving_points[n][a]);
    out.push_back(std::sqrt(s));
  }
  return out;
}

}  // namespace isoline::adaptive
