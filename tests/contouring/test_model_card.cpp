#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "isoline/contouring/contour.h"
#include "isoline/contouring/model.h"
#include "isoline/core/error.h"
#include "tests/test_util.h"

using namespace isoline;

namespace {
// The shipped card with `post` as its post_processing, written into `t` and read back.
contouring::ModelCard card_with(const nlohmann::json& post, const test::TempDir& t) {
  const auto shipped = contouring::load_model_card(contouring::default_model_card_path());
  nlohmann::json j;
  std::ifstream(shipped.card_path) >> j;
  j["file"] = shipped.model_path;
  j["post_processing"] = post;
  std::ofstream(t.file("card.json")) << j.dump();
  return contouring::load_model_card(t.file("card.json"));
}
}  // namespace

TEST(ModelCard, ShippedCardIsComplete) {
  auto c = contouring::load_model_card(contouring::default_model_card_path());
  EXPECT_EQ(c.structures.size(), 10u);
  EXPECT_EQ(c.structures[6], "Mandible");
  EXPECT_GT(c.spacing[0], 0);
  EXPECT_EQ(c.channels(), 2 * c.context + 1);
  EXPECT_TRUE(std::ifstream(c.model_path).good()) << c.model_path;
  EXPECT_TRUE(c.expected.count("Brainstem"));
}

TEST(ModelCard, ErrorsNameTheFile) {
  test::TempDir t;
  try {
    contouring::load_model_card(t.file("missing.json"));
    FAIL();
  } catch (const core::IoError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.json"), std::string::npos);
  }
  std::ofstream(t.file("bad.json")) << "{\"structures\": []";
  EXPECT_THROW(contouring::load_model_card(t.file("bad.json")), core::InvalidInput);
  std::ofstream(t.file("nofields.json")) << "{\"structures\": [\"A\"]}";
  EXPECT_THROW(contouring::load_model_card(t.file("nofields.json")), core::InvalidInput);
}

