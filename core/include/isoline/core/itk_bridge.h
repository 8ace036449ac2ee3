// Zero-copy views of core::Image as itk::Image and back, for the .cpp files of modules that
// link ITK (core, contouring, adaptive). It includes ITK headers: never include it from a
// public header of a module.
#pragma once

#include <cstring>
#include <string>
#include <string_view>

#include <itkImage.h>
#include <itkImportImageContainer.h>
#include <itkMacro.h>

#include "isoline/core/image.h"

namespace isoline::core::detail {

template <class T>
using ItkImage = itk::Image<T, 3>;

template <class T>
void copy_geometry_to_itk(const Geometry& g, ItkImage<T>* img) {
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

/// An itk::Image that borrows the pixels of `image` (no copy). Valid while `image` lives;
/// ITK filters never write into their inputs.
template <class T>
typename ItkImage<T>::Pointer to_itk(const Image& image) {
  auto img = ItkImage<T>::New();
  copy_geometry_to_itk(image.geometry(), img.GetPointer());
  img->GetPixelContainer()->SetImportPointer(const_cast<T*>(image.data<T>()), image.num_voxels(),
                                             false);
  return img;
}

template <class T>
Geometry geometry_from_itk(const ItkImage<T>* img) {
  Geometry g;
  const auto region = img->GetLargestPossibleRegion();
  for (int a = 0; a < 3; ++a) {
    g.size[a] = static_cast<std::int64_t>(region.GetSize()[a]);
    g.spacing[a] = img->GetSpacing()[a];
    g.origin[a] = img->GetOrigin()[a];
    for (int b = 0; b < 3; ++b) g.direction[a * 3 + b] = img->GetDirection()(a, b);
  }
  return g;
}

/// Copies an itk::Image (its buffered region must be its largest region) into a new Image.
template <class T>
Image from_itk(const ItkImage<T>* img) {
  Image out(geometry_from_itk(img), PixelTypeOf<T>::value);
  std::memcpy(out.raw(), img->GetBufferPointer(), out.byte_size());
  return out;
}

/// Registers ITK's NIfTI, NRRD and MetaImage readers and writers, once per process (before
/// itk::ImageFileReader / ImageFileWriter or ImageIOFactory are used).
void register_itk_io_factories();

/// Checks the file an ITK writer wrote at `written` (`target`: the name errors give). ITK's NIfTI,
/// NRRD and MetaImage writers report a failed write (disk full, file size limit) on stderr only,
/// or not at all when it fails as the file is closed, leaving a short file. A NIfTI file must
/// hold the data its header declares; another format is read back and must equal `data`
/// (`bytes` bytes, the image buffer as written). Throws IoError naming `operation`, `target`
/// and the system's reason (write_failure_reason).
void check_itk_written(const std::string& written, const std::string& target,
                       std::string_view operation, const void* data, std::size_t bytes);

/// ITK's error text is multi-line with source locations; this is its description line, without
/// trailing newlines and blanks (empty when ITK gave none).
std::string itk_description(const itk::ExceptionObject& e);

}  // namespace isoline::core::detail
