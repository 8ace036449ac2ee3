// Private to contouring: zero-copy itk::Image views of core::Image and back (ITK only in
// .cpp files of this module).
#pragma once

#include <cstring>

#include <itkImage.h>
#include <itkImportImageContainer.h>

#include "isoline/core/image.h"

namespace isoline::contouring::detail {

template <class T>
using ItkImage = itk::Image<T, 3>;

template <class T>
void set_itk_geometry(const core::Geometry& g, ItkImage<T>* img) {
  typename ItkImage<T>::SizeType size;
  typename ItkImage<T>::SpacingType spacing;
  typename ItkImage<T>::PointType origin;
  typename ItkImage<T>::DirectionType direction;
  for (int a = 0; a < 3; ++a) {
    size[a] = static_cast<itk::SizeValueType>(g.size[a]);
    spacing[a] = g.spacing[a];
    origin[a] = g.origin[a];
    for (int b = 0; b < 3; ++b) direction(a, b) = g.direction[a * 3 + b];
  }
  img->SetRegions(typename ItkImage<T>::RegionType(size));
  img->SetSpacing(spacing);
  img->SetOrigin(origin);
  img->SetDirection(direction);
}

template <class T>
typename ItkImage<T>::Pointer to_itk(const core::Image& image) {
  auto img = ItkImage<T>::New();
  set_itk_geometry(image.geometry(), img.GetPointer());
  img->GetPixelContainer()->SetImportPointer(const_cast<T*>(image.data<T>()), image.num_voxels(),
                                             false);
  return img;
}

/// Copies the pixels of an ITK image on the grid `g` into a new core::Image.
template <class T>
core::Image from_itk(const ItkImage<T>* img, const core::Geometry& g) {
  core::Image out(g, core::PixelTypeOf<T>::value);
  std::memcpy(out.raw(), img->GetBufferPointer(), out.byte_size());
  return out;
}

}  // namespace isoline::contouring::detail