TEST(ModelCard, BoneRefinementIsReadAndChecked) {
  const auto shipped = contouring::load_model_card(contouring::default_model_card_path());
  nlohmann::json j;
  std::ifstream(shipped.card_path) >> j;
  j["file"] = shipped.model_path;  // absolute: the copy lives elsewhere
  test::TempDir t;
  auto load_with = [&](const nlohmann::json& post) {
    j["post_processing"] = post;
    std::ofstream(t.file("card.json")) << j.dump();
    return contouring::load_model_card(t.file("card.json"));
  };
  auto c = load_with({{"Mandible", {{"bone_min_hu", 120}, {"bone_margin_mm", 3}}}});
  ASSERT_EQ(c.bone_refinement.count("Mandible"), 1u);
  EXPECT_EQ(c.bone_refinement.at("Mandible").min_hu, 120);
  EXPECT_EQ(c.bone_refinement.at("Mandible").margin_mm, 3);
  EXPECT_EQ(load_with(nlohmann::json::object()).bone_refinement.size(), 0u);
  try {
    load_with({{"Liver", {{"bone_min_hu", 120}}}});
    FAIL() << "a structure the model does not provide was accepted";
  } catch (const core::InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("Liver"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("card.json"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_with({{"Mandible", {{"bone_min_hu", 120}, {"bone_margin_mm", -1}}}}),
               core::InvalidInput);
}

TEST(ModelCard, ExtentTrimIsReadAndChecked) {
  test::TempDir t;
  auto load_with = [&](const nlohmann::json& post) { return card_with(post, t); };
  auto c = load_with({{"Larynx", {{"trim_inferior_mm", 12.5}, {"trim_superior_mm", 5}}},
                      {"Esophagus", {{"trim_inferior_mm", 7.5}}},
                      {"Mandible", {{"bone_min_hu", 100}, {"trim_superior_mm", 2.5}}}});
  ASSERT_EQ(c.extent_trim.size(), 3u);
  EXPECT_EQ(c.extent_trim.at("Larynx").inferior_mm, 12.5);
  EXPECT_EQ(c.extent_trim.at("Larynx").superior_mm, 5);
  EXPECT_EQ(c.extent_trim.at("Esophagus").superior_mm, 0);
  EXPECT_EQ(c.extent_trim.at("Mandible").superior_mm, 2.5);
  EXPECT_EQ(c.bone_refinement.count("Mandible"), 1u);  // both on one structure
  EXPECT_EQ(c.bone_refinement.count("Larynx"), 0u);
  try {
    load_with({{"Larynx", {{"trim_inferior_mm", -5}}}});
    FAIL() << "a negative trim was accepted";
  } catch (const core::InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("Larynx"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("card.json"), std::string::npos) << e.what();
  }
  try {
    load_with({{"Larynx", {{"trim_superor_mm", 5}}}});  // a typo is not silently ignored
    FAIL() << "an unknown post-processing entry was accepted";
  } catch (const core::InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("trim_superor_mm"), std::string::npos) << e.what();
  }
}

TEST(ModelCard, PerStructureThresholdIsReadAndChecked) {
  test::TempDir t;
  auto load_with = [&](const nlohmann::json& post) { return card_with(post, t); };
  auto c = load_with({{"Esophagus", {{"threshold", 0.35}}}, {"Larynx", {{"threshold", 0.6}, {"trim_superior_mm", 5}}}});
  EXPECT_EQ(c.threshold_of("Esophagus"), 0.35);
  EXPECT_EQ(c.threshold_of("Larynx"), 0.6);
  EXPECT_EQ(c.threshold_of("Brainstem"), c.threshold);  // the card's global cut
  EXPECT_EQ(c.extent_trim.count("Larynx"), 1u);
  for (double bad : {0.0, 1.0, -0.2}) {
    try {
      load_with({{"Esophagus", {{"threshold", bad}}}});
      FAIL() << "threshold " << bad << " was accepted";
    } catch (const core::InvalidInput& e) {
      EXPECT_NE(std::string(e.what()).find("Esophagus"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("threshold"), std::string::npos) << e.what();
    }
  }
}

// quality_flags: the cuts of the "low confidence" and "in pieces" flags; a card without the
// entry keeps 0.75 and no "in pieces" flag; unknown entries and values outside 0..1 are refused.
TEST(ModelCard, QualityFlagCutsAreReadAndChecked) {
  test::TempDir t;
  const auto shipped = contouring::load_model_card(contouring::default_model_card_path());
  EXPECT_GT(shipped.low_confidence, 0.75);  // chosen by choose_quality_flags.py
  EXPECT_GT(shipped.min_kept_fraction, 0.0);
  auto load_with = [&](const nlohmann::json* flags) {
    nlohmann::json j;
    std::ifstream(shipped.card_path) >> j;
    j["file"] = shipped.model_path;
    if (flags)
      j["quality_flags"] = *flags;
    else
      j.erase("quality_flags");
    std::ofstream(t.file("card.json")) << j.dump();
    return contouring::load_model_card(t.file("card.json"));
  };
  auto c = load_with(nullptr);
  EXPECT_EQ(c.low_confidence, 0.75);
  EXPECT_EQ(c.min_kept_fraction, 0.0);
  nlohmann::json ok = {{"low_confidence_below", 0.8}, {"min_kept_fraction", 0.6}, {"source", "a test"}};
  c = load_with(&ok);
  EXPECT_EQ(c.low_confidence, 0.8);
  EXPECT_EQ(c.min_kept_fraction, 0.6);
  for (const auto& bad : {nlohmann::json{{"low_confidence", 0.8}}, nlohmann::json{{"min_kept_fraction", 1.5}},
                          nlohmann::json{{"low_confidence_below", -0.1}}}) {
    try {
      load_with(&bad);
      FAIL() << bad.dump() << " was accepted";
    } catch (const core::InvalidInput& e) {
      EXPECT_NE(std::string(e.what()).find("quality_flags"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("card.json"), std::string::npos) << e.what();
    }
  }
}

// `isoline run --device cuda` on a machine whose LibTorch is CPU-only (Debian's): the network
// falls back to the CPU with a note, the plan and dose keep CUDA; `isoline contour --device
// cuda` still fails (Model's DeviceError, test Contour.RejectsBadInput).
TEST(Contour, NetworkDeviceFallsBackToTheCpuOnlyWhereLibTorchLacksCuda) {
  std::string note;
  EXPECT_EQ(contouring::network_device(core::Device::CPU, &note), core::Device::CPU);
  EXPECT_TRUE(note.empty());
  const core::Device d = contouring::network_device(core::Device::CUDA, &note);
  if (contouring::cuda_available()) {
    EXPECT_EQ(d, core::Device::CUDA);
    EXPECT_TRUE(note.empty());
  } else {
    EXPECT_EQ(d, core::Device::CPU);
    EXPECT_NE(note.find("LibTorch"), std::string::npos) << note;
  }
}

TEST(Contour, RejectsBadInput) {
  core::Geometry g;
  g.size = {8, 8, 8};
  EXPECT_THROW(contouring::contour(core::Image()), core::InvalidInput);
  core::Image mask(g, core::PixelType::UInt8);
  EXPECT_THROW(contouring::contour(mask), core::InvalidInput);
  core::Image air(g, core::PixelType::Int16);
  for (std::size_t v = 0; v < air.num_voxels(); ++v) air.data<std::int16_t>()[v] = -1000;
  EXPECT_THROW(contouring::contour(air), core::InvalidInput);  // no body
  contouring::ContourOptions o;
  o.structures = {"Liver"};
  EXPECT_THROW(contouring::contour(air, o), core::InvalidInput);
  contouring::ContourOptions cuda;
  cuda.device = core::Device::CUDA;
  try {
    contouring::contour(air, cuda);
  } catch (const core::DeviceError& e) {
    EXPECT_NE(std::string(e.what()).find("CUDA"), std::string::npos);
  } catch (const core::InvalidInput&) {
    // a CUDA-enabled LibTorch gets past the device check and fails on the empty body
  }
}
