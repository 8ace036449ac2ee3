// Geometry round trips through NIfTI / NRRD / MetaImage, including flipped and permuted
// direction matrices, and clear errors for bad files.
#include <cmath>
#include <cstring>
#include <fstream>

#include <gtest/gtest.h>

#include "isoline/core/error.h"
#include "isoline/core/io.h"
#include "tests/test_util.h"

using namespace isoline::core;

namespace {

Image ramp(const Geometry& g, PixelType t) {
  Image img(g, PixelType::Float32);
  float* p = img.data<float>();
  for (std::size_t n = 0; n < img.num_voxels(); ++n) p[n] = static_cast<float>((n * 7) % 250);
  return t == PixelType::Float32 ? img : img.cast(t);
}

void expect_same_geometry(const Geometry& a, const Geometry& b) {
  EXPECT_EQ(a.size, b.size);
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(a.spacing[i], b.spacing[i], 1e-6) << "spacing " << i;
    EXPECT_NEAR(a.origin[i], b.origin[i], 1e-4) << "origin " << i;
  }
  for (int i = 0; i < 9; ++i) EXPECT_NEAR(a.direction[i], b.direction[i], 1e-6) << "direction " << i;
}

struct Case {
  const char* name;
  Mat3 direction;
};

// Direction matrices as stored by scanners and TPSs: identity (HFS axial), a flipped
// slice axis (reversed slice order), flipped rows and columns (FFS / prone), permuted axes
// (sagittal / coronal acquisitions) and a permutation with a flip.
const Case kCases[] = {
    {"identity", {1, 0, 0, 0, 1, 0, 0, 0, 1}},
    {"flip_k", {1, 0, 0, 0, 1, 0, 0, 0, -1}},
    {"flip_ij", {-1, 0, 0, 0, -1, 0, 0, 0, 1}},
    {"permuted", {0, 0, 1, 1, 0, 0, 0, 1, 0}},
    {"permuted_flipped", {0, 1, 0, 0, 0, -1, -1, 0, 0}},
};

}  // namespace

class IoRoundTrip : public ::testing::TestWithParam<std::tuple<int, std::string>> {};

TEST_P(IoRoundTrip, KeepsGeometryAndPixels) {
  const Case& c = kCases[std::get<0>(GetParam())];
  const std::string ext = std::get<1>(GetParam());
  Geometry g;
  g.size = {17, 11, 7};
  g.spacing = {0.9765625, 1.25, 2.5};
  g.origin = {-250.5, 112.25, -37.75};
  g.direction = c.direction;
  isoline::test::TempDir dir;
  for (PixelType t : {PixelType::UInt8, PixelType::Int16, PixelType::Float32}) {
    SCOPED_TRACE(std::string(c.name) + ext + " " + to_string(t));
    Image img = ramp(g, t);
    const std::string path = dir.file(std::string("img_") + to_string(t) + ext);
    write_image(img, path);
    Image back = read_image(path);
    EXPECT_EQ(back.pixel_type(), t);
    expect_same_geometry(back.geometry(), g);
    ASSERT_EQ(back.byte_size(), img.byte_size());
    EXPECT_EQ(std::memcmp(back.raw(), img.raw(), img.byte_size()), 0);
    // Same physical point maps to the same voxel.
    Vec3 w = g.index_to_world({3, 4, 5});
    Vec3 ijk = back.geometry().world_to_index(w);
    EXPECT_NEAR(ijk[0], 3, 1e-6);
    EXPECT_NEAR(ijk[1], 4, 1e-6);
    EXPECT_NEAR(ijk[2], 5, 1e-6);
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, IoRoundTrip,
                         ::testing::Combine(::testing::Range(0, 5),
                                            ::testing::Values(".nii.gz", ".nii", ".nrrd", ".mha")));

TEST(Io, ReadAsConverts) {
  Geometry g;
  g.size = {4, 4, 4};
  isoline::test::TempDir dir;
  write_image(ramp(g, PixelType::Int16), dir.file("a.nii.gz"));
  Image f = read_image(dir.file("a.nii.gz"), PixelType::Float32);
  EXPECT_EQ(f.pixel_type(), PixelType::Float32);
  EXPECT_FLOAT_EQ(f.data<float>()[1], 7.f);
}

TEST(Io, MissingFileNamesTheFile) {
  try {
    read_image("/nonexistent/ct.nii.gz");
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/ct.nii.gz"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos);
  }
}

TEST(Io, GarbageFileIsIoError) {
  isoline::test::TempDir dir;
  const std::string p = dir.file("junk.nii.gz");
  std::ofstream(p) << "this is not an image at all";
  EXPECT_THROW(read_image(p), IoError);
  const std::string t = dir.file("notes.txt");
  std::ofstream(t) << "plain text";
  EXPECT_THROW(read_image(t), IoError);
}

TEST(Io, TruncatedFileIsIoError) {
  Geometry g;
  g.size = {32, 32, 32};
  isoline::test::TempDir dir;
  const std::string p = dir.file("full.nii");
  write_image(ramp(g, PixelType::Int16), p);
  std::filesystem::resize_file(p, std::filesystem::file_size(p) / 2);
  EXPECT_THROW(read_image(p), IoError);
  const std::string gz = dir.file("full.nii.gz");
  write_image(ramp(g, PixelType::Int16), gz);
  std::filesystem::resize_file(gz, std::filesystem::file_size(gz) / 2);
  EXPECT_THROW(read_image(gz), IoError);
}

// A full disk or a file size limit while an image is written. ITK's writers report it on stderr
// only (NIfTI: "** ERROR: NWAD"), or not at all when the last buffer fails at close (NRRD,
// MetaImage): write_image returned and a short file took the target's name, exit 0. Now: an
// IoError naming the file and "File too large", the older file under the name kept, no temporary.
TEST(Io, WriteImageThatRunsOutOfSpaceIsAnErrorAndKeepsTheOldFile) {
  Geometry g;
  g.size = {48, 48, 24};  // 110 KB of int16 raw, about 40 KB compressed
  isoline::test::TempDir dir;
  const Image img = ramp(g, PixelType::Int16);
  for (const char* ext : {".nii.gz", ".nii", ".nrrd", ".mha"}) {
    const std::string p = dir.file(std::string("ct") + ext);
    std::ofstream(p) << "previous";
    std::uintmax_t full = 0;
    {
      write_image(img, dir.file(std::string("ref") + ext));
      full = std::filesystem::file_size(dir.file(std::string("ref") + ext));
    }
    // Short of the whole file by a little (the last buffer) and by a lot.
    for (const std::uintmax_t limit : {full - 100, full / 3, std::uintmax_t(0)}) {
      try {
        isoline::test::FileSizeLimit lim(limit);
        write_image(img, p);
        ADD_FAILURE() << ext << ": no error at a limit of " << limit << " of " << full << " bytes";
      } catch (const IoError& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("write image: " + p + ": cannot write: File too large"), std::string::npos)
            << m;
        EXPECT_EQ(m.find(".tmp-"), std::string::npos) << m;
      }
      EXPECT_EQ(isoline::test::slurp(p), "previous") << ext << " limit " << limit;
      EXPECT_TRUE(isoline::test::temporaries_in(dir.str()).empty()) << ext << " limit " << limit;
    }
  }
}

