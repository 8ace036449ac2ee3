#include "isoline/core/structure.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "isoline/core/error.h"

namespace isoline::core {

namespace {
std::string upper(std::string_view s) {
  std::string u(s);
  for (char& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return u;
}
bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}
}  // namespace

const char* to_dicom_string(StructureType t) {
  switch (t) {
    case StructureType::External:
      return "EXTERNAL";
    case StructureType::Organ:
      return "ORGAN";
    case StructureType::PTV:
      return "PTV";
    case StructureType::CTV:
      return "CTV";
    case StructureType::GTV:
      return "GTV";
    case StructureType::Avoidance:
      return "AVOIDANCE";
    case StructureType::Support:
      return "SUPPORT";
    case StructureType::Control:
      return "CONTROL";
    case StructureType::Other:
      return "";
  }
  return "";
}

StructureType structure_type_from_string(std::string_view s) {
  const std::string u = upper(s);
  for (auto t : {StructureType::External, StructureType::Organ, StructureType::PTV,
                 StructureType::CTV, StructureType::GTV, StructureType::Avoidance,
                 StructureType::Support, StructureType::Control})
    if (u == to_dicom_string(t)) return t;
  return StructureType::Other;
}

bool is_target_type(StructureType t) {
  return t == StructureType::PTV || t == StructureType::CTV || t == StructureType::GTV;
}

double prescription_from_name(std::string_view name) {
  std::size_t i = 0;
  while (i < name.size() && !std::isdigit(static_cast<unsigned char>(name[i]))) ++i;
  if (i == name.size()) return 0.0;
  std::size_t j = i;
  while (j < name.size() && std::isdigit(static_cast<unsigned char>(name[j]))) ++j;
  if (j + 1 < name.size() && name[j] == '.' &&
      std::isdigit(static_cast<unsigned char>(name[j + 1]))) {
    ++j;
    while (j < name.size() && std::isdigit(static_cast<unsigned char>(name[j]))) ++j;
  }
  const double v = std::strtod(std::string(name.substr(i, j - i)).c_str(), nullptr);
  if (v >= 10.0 && v <= 150.0) return v;
  if (v >= 1000.0 && v <= 15000.0) return v / 100.0;  // cGy
  return 0.0;
}

StructureType guess_structure_type(std::string_view name) {
  const std::string u = upper(name);
  if (starts_with(u, "PTV")) return StructureType::PTV;
  if (starts_with(u, "CTV")) return StructureType::CTV;
  if (starts_with(u, "GTV")) return StructureType::GTV;
  if (u == "BODY" || u == "EXTERNAL" || u == "SKIN" || u == "OUTLINE")
    return StructureType::External;
  if (starts_with(u, "COUCH") || starts_with(u, "TABLE")) return StructureType::Support;
  return StructureType::Organ;
}

Color default_color(std::string_view name, std::size_t index) {
  struct Named {
    const char* name;
    Color color;
  };
  // Conventional H&N colours (close to common TPS defaults) for quick recognition, at least
  // 80 apart in RGB so that structures drawn side by side (Brainstem / PTV63, a parotid /
  // PTV56) are told apart in the reports, the UI and the TPS.
  static const Named kNamed[] = {
      {"BRAINSTEM", {255, 170, 0}},    {"SPINALCORD", {255, 255, 0}},
      {"RIGHTPAROTID", {0, 170, 255}}, {"LEFTPAROTID", {0, 255, 170}},
      {"ESOPHAGUS", {170, 85, 255}},   {"LARYNX", {255, 85, 170}},
      {"MANDIBLE", {200, 180, 120}},   {"PTV70", {255, 0, 0}},
      {"PTV63", {200, 0, 120}},        {"PTV56", {160, 255, 90}},
      {"BODY", {0, 255, 0}},           {"EXTERNAL", {0, 255, 0}},
  };
  const std::string u = upper(name);
  for (const auto& n : kNamed)
    if (u == n.name) return n.color;
  // Other structures (GTV, CTV, a second cord ...): a palette without the colours that look
  // like a named one (a GTV next to the SpinalCord in the same yellow).
  static const std::vector<Color> kPalette = [] {
    const Color all[] = {{230, 25, 75},  {60, 180, 75},  {255, 225, 25},  {0, 130, 200},
                         {245, 130, 48}, {145, 30, 180}, {70, 240, 240},  {240, 50, 230},
                         {210, 245, 60}, {250, 190, 212}, {0, 128, 128},  {220, 190, 255},
                         {128, 128, 255}, {128, 64, 0},  {0, 0, 255}};
    std::vector<Color> out;
    for (const Color& c : all) {
      bool alike = false;
      for (const auto& n : kNamed)
        alike = alike || std::hypot(double(c.r) - n.color.r, double(c.g) - n.color.g, double(c.b) - n.color.b) < 80;
      if (!alike) out.push_back(c);
    }
    return out;
  }();
  return kPalette[index % kPalette.size()];
}

double Structure::volume_cc() const {
  if (mask.empty()) return 0.0;
  return double(mask.count_nonzero()) * mask.geometry().voxel_volume_mm3() / 1000.0;
}

bool Structure::is_target() const {
  return is_target_type(type) || is_target_type(guess_structure_type(name));
}

Structure& StructureSet::add(Structure s) {
  const char* op = "add structure";
  if (s.name.empty()) fail<InvalidInput>(op, "", "structure name is empty");
  if (find(s.name)) fail<InvalidInput>(op, s.name, "a structure with this name already exists");
  if (s.mask.empty()) fail<InvalidInput>(op, s.name, "mask is empty");
  if (s.mask.pixel_type() != PixelType::UInt8)
    fail<InvalidInput>(op, s.name,
                       std::string("mask must be uint8, got ") + to_string(s.mask.pixel_type()));
  if (!has_geometry_) {
    geometry_ = s.mask.geometry();
    has_geometry_ = true;
  } else if (!geometry_.same_grid(s.mask.geometry())) {
    fail<InvalidInput>(op, s.name, "mask is not on the structure set's grid");
  }
  structures_.push_back(std::move(s));
  return structures_.back();
}

Structure& StructureSet::add(const std::string& name, const Image& mask) {
  Structure s;
  s.name = name;
  s.type = guess_structure_type(name);
  s.color = default_color(name, structures_.size());
  s.mask = mask;
  return add(std::move(s));
}

const Structure* StructureSet::find(std::string_view name) const {
  for (const auto& s : structures_)
    if (s.name == name) return &s;
  return nullptr;
}

Structure* StructureSet::find(std::string_view name) {
  for (auto& s : structures_)
    if (s.name == name) return &s;
  return nullptr;
}

const Structure& StructureSet::get(std::string_view name) const {
  if (const Structure* s = find(name)) return *s;
  std::string avail;
  for (const auto& s : structures_) avail += (avail.empty() ? "" : ", ") + s.name;
  fail<InvalidInput>(
      "find structure", name,
      "not in the structure set (available: " + (avail.empty() ? "none" : avail) + ")");
}

bool StructureSet::remove(std::string_view name) {
  auto it = std::find_if(structures_.begin(), structures_.end(),
                         [&](const Structure& s) { return s.name == name; });
  if (it == structures_.end()) return false;
  removed_.items.splice(removed_.items.end(), structures_, it);
  return true;
}

const Structure& StructureSet::operator[](std::size_t i) const {
  if (i >= structures_.size()) throw std::out_of_range("StructureSet index " + std::to_string(i));
  return *std::next(structures_.begin(), static_cast<std::ptrdiff_t>(i));
}

Structure& StructureSet::operator[](std::size_t i) {
  if (i >= structures_.size()) throw std::out_of_range("StructureSet index " + std::to_string(i));
  return *std::next(structures_.begin(), static_cast<std::ptrdiff_t>(i));
}

std::vector<std::string> StructureSet::names() const {
  std::vector<std::string> out;
  for (const auto& s : structures_) out.push_back(s.name);
  return out;
}

}  // namespace isoline::core
