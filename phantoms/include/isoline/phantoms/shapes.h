// Analytic solids in patient coordinates (DICOM LPS, mm) with exact volumes.
//
// Every phantom structure is one of these solids (or a disjoint union of them), so its true
// volume is known independently of any voxel grid: closed forms for ellipsoids,
// superellipsoids, boxes and arches; a one-dimensional integral of closed-form section areas
// (Cavalieri) for lofted tubes; Steiner's formula for the margin (Minkowski sum with a ball)
// around an ellipsoid. Deformations are volume-preserving shears (unit Jacobian).
//
// Shapes answer `inside(p)` and, where they can, give the exact x-intervals of a grid row
// (`x_spans`) so rasterizing a 512 x 512 x 160 grid costs a few operations per row.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <vector>

#include "isoline/core/geometry.h"

namespace isoline::phantoms {

using core::Mat3;
using core::Vec3;

struct Box3 {
  Vec3 lo{0, 0, 0};
  Vec3 hi{0, 0, 0};
};

struct Interval {
  double lo = 0, hi = 0;
};

class Shape {
 public:
  virtual ~Shape() = default;
  /// True when point `p` (LPS mm) lies in the solid (boundary included).
  virtual bool inside(const Vec3& p) const = 0;
  /// An axis-aligned box containing the solid.
  virtual Box3 bounds() const = 0;
  /// Exact volume in mm^3; NaN for shapes used only to paint tissue.
  virtual double volume_mm3() const = 0;
  /// Appends the intervals of x where the line {(x, y, z)} lies inside and returns true, or
  /// returns false when the shape cannot (then callers test points with inside()).
  virtual bool x_spans(double y, double z, std::vector<Interval>& out) const { return false; }
};
using ShapePtr = std::shared_ptr<const Shape>;

/// Rotation matrix (row-major) about the patient x axis (left), y (posterior), z (superior).
Mat3 rotation_x(double radians);
Mat3 rotation_y(double radians);
Mat3 rotation_z(double radians);
Mat3 multiply(const Mat3& a, const Mat3& b);

/// Ellipsoid with centre, semi-axes and orientation: the columns of `rotation` are the
/// ellipsoid's axes in LPS. Volume 4/3 pi a b c.
class Ellipsoid : public Shape {
 public:
  Ellipsoid(const Vec3& centre, const Vec3& semi_axes, const Mat3& rotation = core::kIdentity3);
  bool inside(const Vec3& p) const override;
  Box3 bounds() const override;
  double volume_mm3() const override;
  bool x_spans(double y, double z, std::vector<Interval>& out) const override;

  /// Euclidean distance from p to the solid (0 inside).
  double distance(const Vec3& p) const;
  /// Surface area (numerical quadrature of a smooth integrand, relative error < 1e-9).
  double surface_area_mm2() const;
  /// Integral of the mean curvature over the surface (= integral of the support function
  /// over the unit sphere), the second Steiner coefficient.
  double mean_curvature_integral_mm() const;
  /// Point of the surface with outward unit normal `n`.
  Vec3 support_point(const Vec3& n) const;

  const Vec3& centre() const { return c_; }
  const Vec3& semi_axes() const { return r_; }
  const Mat3& rotation() const { return rot_; }

 private:
  Vec3 to_local(const Vec3& p) const;
  Vec3 c_, r_;
  Mat3 rot_;
  Mat3 q_;  // quadratic form: inside iff (p-c)^T q (p-c) <= 1
};

/// The points within `margin` mm of an ellipsoid (its Minkowski sum with a ball). Volume by
/// Steiner's formula V + S r + M r^2 + 4/3 pi r^3.
class EllipsoidMargin : public Shape {
 public:
  EllipsoidMargin(std::shared_ptr<const Ellipsoid> base, double margin_mm);
  bool inside(const Vec3& p) const override;
  Box3 bounds() const override;
  double volume_mm3() const override;
  const Ellipsoid& base() const { return *base_; }
  double margin() const { return m_; }

 private:
  std::shared_ptr<const Ellipsoid> base_;
  double m_;
};

/// Superellipsoid (|x/a|^(2/e2) + |y/b|^(2/e2))^(e2/e1) + |z/c|^(2/e1) <= 1 in its local
/// frame (columns of `rotation`). e1 = e2 = 1 is an ellipsoid; smaller values are boxier.
/// Volume 2 c A(e2) G(e1) with closed-form gamma-function factors.
class Superellipsoid : public Shape {
 public:
  Superellipsoid(const Vec3& centre, const Vec3& semi_axes, double e1, double e2,
                 const Mat3& rotation = core::kIdentity3);
  bool inside(const Vec3& p) const override;
  Box3 bounds() const override;
  double volume_mm3() const override;

