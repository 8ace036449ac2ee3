#include "isoline/core/image.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "isoline/core/error.h"

namespace isoline::core {

std::size_t pixel_size(PixelType t) {
  switch (t) {
    case PixelType::UInt8: return 1;
    case PixelType::Int16: return 2;
    case PixelType::Float32: return 4;
  }
  return 1;
}

const char* to_string(PixelType t) {
  switch (t) {
    case PixelType::UInt8: return "uint8";
    case PixelType::Int16: return "int16";
    case PixelType::Float32: return "float32";
  }
  return "?";
}

namespace {
std::shared_ptr<void> allocate_zeroed(std::size_t bytes) {
  // calloc lets the OS hand out zero pages lazily; free() matches it.
  void* p = std::calloc(std::max<std::size_t>(bytes, 1), 1);
  if (!p)
    throw std::bad_alloc();
  return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
}

template <class F>
auto dispatch(PixelType t, F&& f) {
  switch (t) {
    case PixelType::UInt8: return f(std::uint8_t{});
    case PixelType::Int16: return f(std::int16_t{});
    case PixelType::Float32: break;
  }
  return f(float{});
}
}  // namespace

Image::Image(const Geometry& geometry, PixelType type) : geometry_(geometry), type_(type) {
  geometry_.validate("new image");
  buffer_ = allocate_zeroed(byte_size());
}

Image Image::wrap(const Geometry& geometry, PixelType type, std::shared_ptr<void> buffer) {
  geometry.validate("wrapped image");
  if (!buffer) fail<InvalidInput>("wrap image", "", "buffer is null");
  Image img;
  img.geometry_ = geometry;
  img.type_ = type;
  img.buffer_ = std::move(buffer);
  return img;
}

void Image::set_geometry(const Geometry& geometry) {
  if (geometry.size != geometry_.size)
    fail<InvalidInput>("set image geometry", "", "the new geometry changes the image size");
  geometry.validate("image geometry");
  geometry_ = geometry;
}

void Image::check_type(PixelType requested) const {
  if (requested != type_)
    fail<InvalidInput>("access image pixels", "",
                       std::string("requested ") + to_string(requested) + " but image holds " +
                           to_string(type_));
}

double Image::value(std::size_t n) const {
  return dispatch(type_, [&](auto tag) {
    using T = decltype(tag);
    return static_cast<double>(static_cast<const T*>(buffer_.get())[n]);
  });
}

Image Image::clone() const {
  if (empty()) return Image();
  Image out(geometry_, type_);
  std::memcpy(out.raw(), raw(), byte_size());
  return out;
}

Image Image::cast(PixelType type) const {
  if (type == type_) return clone();
  Image out(geometry_, type);
  const std::size_t n = num_voxels();
  dispatch(type, [&](auto tag) {
    using D = decltype(tag);
    D* dst = static_cast<D*>(out.raw());
    for (std::size_t i = 0; i < n; ++i) {
      double v = value(i);
      if constexpr (std::is_integral_v<D>) {
        v = std::round(v);
        v = std::clamp(v, double(std::numeric_limits<D>::min()),
                       double(std::numeric_limits<D>::max()));
      }
      dst[i] = static_cast<D>(v);
    }
    return 0;
  });
  return out;
}

std::pair<double, double> Image::min_max() const {
  if (empty() || num_voxels() == 0) return {0.0, 0.0};
  return dispatch(type_, [&](auto tag) {
    using T = decltype(tag);
    const T* p = static_cast<const T*>(buffer_.get());
    auto [lo, hi] = std::minmax_element(p, p + num_voxels());
    return std::pair<double, double>(double(*lo), double(*hi));
  });
}

std::size_t Image::count_nonzero() const {
  if (empty()) return 0;
  return dispatch(type_, [&](auto tag) {
    using T = decltype(tag);
    const T* p = static_cast<const T*>(buffer_.get());
    return static_cast<std::size_t>(
        std::count_if(p, p + num_voxels(), [](T v) { return v != T(0); }));
  });
}

}  // namespace isoline::core
