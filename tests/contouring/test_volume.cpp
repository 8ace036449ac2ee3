// 3-D ("volume") contouring networks: model card input.kind / window_slices, and contour()
// running a whole-volume TorchScript network in overlapping z windows. The fixture network
// (tests/contouring/data/make_volume_fixture.py, committed with its output) moves the bright
// part of the CT by one model-grid voxel along +z (ZPlus), +x (XPlus) and -y (YMinus), so a
// transposed, reversed or mis-windowed axis shows as masks in the wrong place.
#include <cmath>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "isoline/contouring/contour.h"
#include "isoline/contouring/model.h"
#include "isoline/core/error.h"
#include "tests/test_util.h"

using namespace isoline;
using core::Geometry;
using core::Image;
using core::Vec3;

namespace {

const std::string kData = std::string(ISOLINE_SOURCE_DIR) + "/tests/contouring/data";
const std::string kCard = kData + "/volume_fixture.json";
const Vec3 kSpacing{3.906, 3.906, 2.5};  // the fixture card's model grid

// The fixture card with `edit` applied to its JSON, written into `t` (network path absolute).
std::string card_with(const test::TempDir& t, const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json j;
  std::ifstream(kCard) >> j;
  j["file"] = kData + "/volume_fixture.pt";
  edit(j);
  const std::string path = t.file("card.json");
  std::ofstream(path) << j.dump();
  return path;
}

using Region = std::function<bool(const Vec3& lps_mm)>;

// 48 x 48 x nz voxels with the model grid's spacing, so that the voxel centres are model-grid
// voxel centres whatever the direction.
Geometry ct_grid(std::int64_t nz, const core::Mat3& direction, const Vec3& origin) {
  Geometry g;
  g.size = {48, 48, nz};
  g.spacing = kSpacing;
  g.direction = direction;
  g.origin = origin;
  return g;
}

// Air, a soft-tissue cylinder (40 HU, radius 70 mm, along z over the whole length: the body)
// and 900 HU wherever `bright` holds.
Image synthetic_ct(const Geometry& g, const Region& bright) {
  const std::int64_t nz = g.size[2];
  Image ct(g, core::PixelType::Int16);
  const Vec3 c = g.index_to_world({23.5, 23.5, 0});
  for (std::int64_t k = 0; k < nz; ++k)
    for (std::int64_t j = 0; j < 48; ++j)
      for (std::int64_t i = 0; i < 48; ++i) {
        const Vec3 w = g.index_to_world({double(i), double(j), double(k)});
        const bool body = std::hypot(w[0] - c[0], w[1] - c[1]) < 70;
        ct.at<std::int16_t>(i, j, k) = bright(w) ? 900 : body ? 40 : -1000;
      }
  return ct;
}

struct Check {
  std::size_t expected = 0, wrong = 0, unshifted = 0;  // voxel counts
  Vec3 moved{0, 0, 0};  // centroid of the mask minus centroid of the bright region (mm)
};

// Compares `mask` with the bright region moved by `shift` (patient mm): expected voxels are
// those whose centre minus `shift` is bright.
Check check_shift(const Image& mask, const Region& bright, const Vec3& shift) {
  const Geometry& g = mask.geometry();
  Check r;
  Vec3 sm{0, 0, 0}, sb{0, 0, 0};
  std::size_t nm = 0, nb = 0;
  for (std::int64_t k = 0; k < g.size[2]; ++k)
    for (std::int64_t j = 0; j < g.size[1]; ++j)
      for (std::int64_t i = 0; i < g.size[0]; ++i) {
        const Vec3 w = g.index_to_world({double(i), double(j), double(k)});
        const bool want = bright({w[0] - shift[0], w[1] - shift[1], w[2] - shift[2]});
        const bool got = mask.at<std::uint8_t>(i, j, k) != 0;
        r.expected += want;
        r.wrong += want != got;
        r.unshifted += bright(w) != got;
        for (int a = 0; a < 3; ++a) {
          if (got) sm[a] += w[a];
          if (bright(w)) sb[a] += w[a];
        }
        nm += got;
        nb += bright(w);
      }
  for (int a = 0; a < 3; ++a) r.moved[a] = nm && nb ? sm[a] / double(nm) - sb[a] / double(nb) : 1e9;
  return r;
}

struct Contoured {
  std::vector<std::string> windows;  ///< the "z window i/n" progress details seen
  std::vector<double> confidence;    ///< per structure: mean probability inside the mask
};

// Contours `ct` with the card and checks every structure against its shift.
Contoured contour_and_check(const Image& ct, const std::string& card, const Region& bright) {
  Contoured run;
  std::vector<std::string>& windows = run.windows;
  core::Progress progress([&](const core::ProgressEvent& e) {
    if (e.detail.rfind("z window", 0) == 0 && (windows.empty() || windows.back() != e.detail))
      windows.push_back(e.detail);
  });
  const contouring::Model model(card);
  contouring::ContourOptions options;
  options.structures = {"ZPlus", "XPlus", "YMinus"};
  const auto result = contouring::contour(ct, model, options, progress);
  EXPECT_EQ(result.structures.size(), 3u);
  const std::vector<std::pair<std::string, Vec3>> shifts = {{"ZPlus", {0, 0, kSpacing[2]}},
                                                            {"XPlus", {kSpacing[0], 0, 0}},
                                                            {"YMinus", {0, -kSpacing[1], 0}}};
  for (const auto& [name, shift] : shifts) {
    const Check c = check_shift(result.structures.get(name).mask, bright, shift);
    EXPECT_GT(c.expected, 100u) << name;
    EXPECT_EQ(c.wrong, 0u) << name << ": voxels differing from the bright region moved by ("
                           << shift[0] << ", " << shift[1] << ", " << shift[2] << ") mm";
    EXPECT_GT(c.unshifted, 0u) << name << ": the mask is the unmoved region";
    for (int a = 0; a < 3; ++a)
      EXPECT_NEAR(c.moved[a], shift[a], 0.05) << name << " centroid axis " << a;
  }
  for (const auto& q : result.quality) run.confidence.push_back(q.confidence);
  return run;
}

// A box of 6 x 5 x 4 voxels of grid `g` inside the body; edges half-way between voxel centres.
Region box_in(const Geometry& g) {
  return [g](const Vec3& w) {
    const Vec3 x = g.world_to_index(w);
    return x[0] > 19.5 && x[0] < 25.5 && x[1] > 14.5 && x[1] < 19.5 && x[2] > 9.5 && x[2] < 13.5;
  };
}

// A bar along z from slice 5 to 144 whose x position steps by 2 voxels every 9 slices (one
// connected staircase), so a z misplacement anywhere, across window seams included, changes
// the masks.
Region staircase_of(const Geometry& g) {
  return [g](const Vec3& w) {
    const Vec3 x = g.world_to_index(w);
    if (!(x[2] > 4.5 && x[2] < 144.5 && x[1] > 20.5 && x[1] < 25.5)) return false;
    const long step = std::lround(std::floor(x[2] / 9.0));
    const double i0 = 18.5 + (step % 2 ? 2.0 : 0.0);
    return x[0] > i0 && x[0] < i0 + 5.0;
  };
}

}  // namespace

