// A labelled set of structures (ROIs) on one image grid: name, type, colour and a binary
// uint8 mask per structure. Masks of one set share the grid of the set.
#pragma once

#include <cstdint>
#include <optional>
#include <list>
#include <string>
#include <string_view>
#include <vector>

#include "isoline/core/image.h"

namespace isoline::core {

/// RT ROI Interpreted Type (DICOM 3006,00A4), the subset Isoline writes.
enum class StructureType : std::uint8_t {
  External,
  Organ,
  PTV,
  CTV,
  GTV,
  Avoidance,
  Support,
  Control,
  Other
};

/// DICOM string ("EXTERNAL", "ORGAN", "PTV", ...; "" for Other).
const char* to_dicom_string(StructureType t);
/// Parses a DICOM RTROIInterpretedType (case-insensitive); unknown values give Other.
StructureType structure_type_from_string(std::string_view s);
/// A plausible type from a structure name: "PTV70" -> PTV, "Body" -> External, else Organ.
StructureType guess_structure_type(std::string_view name);
/// True for the target types PTV, CTV and GTV.
bool is_target_type(StructureType t);
/// Prescription dose encoded in a target's name, in Gy: the first number in the name,
/// decimals allowed ("PTV70" -> 70, "PTV_59.4" -> 59.4, "CTV 50.4Gy" -> 50.4); 1000-15000
/// is read as cGy ("PTV7000" -> 70). 0 when there is none or it is no plausible dose
/// (under 10: an index as in "PTV1", "PTV2").
double prescription_from_name(std::string_view name);

struct Color {
  std::uint8_t r = 255, g = 0, b = 0;
  bool operator==(const Color& o) const { return r == o.r && g == o.g && b == o.b; }
};

/// A distinct default colour for a well-known structure name, else one from a palette by
/// index.
Color default_color(std::string_view name, std::size_t index = 0);

struct Structure {
  std::string name;
  StructureType type = StructureType::Organ;
  Color color;
  Image mask;               ///< uint8, 0 outside, non-zero inside
  std::string description;  ///< free text, e.g. quality flags (ROI Description in DICOM)

  /// Volume in cm^3 (count of non-zero voxels times voxel volume).
  double volume_cc() const;
  /// A target: typed PTV/CTV/GTV, or named like one ("PTV70" typed Organ by a TPS export).
  bool is_target() const;
};

class StructureSet {
 public:
  StructureSet() = default;
  explicit StructureSet(const Geometry& geometry) : geometry_(geometry), has_geometry_(true) {}

  const Geometry& geometry() const { return geometry_; }
  std::size_t size() const { return structures_.size(); }
  bool empty() const { return structures_.empty(); }

  /// Adds a structure. Throws InvalidInput when the name is empty or taken, or the mask is
  /// not uint8 on this set's grid. The first structure added to a set built without a
  /// geometry defines it.
  Structure& add(Structure s);
  /// Adds a structure from a mask, guessing type and colour from the name.
  Structure& add(const std::string& name, const Image& mask);

  const Structure* find(std::string_view name) const;
  Structure* find(std::string_view name);
  /// Like find() but throws InvalidInput listing the available names.
  const Structure& get(std::string_view name) const;
  bool remove(std::string_view name);
  std::vector<std::string> names() const;

  std::list<Structure>::const_iterator begin() const { return structures_.begin(); }
  std::list<Structure>::const_iterator end() const { return structures_.end(); }
  std::list<Structure>::iterator begin() { return structures_.begin(); }
  std::list<Structure>::iterator end() { return structures_.end(); }
  /// The i-th structure in insertion order. Throws std::out_of_range.
  const Structure& operator[](std::size_t i) const;
  Structure& operator[](std::size_t i);

 private:
  // A list, so that a reference to a structure (Python's s["X"], s.add(...)) stays valid
  // while others are added or removed; a removed one is kept (not copied with the set) until
  // the set is destroyed, so even a reference to it never dangles.
  struct Removed {
    std::list<Structure> items;
    Removed() = default;
    Removed(const Removed&) {}
    Removed& operator=(const Removed&) { return *this; }
    Removed(Removed&&) noexcept = default;
    Removed& operator=(Removed&&) noexcept = default;
  };
  Geometry geometry_;
  bool has_geometry_ = false;
  std::list<Structure> structures_;
  Removed removed_;
};

}  // namespace isoline::core
