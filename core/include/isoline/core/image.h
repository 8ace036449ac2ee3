// A non-template 3-D image: physical geometry plus one typed pixel buffer.
//
// Pixels are stored i fastest (x, then y, then z), the layout of ITK, NIfTI and DICOM
// frames. The buffer is reference-counted: copying an Image shares its pixels (like ITK's
// smart pointers or cv::Mat), which is what lets Python view it without copying.
// Use clone() for an independent copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include "isoline/core/geometry.h"

namespace isoline::core {

enum class PixelType : std::uint8_t { UInt8, Int16, Float32 };

std::size_t pixel_size(PixelType t);
const char* to_string(PixelType t);

template <class T>
struct PixelTypeOf;
template <>
struct PixelTypeOf<std::uint8_t> {
  static constexpr PixelType value = PixelType::UInt8;
};
template <>
struct PixelTypeOf<std::int16_t> {
  static constexpr PixelType value = PixelType::Int16;
};
template <>
struct PixelTypeOf<float> {
  static constexpr PixelType value = PixelType::Float32;
};

class Image {
 public:
  /// An empty image (no pixels).
  Image() = default;
  /// A zero-filled image.
  Image(const Geometry& geometry, PixelType type);
  /// Wraps an existing buffer of geometry.num_voxels() pixels of `type` without copying.
  /// `buffer` keeps the memory alive (for example a numpy array owned by Python).
  static Image wrap(const Geometry& geometry, PixelType type, std::shared_ptr<void> buffer);

  template <class T>
  static Image zeros(const Geometry& geometry) {
    return Image(geometry, PixelTypeOf<T>::value);
  }

  bool empty() const { return !buffer_; }
  const Geometry& geometry() const { return geometry_; }
  /// Replaces origin/spacing/direction; the size must not change.
  void set_geometry(const Geometry& geometry);
  PixelType pixel_type() const { return type_; }
  std::size_t num_voxels() const { return geometry_.num_voxels(); }
  std::size_t byte_size() const { return num_voxels() * pixel_size(type_); }

  void* raw() { return buffer_.get(); }
  const void* raw() const { return buffer_.get(); }
  const std::shared_ptr<void>& buffer() const { return buffer_; }

  /// Typed access; throws InvalidInput when T does not match pixel_type().
  template <class T>
  T* data() {
    check_type(PixelTypeOf<T>::value);
    return static_cast<T*>(buffer_.get());
  }
  template <class T>
  const T* data() const {
    check_type(PixelTypeOf<T>::value);
    return static_cast<const T*>(buffer_.get());
  }
  template <class T>
  T& at(std::int64_t i, std::int64_t j, std::int64_t k) {
    return data<T>()[geometry_.offset(i, j, k)];
  }
  template <class T>
  const T& at(std::int64_t i, std::int64_t j, std::int64_t k) const {
    return data<T>()[geometry_.offset(i, j, k)];
  }

  /// Value of voxel `n` converted to double, whatever the pixel type.
  double value(std::size_t n) const;

  /// Independent deep copy.
  Image clone() const;
  /// Converted copy (rounding and saturating to integer types).
  Image cast(PixelType type) const;

  /// Minimum and maximum pixel value (0, 0 for an empty image).
  std::pair<double, double> min_max() const;
  /// Number of non-zero voxels.
  std::size_t count_nonzero() const;

 private:
  void check_type(PixelType requested) const;

  Geometry geometry_;
  PixelType type_ = PixelType::UInt8;
  std::shared_ptr<void> buffer_;
};

}  // namespace isoline::core
