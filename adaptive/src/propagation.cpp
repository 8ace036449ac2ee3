// Contour propagation (structure masks warped through a registration) and fusion with
// re-contoured structures.
#include "isoline/adaptive/propagation.h"

#include <algorithm>
#include <cstdio>

#include "isoline/core/error.h"

namespace isoline::adaptive {

using core::fail;
using core::Image;
using core::InvalidInput;
using core::PixelType;
using core::StructureSet;

double dice(const Image& a, const Image& b) {
  if (a.num_voxels() != b.num_voxels()) fail<InvalidInput>("dice", "masks", "masks have different sizes");
  std::size_t ia = 0, ib = 0, both = 0;
  for (std::size_t v = 0; v < a.num_voxels(); ++v) {
    const bool x = a.value(v) != 0, y = b.value(v) != 0;
    ia += x;
    ib += y;
    both += x && y;
  }
  return ia + ib ? 2.0 * double(both) / double(ia + ib) : 1.0;
}

bool is_target(const core::Structure& s) {
  using T = core::StructureType;
  if (s.type == T::PTV || s.type == T::CTV || s.type == T::GTV) return true;
  for (const char* p : {"PTV", "CTV", "GTV", "ITV"})
    if (s.name.rfind(p, 0) == 0) return true;
  return false;
}

StructureSet propagate_structures(const StructureSet& planning, const DisplacementField& field,
                                  const core::Progress& progress) {
  if (field.empty()) fail<InvalidInput>("propagate structures", "field", "field is empty");
  StructureSet out(field.geometry);
  std::size_t n = 0;
  for (const auto& s : planning) {
    progress.update(double(n++) / std::max<std::size_t>(planning.size(), 1), s.name);
    // 0/1 mask (structures may store any non-zero value inside).
    Image m(s.mask.geometry(), PixelType::UInt8);
    std::uint8_t* q = m.data<std::uint8_t>();
    for (std::size_t v = 0; v < m.num_voxels(); ++v) q[v] = s.mask.value(v) != 0;
    core::Structure p;
    p.name = s.name;
    p.type = s.type;
    p.color = s.color;
    p.mask = warp(m, field);  // linear on the mask, thresholded at 0.5
    p.description = s.description.empty() ? "propagated" : "propagated; " + s.description;
    out.add(std::move(p));
  }
  progress.done();
  return out;
}

FuseResult fuse_structures(const StructureSet& propagated, const StructureSet& recontoured,
                           const FuseOptions& opt) {
  const char* op = "fuse structures";
  if (!propagated.empty() && !recontoured.empty() &&
      !propagated.geometry().same_grid(recontoured.geometry(), 1e-3))
    fail<InvalidInput>(op, "structure sets", "propagated and re-contoured structures are on different grids");
  FuseResult res;
  res.structures = propagated.empty() ? StructureSet(recontoured.geometry()) : StructureSet(propagated.geometry());
  auto keep = [&](const core::Structure& s) {
    return is_target(s) ||
           std::find(opt.keep_propagated.begin(), opt.keep_propagated.end(), s.name) != opt.keep_propagated.end();
  };
  for (const auto& p : propagated) {
    StructureAgreement a;
    a.name = p.name;
    core::Structure s = p;
    const core::Structure* r = recontoured.find(p.name);
    if (r) {
      a.dice = dice(p.mask, r->mask);
      a.flagged = a.dice < opt.dice_threshold;
      if (!keep(p)) {
        s = *r;
        s.type = p.type;
        s.color = p.color;
        s.description = r->description.empty() ? "re-contoured" : "re-contoured; " + r->description;
      }
      if (a.flagged) {
        char buf[128];
        std::snprintf(buf, sizeof buf, "review: propagated vs re-contoured Dice %.2f < %.2f", a.dice,
                      opt.dice_threshold);
        s.description = std::string(buf) + "; " + s.description;
      }
    }
    a.source = (r && !keep(p)) ? "re-contoured" : "propagated";
    res.structures.add(std::move(s));
    res.agreement.push_back(a);
  }
  for (const auto& r : recontoured) {
    if (propagated.find(r.name)) continue;
    core::Structure s = r;
    s.description = r.description.empty() ? "re-contoured" : "re-contoured; " + r.description;
    res.structures.add(std::move(s));
    res.agreement.push_back({r.name, "re-contoured", -1.0, false});
  }
  return res;
}

}  // namespace isoline::adaptive
