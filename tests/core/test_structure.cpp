#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "isoline/core/error.h"
#include "isoline/core/io.h"
#include "isoline/core/structure.h"
#include "isoline/core/text.h"

using namespace isoline::core;

namespace {
Geometry grid() {
  Geometry g;
  g.size = {10, 10, 10};
  g.spacing = {2, 2, 2.5};
  return g;
}
Image cube(int lo, int hi) {
  Image m(grid(), PixelType::UInt8);
  for (int k = lo; k < hi; ++k)
    for (int j = lo; j < hi; ++j)
      for (int i = lo; i < hi; ++i) m.at<std::uint8_t>(i, j, k) = 1;
  return m;
}
}  // namespace

TEST(Structure, TypesFromNamesAndDicomStrings) {
  EXPECT_EQ(guess_structure_type("PTV70"), StructureType::PTV);
  EXPECT_EQ(guess_structure_type("ctv_high"), StructureType::CTV);
  EXPECT_EQ(guess_structure_type("Body"), StructureType::External);
  EXPECT_EQ(guess_structure_type("Brainstem"), StructureType::Organ);
  EXPECT_STREQ(to_dicom_string(StructureType::External), "EXTERNAL");
  EXPECT_EQ(structure_type_from_string("gtv"), StructureType::GTV);
  EXPECT_EQ(structure_type_from_string("MARKER"), StructureType::Other);
}

TEST(Structure, VolumeInCc) {
  Structure s;
  s.mask = cube(2, 6);  // 64 voxels of 10 mm^3
  EXPECT_DOUBLE_EQ(s.volume_cc(), 0.64);
}

TEST(StructureSet, AddFindRemove) {
  StructureSet set;
  set.add("PTV70", cube(2, 6));
  set.add("SpinalCord", cube(0, 2));
  EXPECT_EQ(set.size(), 2u);
  ASSERT_NE(set.find("PTV70"), nullptr);
  EXPECT_EQ(set.find("PTV70")->type, StructureType::PTV);
  EXPECT_EQ(set.find("Missing"), nullptr);
  EXPECT_THROW(set.get("Missing"), InvalidInput);
  EXPECT_THROW(set.add("PTV70", cube(1, 3)), InvalidInput);
  EXPECT_TRUE(set.remove("PTV70"));
  EXPECT_FALSE(set.remove("PTV70"));
  EXPECT_EQ(set.names(), std::vector<std::string>{"SpinalCord"});
}

TEST(StructureSet, RejectsMasksOnAnotherGridOrType) {
  StructureSet set(grid());
  Geometry other = grid();
  other.origin[0] = 5;
  Image m(other, PixelType::UInt8);
  EXPECT_THROW(set.add("A", m), InvalidInput);
  Image f(grid(), PixelType::Float32);
  EXPECT_THROW(set.add("B", f), InvalidInput);
  EXPECT_THROW(set.add("", cube(0, 1)), InvalidInput);
}

TEST(StructureSet, DistinctDefaultColours) {
  EXPECT_FALSE(default_color("PTV70") == default_color("SpinalCord"));
  // The head-and-neck structures drawn together must be told apart at a glance.
  const char* hn[] = {"Brainstem", "SpinalCord", "RightParotid", "LeftParotid",
                      "Esophagus", "Larynx",     "Mandible",     "PTV70",
                      "PTV63",     "PTV56",      "Body"};
  for (const char* a : hn)
    for (const char* b : hn) {
      if (std::string(a) >= b) continue;
      const Color ca = default_color(a), cb = default_color(b);
      const double d = std::hypot(double(ca.r) - cb.r, double(ca.g) - cb.g, double(ca.b) - cb.b);
      EXPECT_GE(d, 80.0) << a << " and " << b << " look alike";
    }
  EXPECT_FALSE(default_color("x", 0) == default_color("y", 1));
  // Any other name (GTV, CTV, ...) at any position: unlike every named one.
  for (std::size_t i = 0; i < 24; ++i) {
    const Color c = default_color("GTV", i);
    for (const char* a : hn) {
      const Color n = default_color(a);
      EXPECT_GE(std::hypot(double(c.r) - n.r, double(c.g) - n.g, double(c.b) - n.b), 80.0) << "GTV #" << i << " vs " << a;
    }
  }
}