TEST(ModelCard, InputKindVolumeSlicesAbsentUnknown) {
  const auto v = contouring::load_model_card(kCard);
  EXPECT_TRUE(v.volume);
  EXPECT_EQ(v.window_slices, 160);
  EXPECT_EQ(v.context, 0);  // the fixture card has no context_slices_each_side
  EXPECT_EQ(v.channels(), 1);
  EXPECT_EQ(v.structures.size(), 3u);

  const auto shipped = contouring::load_model_card(contouring::default_model_card_path());
  EXPECT_FALSE(shipped.volume);  // no input.kind: slices
  EXPECT_GT(shipped.context, 0);

  test::TempDir t;
  auto load = [&](const std::function<void(nlohmann::json&)>& edit) {
    return contouring::load_model_card(card_with(t, edit));
  };
  auto c = load([](nlohmann::json& j) {
    j["input"]["kind"] = "slices";
    j["input"]["context_slices_each_side"] = 2;
  });
  EXPECT_FALSE(c.volume);
  EXPECT_EQ(c.channels(), 5);
  EXPECT_THROW(load([](nlohmann::json& j) { j["input"]["kind"] = "slices"; }),
               core::InvalidInput);  // a slices card needs its context
  c = load([](nlohmann::json& j) {
    j["input"]["window_slices"] = 96;
    j["input"]["context_slices_each_side"] = 3;  // allowed, unused
  });
  EXPECT_TRUE(c.volume);
  EXPECT_EQ(c.window_slices, 96);
  EXPECT_EQ(c.channels(), 1);
  try {
    load([](nlohmann::json& j) { j["input"]["kind"] = "planar"; });
    FAIL() << "an unknown input.kind was accepted";
  } catch (const core::InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("card.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("planar"), std::string::npos) << e.what();
  }
  try {
    load([](nlohmann::json& j) { j["input"]["window_slices"] = 32; });
    FAIL() << "a window no longer than twice the overlap was accepted";
  } catch (const core::InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("window_slices"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load([](nlohmann::json& j) { j["input"]["kind"] = 3; }), core::InvalidInput);
}

// Feet-first-like storage (x and z axes reversed): the masks still move towards patient +z
// (superior), +x (left) and -y (anterior), in one window.
TEST(ContourVolume, ShortVolumeOneWindowMovesTheRightWay) {
  const Geometry g = ct_grid(40, {-1, 0, 0, 0, 1, 0, 0, 0, -1}, {90, -80, 30});
  const Region bright = box_in(g);
  const Image ct = synthetic_ct(g, bright);
  EXPECT_EQ(contour_and_check(ct, kCard, bright).windows, std::vector<std::string>{"z window 1/1"});
}

// 150 slices with 64-slice windows: four overlapping windows blended; the masks follow the
// same rule everywhere and equal those of one 160-slice window.
TEST(ContourVolume, LongVolumeSeveralWindowsAgreeAcrossSeams) {
  const Geometry g = ct_grid(150, core::kIdentity3, {-90, -100, -200});
  const Region bright = staircase_of(g);
  const Image ct = synthetic_ct(g, bright);
  test::TempDir t;
  const std::string small =
      card_with(t, [](nlohmann::json& j) { j["input"]["window_slices"] = 64; });
  const Contoured windowed = contour_and_check(ct, small, bright);
  EXPECT_EQ(windowed.windows, (std::vector<std::string>{"z window 1/4", "z window 2/4",
                                                        "z window 3/4", "z window 4/4"}));
  const Contoured whole = contour_and_check(ct, kCard, bright);
  EXPECT_EQ(whole.windows, std::vector<std::string>{"z window 1/1"});
  // The blend is a weighted mean: the probabilities stay those of the single window (the
  // fixture's are 0.982 inside) but for the windows' edge slices, which weigh little.
  ASSERT_EQ(windowed.confidence.size(), whole.confidence.size());
  for (std::size_t s = 0; s < whole.confidence.size(); ++s) {
    EXPECT_GT(whole.confidence[s], 0.98);
    EXPECT_NEAR(windowed.confidence[s], whole.confidence[s], 2e-3) << s;
  }
}

// A volume network behind a slices card gets 4-D stacks: the exception its own code raises
// comes out as a one-line InvalidInput.
TEST(ContourVolume, VolumeNetworkBehindASlicesCardIsRejected) {
  test::TempDir t;
  const std::string card = card_with(t, [](nlohmann::json& j) {
    j["input"]["kind"] = "slices";
    j["input"]["context_slices_each_side"] = 0;
  });
  const Geometry g = ct_grid(40, core::kIdentity3, {0, 0, 0});
  const Image ct = synthetic_ct(g, box_in(g));
  try {
    contouring::contour(ct, contouring::Model(card));
    FAIL() << "a 4-D input reached a 3-D network";
  } catch (const core::InvalidInput& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("expected input [1, 1, X, Y, Z]"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}
