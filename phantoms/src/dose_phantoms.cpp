// Dose phantoms: water box, water-lung-water and water-bone-water slabs, TG-119-like C-shape.
#include <cctype>
#include <cmath>

#include "isoline/core/error.h"
#include "isoline/phantoms/phantoms.h"
#include "raster.h"

namespace isoline::phantoms {

const char* to_string(DosePhantomKind k) {
  switch (k) {
    case DosePhantomKind::WaterBox: return "water";
    case DosePhantomKind::LungSlab: return "lung-slab";
    case DosePhantomKind::BoneSlab: return "bone-slab";
    case DosePhantomKind::CShape: return "c-shape";
  }
  return "water";
}

DosePhantomKind dose_phantom_from_string(const std::string& s) {
  std::string l = s;
  for (char& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (auto k : {DosePhantomKind::WaterBox, DosePhantomKind::LungSlab, DosePhantomKind::BoneSlab,
                 DosePhantomKind::CShape})
    if (l == to_string(k)) return k;
  core::fail<core::InvalidInput>("phantom", s,
                                 "unknown phantom (expected hn, water, lung-slab, bone-slab or "
                                 "c-shape)");
}

Phantom make_dose_phantom(DosePhantomKind kind, const DosePhantomOptions& o,
                          const core::Progress& progress) {
  const bool c_shape = kind == DosePhantomKind::CShape;
  core::Vec3 spacing = o.spacing;
  core::Index3 size = o.size;
  if (!(spacing[0] > 0 && spacing[1] > 0 && spacing[2] > 0))
    spacing = c_shape ? core::Vec3{2, 2, 2} : core::Vec3{2.5, 2.5, 2.5};
  if (size[0] < 1 || size[1] < 1 || size[2] < 1)
    for (int a = 0; a < 3; ++a)  // 320 mm field: the 300 mm box plus 10 mm of air each side
      size[a] = static_cast<std::int64_t>(std::ceil(320.0 / spacing[a]));
  const core::Geometry grid = make_grid(size, spacing, o.position, {0, 0, 0});
  const detail::AxialGrid ag = detail::axial_grid(grid);

  std::vector<detail::PaintOp> ops;
  struct Named {
    std::string name;
    ShapePtr shape;
    core::StructureType type;
  };
  std::vector<Named> structs;
  // Beams from anterior meet the slabs at depth d below the anterior surface y = -150.
  const double front = -150;
  ShapePtr box = std::make_shared<AxisBox>(Vec3{-150, -150, -150}, Vec3{150, 150, 150});
  if (c_shape) box = std::make_shared<AxisBox>(Vec3{-150, -100, -100}, Vec3{150, 100, 100});
  ops.push_back({box, kWater});
  structs.push_back({"Body", box, core::StructureType::External});
  std::string description;
  switch (kind) {
    case DosePhantomKind::WaterBox:
      description = "water box 300 x 300 x 300 mm";
      break;
    case DosePhantomKind::LungSlab: {
      auto lung = std::make_shared<AxisBox>(Vec3{-150, front + 50, -150}, Vec3{150, front + 150, 150});
      ops.push_back({lung, kLung});
      structs.push_back({"Lung", lung, core::StructureType::Organ});
      description = "water 0-50 mm, lung 50-150 mm, water 150-300 mm depth from anterior";
      break;
    }
    case DosePhantomKind::BoneSlab: {
      auto bone = std::make_shared<AxisBox>(Vec3{-150, front + 50, -150}, Vec3{150, front + 80, 150});
      ops.push_back({bone, kCorticalBone});
      structs.push_back({"Bone", bone, core::StructureType::Organ});
      description = "water 0-50 mm, bone 50-80 mm, water 80-300 mm depth from anterior";
      break;
    }
    case DosePhantomKind::CShape: {
      const double kPi = 3.14159265358979323846;
      auto core_cyl = std::make_shared<LoftedTube>(std::vector<LoftedTube::Key>{
          {-50, Section{0, 0, 10, 10, 10, 2, 2}}, {50, Section{0, 0, 10, 10, 10, 2, 2}}});
      // The opening faces anterior (-y): gap direction -90 degrees, half-width 45 degrees.
      auto target = std::make_shared<AnnularSector>(0, 0, 15, 37, -40, 40, -kPi / 2, kPi / 4);
      structs.push_back({"PTV", target, core::StructureType::PTV});
      structs.push_back({"Core", core_cyl, core::StructureType::Avoidance});
      description =
          "water 300 x 200 x 200 mm; PTV: C-shaped annulus r 15-37 mm, 80 mm long, opening "
          "90 degrees anterior; Core: cylinder r 10 mm, 100 mm long";
      break;
    }
  }
  Phantom ph;
  ph.kind = to_string(kind);
  ph.position = o.position;
  ph.noise_sd_hu = o.noise_sd_hu;
  ph.focus = c_shape ? Vec3{0, 0, 0} : Vec3{0, front + 65, 0};
  ph.labels = detail::paint(ops, ag, kAir, progress.sub(0, 0.4, "tissues"));
  ph.structures = core::StructureSet(grid);
  for (const auto& s : structs) {
    core::Structure st;
    st.name = s.name;
    st.type = s.type;
    st.color = core::default_color(s.name, ph.structures.size());
    st.mask = detail::rasterize(*s.shape, ag);
    ph.structures.add(std::move(st));
    ph.analytic_volume_cc[s.name] = s.shape->volume_mm3() / 1000.0;
  }
  ph.ct = detail::synthesize_ct(ph.labels, {0, 0, 0}, o.noise_sd_hu, 1,
                                progress.sub(0.6, 1.0, "ct"));
  ph.facts["description"] = description;
  ph.facts["position"] = to_string(o.position);
  progress.done();
  return ph;
}

}  // namespace isoline::phantoms