TEST(Io, WriteUnknownExtensionOrMissingDirectory) {
  Geometry g;
  g.size = {2, 2, 2};
  Image img(g, PixelType::UInt8);
  EXPECT_THROW(write_image(img, "/tmp/x.png"), InvalidInput);
  EXPECT_THROW(write_image(img, "/nonexistent-isoline/x.nii.gz"), IoError);
}

TEST(Io, MaskDirRoundTrip) {
  Geometry g;
  g.size = {8, 8, 8};
  StructureSet set;
  Image a(g, PixelType::UInt8), b(g, PixelType::UInt8);
  a.at<std::uint8_t>(1, 1, 1) = 1;
  b.at<std::uint8_t>(2, 2, 2) = 1;
  set.add("PTV70", a);
  set.add("Brainstem", b);
  isoline::test::TempDir dir;
  write_mask_dir(set, dir.str());
  StructureSet back = read_mask_dir(dir.str());
  EXPECT_EQ(back.size(), 2u);
  EXPECT_EQ(back.get("PTV70").mask.count_nonzero(), 1u);
  StructureSet only = read_mask_dir(dir.str(), {"Brainstem", "Esophagus"});
  EXPECT_EQ(only.names(), std::vector<std::string>{"Brainstem"});
}

TEST(Io, MaskDirSkipsACaseFoldersImagesAndRefusesNonMasks) {
  Geometry g;
  g.size = {8, 8, 8};
  isoline::test::TempDir dir;
  Image m(g, PixelType::UInt8), ct(g, PixelType::Int16), dose(g, PixelType::Float32);
  m.at<std::uint8_t>(1, 1, 1) = 1;
  ct.at<std::int16_t>(1, 1, 1) = -1000;
  dose.at<float>(1, 1, 1) = 70.f;
  write_image(m, dir.file("Brainstem.nii.gz"));
  write_image(m, dir.file("possible_dose_mask.nii.gz"));
  write_image(ct, dir.file("ct.nii.gz"));
  write_image(dose, dir.file("dose.nii.gz"));
  // An OpenKBP or phantom case folder: the CT, dose and possible-dose mask are not structures.
  EXPECT_EQ(read_mask_dir(dir.str()).names(), std::vector<std::string>{"Brainstem"});
  // Any other image with values beyond 0..1 is refused, naming the file.
  write_image(dose, dir.file("PTV70.nii.gz"));
  try {
    read_mask_dir(dir.str());
    FAIL() << "a 70 Gy image was read as a mask";
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("PTV70.nii.gz: not a structure mask (float values 0 to 70"), std::string::npos)
        << e.what();
  }
  Image float_mask(g, PixelType::Float32);  // 0/1 stored as float is a mask
  float_mask.at<float>(2, 2, 2) = 1.f;
  write_image(float_mask, dir.file("PTV70.nii.gz"));
  EXPECT_EQ(read_mask_dir(dir.str()).get("PTV70").mask.count_nonzero(), 1u);
  Image m255(g, PixelType::UInt8);  // 0/255 (as image tools save masks) is a mask
  m255.at<std::uint8_t>(3, 3, 3) = 255;
  m255.at<std::uint8_t>(3, 4, 3) = 255;
  write_image(m255, dir.file("PTV70.nii.gz"));
  EXPECT_EQ(read_mask_dir(dir.str()).get("PTV70").mask.count_nonzero(), 2u);
  m255.at<std::uint8_t>(5, 5, 5) = 3;  // three values: a label map
  write_image(m255, dir.file("PTV70.nii.gz"));
  EXPECT_THROW(read_mask_dir(dir.str()), InvalidInput);
}