TEST(Structure, PrescriptionFromName) {
  using isoline::core::prescription_from_name;
  EXPECT_DOUBLE_EQ(prescription_from_name("PTV70"), 70.0);
  EXPECT_DOUBLE_EQ(prescription_from_name("PTV_56"), 56.0);
  EXPECT_DOUBLE_EQ(prescription_from_name("PTV_59.4"), 59.4);
  EXPECT_DOUBLE_EQ(prescription_from_name("CTV 50.4Gy"), 50.4);
  EXPECT_DOUBLE_EQ(prescription_from_name("PTV7000"), 70.0);  // cGy
  EXPECT_DOUBLE_EQ(prescription_from_name("PTV70_1"), 70.0);  // first number only
  EXPECT_DOUBLE_EQ(prescription_from_name("PTV63."), 63.0);
  EXPECT_EQ(prescription_from_name("PTV1"), 0.0);  // an index, not a dose
  EXPECT_EQ(prescription_from_name("PTV"), 0.0);
  EXPECT_EQ(prescription_from_name(""), 0.0);
  EXPECT_EQ(prescription_from_name("PTV500"), 0.0);  // neither Gy nor cGy
}

TEST(Structure, IsTargetByTypeOrName) {
  using isoline::core::Structure;
  using isoline::core::StructureType;
  auto s = [](const char* name, StructureType t) {
    Structure x;
    x.name = name;
    x.type = t;
    return x;
  };
  EXPECT_TRUE(s("Boost", StructureType::PTV).is_target());
  EXPECT_TRUE(s("GTVp", StructureType::Organ).is_target());   // named like one
  EXPECT_TRUE(s("PTV70", StructureType::Organ).is_target());  // a TPS export typed ORGAN
  EXPECT_TRUE(s("CTV_high", StructureType::Other).is_target());
  EXPECT_FALSE(s("LeftParotid", StructureType::Organ).is_target());
  EXPECT_FALSE(s("BODY", StructureType::External).is_target());
}

TEST(Text, XmlEscapeCoversTextAndAttributes) {
  EXPECT_EQ(xml_escape("PTV<70> & \"GTV\" 'x'"), "PTV&lt;70&gt; &amp; &quot;GTV&quot; &#39;x&#39;");
  EXPECT_EQ(xml_escape("plain"), "plain");
}

TEST(Text, LowerCaseAndSuffixWithoutCase) {
  EXPECT_EQ(to_lower("BrainStem M\xC3\x9CLLER"), "brainstem m\xC3\x9Cller");  // ASCII letters only
  EXPECT_TRUE(ends_with_nocase("out/RS.DCM", ".dcm"));
  EXPECT_TRUE(ends_with_nocase("ct.Nii.Gz", ".nii.gz"));
  EXPECT_FALSE(ends_with_nocase("rs.dcmx", ".dcm"));
  EXPECT_FALSE(ends_with_nocase("dcm", ".dcm"));
  EXPECT_FALSE(ends_with("RS.DCM", ".dcm"));  // ends_with keeps case
  EXPECT_TRUE(isoline::core::is_not_mask_name("Possible_Dose_Mask"));
  EXPECT_FALSE(isoline::core::is_not_mask_name("PTV70"));
}

TEST(Text, Utf8ValidityLengthAndPrefixByCharacters) {
  const std::string mueller = "M\xC3\xBCller";     // Müller: 6 characters, 7 bytes
  const std::string cjk = "\xE5\xB7\xA6\xE5\xB7\xA6";  // two 3-byte characters
  EXPECT_TRUE(valid_utf8(mueller));
  EXPECT_TRUE(valid_utf8(cjk));
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_FALSE(valid_utf8("M\xFCller"));             // a Latin-1 byte
  EXPECT_FALSE(valid_utf8("ab\xC3"));                // a sequence cut at the end
  EXPECT_FALSE(valid_utf8("\xE5\xB7" "a"));          // a sequence cut in the middle
  EXPECT_FALSE(valid_utf8("\xF8\x80\x80\x80\x80"));  // no 5-byte sequences
  // As JSON libraries check it (RFC 3629), or a name accepted here breaks every later JSON answer.
  EXPECT_FALSE(valid_utf8("\xC0\xAF"));          // an overlong "/"
  EXPECT_FALSE(valid_utf8("\xE0\x80\xAF"));      // an overlong "/", 3 bytes
  EXPECT_FALSE(valid_utf8("\xED\xA0\x80"));      // a UTF-16 surrogate
  EXPECT_FALSE(valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_TRUE(valid_utf8("\xF4\x8F\xBF\xBF"));   // U+10FFFF
  EXPECT_TRUE(valid_utf8("\xED\x9F\xBF"));       // U+D7FF
  EXPECT_EQ(utf8_length(mueller), 6u);
  EXPECT_EQ(utf8_length(cjk), 2u);
  EXPECT_EQ(utf8_prefix(mueller, 2), "M\xC3\xBC");  // never half of the ü
  EXPECT_EQ(utf8_prefix(cjk, 1), "\xE5\xB7\xA6");
  EXPECT_EQ(utf8_prefix(cjk, 5), cjk);
  EXPECT_EQ(utf8_prefix(mueller, 0), "");
}
