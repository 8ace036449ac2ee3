// Body / External contour by a classic method: threshold, opening, largest component,
// slice-wise hole filling (ITK filters).
#include <itkBinaryBallStructuringElement.h>
#include <itkBinaryMorphologicalOpeningImageFilter.h>

#include <algorithm>
#include <cmath>

#include "isoline/contouring/contour.h"
#include "isoline/core/error.h"
#include "isoline/core/mask_ops.h"
#include "isoline/core/itk_bridge.h"

namespace isoline::contouring {

core::Image body_mask(const core::Image& ct, double threshold_hu, double opening_mm) {
  if (ct.empty()) core::fail<core::InvalidInput>("body contour", "CT", "image is empty");
  const auto& g = ct.geometry();
  core::Image m(g, core::PixelType::UInt8);
  std::uint8_t* o = m.data<std::uint8_t>();
  const std::size_t n = ct.num_voxels();
  if (ct.pixel_type() == core::PixelType::Int16) {
    const std::int16_t* p = ct.data<std::int16_t>();
    for (std::size_t v = 0; v < n; ++v) o[v] = p[v] > threshold_hu ? 1 : 0;
  } else {
    for (std::size_t v = 0; v < n; ++v) o[v] = ct.value(v) > threshold_hu ? 1 : 0;
  }
  if (opening_mm > 0) {
    // In-plane (axes 0, 1) ball: removes the couch's thin shells and tubing, keeps the
    // patient. The slice axis is not opened (slices may be thick).
    using Mask = core::detail::ItkImage<std::uint8_t>;
    using Ball = itk::BinaryBallStructuringElement<std::uint8_t, 3>;
    Ball::SizeType radius;
    for (int a = 0; a < 3; ++a)
      radius[a] = a < 2 ? static_cast<itk::SizeValueType>(std::max(1.0, std::round(opening_mm / g.spacing[a])))
                        : 0;
    Ball ball;
    ball.SetRadius(radius);
    ball.CreateStructuringElement();
    auto f = itk::BinaryMorphologicalOpeningImageFilter<Mask, Mask, Ball>::New();
    auto in = core::detail::to_itk<std::uint8_t>(m);
    f->SetInput(in);
    f->SetKernel(ball);
    f->SetForegroundValue(1);
    f->SetBackgroundValue(0);
    f->Update();
    m = core::detail::from_itk<std::uint8_t>(f->GetOutput());
  }
  m = core::keep_largest_components(m, 1);
  return core::fill_holes(m, /*per_slice=*/true);
}

}  // namespace isoline::contouring