 private:
  Vec3 c_, r_;
  double e1_, e2_;
  Mat3 rot_;
};

/// Axial cross-section of a lofted tube: a "split superellipse" centred at (cx, cy) with
/// half-width a in x, extent b_ant towards anterior (-y) and b_post towards posterior (+y),
/// exponent n_ant / n_post for each half (2 = elliptic, larger = squarer).
struct Section {
  double cx = 0, cy = 0, a = 1, b_ant = 1, b_post = 1, n_ant = 2, n_post = 2;
  double area() const;
};

/// A tube along z whose axial sections are interpolated (monotone cubic, per parameter)
/// between key sections. Optional elliptic domes beyond the first/last key: over a height h
/// the section shrinks by sqrt(1 - t^2). Volume = integral of the section area (Gauss
/// quadrature of a smooth integrand) + 2/3 A h per dome.
class LoftedTube : public Shape {
 public:
  struct Key {
    double z;
    Section s;
  };
  /// Keys sorted by increasing z (at least 2).
  explicit LoftedTube(std::vector<Key> keys, double dome_bottom_mm = 0.0,
                      double dome_top_mm = 0.0);
  bool inside(const Vec3& p) const override;
  Box3 bounds() const override;
  double volume_mm3() const override;
  bool x_spans(double y, double z, std::vector<Interval>& out) const override;
  /// Volume of the part with z0 <= z <= z1.
  double volume_between(double z0, double z1) const;

  /// Section at z, false when z is outside the tube (domes included).
  bool section_at(double z, Section& s) const;
  double z_min() const { return keys_.front().z - dome_bot_; }
  double z_max() const { return keys_.back().z + dome_top_; }

 private:
  Section interpolate(double z) const;
  std::vector<Key> keys_;
  std::vector<std::array<double, 7>> slopes_;
  double dome_bot_, dome_top_;
};

/// A horseshoe (the mandible body): the part with y <= cy of the region between an outer
/// and an inner axial ellipse centred at (cx, cy), for z0 <= z <= z1. Opens towards +y.
/// Volume pi/2 (a1 b1 - a2 b2) (z1 - z0).
class Arch : public Shape {
 public:
  Arch(double cx, double cy, double a_outer, double b_outer, double a_inner, double b_inner,
       double z0, double z1);
  bool inside(const Vec3& p) const override;
  Box3 bounds() const override;
  double volume_mm3() const override;
  bool x_spans(double y, double z, std::vector<Interval>& out) const override;

 private:
  double cx_, cy_, a1_, b1_, a2_, b2_, z0_, z1_;
};

/// An axis-aligned box. Volume = product of its sides.
class AxisBox : public Shape {
 public:
  AxisBox(const Vec3& lo, const Vec3& hi);
  bool inside(const Vec3& p) const override;
  Box3 bounds() const override { return {lo_, hi_}; }
  double volume_mm3() const override;
  bool x_spans(double y, double z, std::vector<Interval>& out) const override;

 private:
  Vec3 lo_, hi_;
};

/// Part of an annulus r0 <= r <= r1 around the axis (cx, cy) parallel to z, for z0 <= z <= z1,
/// without the angular sector of half-width `gap_half_angle` (radians) centred on direction
/// `gap_direction` (radians from +x towards +y). A TG-119 style "C". Volume exact.
class AnnularSector : public Shape {
 public:
  AnnularSector(double cx, double cy, double r0, double r1, double z0, double z1,
                double gap_direction, double gap_half_angle);
  bool inside(const Vec3& p) const override;
  Box3 bounds() const override;
  double volume_mm3() const override;

 private:
  double cx_, cy_, r0_, r1_, z0_, z1_, gap_dir_, gap_half_;
};

/// A volume-preserving smooth deformation of `base`: a point u of the base goes to
///   p_y = u_y,  p_z = u_z + gz(u_y),  p_x = u_x + gx(p_y, p_z),
/// a triangular map with unit Jacobian, so the volume is the base's. `max_shift_mm` bounds |gx| and
/// |gz| over the base (used for bounds).
class Sheared : public Shape {
 public:
  Sheared(ShapePtr base, std::function<double(double, double)> gx,
          std::function<double(double)> gz, double max_shift_mm);
  bool inside(const Vec3& p) const override;
  Box3 bounds() const override;
  double volume_mm3() const override { return base_->volume_mm3(); }

 private:
  ShapePtr base_;
  std::function<double(double, double)> gx_;
  std::function<double(double)> gz_;
  double max_shift_;
};

/// Union of shapes that do not overlap (volume = sum; overlap must be of zero volume).
class DisjointUnion : public Shape {
 public:
  explicit DisjointUnion(std::vector<ShapePtr> parts);
  bool inside(const Vec3& p) const override;
  Box3 bounds() const override;
  double volume_mm3() const override;
  bool x_spans(double y, double z, std::vector<Interval>& out) const override;

 private:
  std::vector<ShapePtr> parts_;
};

/// `base` restricted to the half-space n . p <= d (for painting; volume NaN).
class HalfSpaceClip : public Shape {
 public:
  HalfSpaceClip(ShapePtr base, const Vec3& normal, double d);
  bool inside(const Vec3& p) const override;
  Box3 bounds() const override { return base_->bounds(); }
  double volume_mm3() const override;
  bool x_spans(double y, double z, std::vector<Interval>& out) const override;

 private:
  ShapePtr base_;
  Vec3 n_;
  double d_;
};

/// Area of the superellipse |x/a|^n + |y/b|^n <= 1: 4 a b Gamma(1+1/n)^2 / Gamma(1+2/n).
double superellipse_area(double a, double b, double n);

}  // namespace isoline::phantoms
