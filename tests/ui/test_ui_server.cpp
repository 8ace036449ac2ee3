// Review server: security (token, paths), edit validation, versioning and conflicts,
// crash safety (SIGKILL during a save), approval output, dose re-estimation flow.
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sqlite3.h>
#include <thread>
#include <zlib.h>

#include "isoline/core/dose_style.h"
#include "isoline/core/io.h"
#include "isoline/core/mask_ops.h"
#include "isoline/rtstruct/ct_series.h"
#include "isoline/rtstruct/rtstruct.h"
#include "isoline/ui/review_db.h"
#include "isoline/ui/server.h"
#include "tests/test_util.h"
#include "tests/rtstruct/rt_test_util.h"
#include "tests/ui/ui_fixture.h"

using nlohmann::json;
using namespace isoline;

namespace {

struct Running {
  std::unique_ptr<ui::ReviewServer> server;
  std::thread thread;
  int port = 0;
  std::string token;

  explicit Running(ui::ServerOptions o) {
    o.ui_dir = "";
    server = std::make_unique<ui::ReviewServer>(o);
    port = server->bind();
    token = server->token();
    thread = std::thread([this] { server->serve(); });
    httplib::Client c("127.0.0.1", port);
    for (int i = 0; i < 100; ++i) {
      if (c.Get("/api/case")) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  ~Running() {
    server->stop();
    thread.join();
  }
  httplib::Headers auth() const { return {{"X-Isoline-Token", token}}; }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(60, 0);
    return c;
  }
};

class UiServer : public ::testing::Test {
 protected:
  void SetUp() override {
    test::write_ui_case(dir.str());
    ui::ServerOptions o;
    o.case_dir = dir.str();
    srv = std::make_unique<Running>(o);
  }
  std::int64_t id_of(const std::string& name) { return srv->server->db().find(name)->id; }
  std::int64_t version_of(const std::string& name) { return srv->server->db().find(name)->latest.version; }
  httplib::Result post_edit(const std::string& name, const std::string& body) {
    auto c = srv->client();
    return c.Post(("/api/structures/" + std::to_string(id_of(name)) + "/edit").c_str(), srv->auth(), body,
                  "application/json");
  }
  // The draft tests' requests, as reviewer "Dr Smith": PUT of `m` (as NIfTI, via dir/file) to
  // structure `id`'s draft with `query`; the same expecting 200 and giving the parsed answer;
  // the voxels of that reviewer's draft of `tab` (-1: none).
  httplib::Result put_draft(std::int64_t id, const std::string& query, const core::Image& m, const std::string& file);
  json put_draft_ok(std::int64_t id, const std::string& query, const core::Image& m, const std::string& file);
  std::int64_t draft_voxels(std::int64_t id, const std::string& tab);
  test::TempDir dir;
  std::unique_ptr<Running> srv;
};

// `m` with a line drawn at the front (x 2..8) or on the side (y 2..11): the draft tests' strokes.
core::Image with_front_line(const core::Image& m) {
  core::Image out = m.clone();
  for (int i = 2; i < 9; ++i) out.data<std::uint8_t>()[out.geometry().offset(i, 3, 4)] = 1;
  return out;
}
core::Image with_side_line(const core::Image& m) {
  core::Image out = m.clone();
  for (int j = 2; j < 12; ++j) out.data<std::uint8_t>()[out.geometry().offset(40, j, 20)] = 1;
  return out;
}

TEST_F(UiServer, ImportsAutomaticStructuresAsVersionOne) {
  auto& db = srv->server->db();
  auto list = db.structures();
  ASSERT_EQ(list.size(), 4u);
  for (const auto& s : list) {
    EXPECT_EQ(s.latest.version, 1);
    EXPECT_EQ(s.origin, "auto");
    EXPECT_GT(s.latest.voxels, 0);
  }
  EXPECT_EQ(db.find("CTV")->type, "CTV");
  EXPECT_NE(db.find("CTV")->description.find("low confidence"), std::string::npos);
  EXPECT_EQ(db.find("PTV")->color, (core::Color{255, 64, 64}));
  // The stored mask is the file's mask.
  core::Image ptv = core::read_image(dir.file("masks/PTV.nii.gz"), core::PixelType::UInt8);
  core::Image stored = db.mask(db.find("PTV")->id, 1, test::ui_grid());
  ASSERT_EQ(ptv.byte_size(), stored.byte_size());
  EXPECT_EQ(std::memcmp(ptv.raw(), stored.raw(), ptv.byte_size()), 0);
}

// The quality flags of `isoline contour` / `isoline run` masks (masks/quality.json) reach the
// reviewer without a structures.json; a structures.json entry still overrides them.
TEST(UiServerCase, QualityFlagsOfTheMasksAreShown) {
  test::TempDir dir;
  test::write_ui_case(dir.str());
  std::ofstream(dir.file("masks/quality.json"))
      << R"({"model": "m", "model_version": "1", "in_scope": true, "warnings": [], "structures": {)"
      << R"("Cord": {"volume_cc": 0.5, "confidence": 0.8, "kept_fraction": 0.6, "flags": ["low confidence 0.80", "in pieces: 40 %"]},)"
      << R"("PTV": {"origin": "given", "source": "targets.dcm", "flags": []},)"
      << R"("CTV": {"volume_cc": 2, "confidence": 0.5, "kept_fraction": 1, "flags": ["from quality.json"]}}})";
  ui::ServerOptions o;
  o.case_dir = dir.str();
  Running srv(o);
  auto& db = srv.server->db();
  EXPECT_EQ(db.find("Cord")->description, "low confidence 0.80; in pieces: 40 %");
  EXPECT_EQ(db.find("PTV")->description, "");
  EXPECT_EQ(db.find("PTV")->origin, "given");  // the physician's (run --targets), not the model's
  EXPECT_EQ(db.find("Cord")->origin, "auto");
  EXPECT_NE(db.find("CTV")->description.find("low confidence"), std::string::npos)
      << "structures.json overrides: " << db.find("CTV")->description;
  auto r = srv.client().Get("/api/structures", srv.auth());
  ASSERT_TRUE(r);
  bool cord_flags = false;
  for (const auto& s : json::parse(r->body))
    if (s["name"] == "Cord") cord_flags = s["flags"].size() == 2 && s["flags"][1] == "in pieces: 40 %";
  EXPECT_TRUE(cord_flags) << r->body;
  // Approved: the given PTV is MANUAL and not in the untouched automatic RT-STRUCT.
  auto a = srv.client().Post("/api/approve", srv.auth(), R"({"reviewer": "Dr Test"})", "application/json");
  ASSERT_TRUE(a);
  ASSERT_EQ(a->status, 200) << a->body;
  const json aj = json::parse(a->body);
  std::map<std::string, std::string> alg;
  for (const auto& roi : rtstruct::read_rtstruct(aj["rtstruct"].get<std::string>()).rois) alg[roi.name] = roi.generation_algorithm;
  EXPECT_EQ(alg["PTV"], "MANUAL");
  EXPECT_EQ(alg["Cord"], "AUTOMATIC");
  bool ptv_in_auto = false;
  for (const auto& roi : rtstruct::read_rtstruct(aj["rtstruct_automatic"].get<std::string>()).rois)
    ptv_in_auto = ptv_in_auto || roi.name == "PTV";
  EXPECT_FALSE(ptv_in_auto);
  // The record says what the reviewer edited (the client lists it): an untouched given
  // target is MANUAL but not edited.
  auto entry = [](const json& rec, const std::string& name) {
    for (const auto& s : rec["structures"])
      if (s["name"] == name) return s;
    return json();
  };
  EXPECT_EQ(entry(aj, "PTV")["edited"], false) << aj.dump();
  EXPECT_EQ(entry(aj, "PTV")["voxels_changed_from_given"], 0);
  EXPECT_EQ(entry(aj, "Cord")["edited"], false);
  const std::string ptv_id = std::to_string(db.find("PTV")->id);
  ASSERT_EQ(srv.client().Post(("/api/structures/" + ptv_id + "/edit").c_str(), srv.auth(),
                              R"({"op":"margin","mode":"grow","mm":2,"base_version":1})", "application/json")->status,
            200);
  a = srv.client().Post("/api/approve", srv.auth(), R"({"reviewer": "Dr Test"})", "application/json");
  ASSERT_EQ(a->status, 200) << a->body;
  const json edited = entry(json::parse(a->body), "PTV");
  EXPECT_EQ(edited["edited"], true) << edited.dump();
  EXPECT_GT(edited["voxels_changed_from_given"].get<int>(), 0);
  EXPECT_EQ(edited["generation_algorithm"], "MANUAL");
}

TEST_F(UiServer, MissingOrWrongTokenIs401) {
  auto c = srv->client();
  for (const char* p : {"/", "/api/case", "/api/structures", "/api/volume/ct", "/index.html", "/api/history"}) {
    auto r = c.Get(p);
    ASSERT_TRUE(r) << p;
    EXPECT_EQ(r->status, 401) << p;
    r = c.Get(p, httplib::Headers{{"X-Isoline-Token", "0123456789abcdef0123456789abcdef"}});
    EXPECT_EQ(r->status, 401) << p;
    r = c.Get((std::string(p) + "?token=" + srv->token + "x").c_str());
    EXPECT_EQ(r->status, 401) << p;
  }
  // Writes are refused too, and change nothing.
  const auto before = srv->server->db().version_count();
  auto r = c.Post(("/api/structures/" + std::to_string(id_of("PTV")) + "/edit").c_str(),
                  R"({"op":"margin","mm":5,"base_version":1})", "application/json");
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(srv->server->db().version_count(), before);
  // A wrong cookie is refused; the right one (set by the first page load) works.
  const std::string cookie = "isoline_token_" + std::to_string(srv->port) + "=";
  EXPECT_EQ(c.Get("/api/case", httplib::Headers{{"Cookie", cookie + "nope"}})->status, 401);
  EXPECT_EQ(c.Get("/api/case", httplib::Headers{{"Cookie", "x=1; " + cookie + srv->token}})->status, 200);
  EXPECT_EQ(c.Get("/api/case", httplib::Headers{{"Cookie", "isoline_token_1=" + srv->token}})->status, 401)
      << "another port's cookie";
  auto first = c.Get(("/?token=" + srv->token).c_str());
  EXPECT_NE(first->get_header_value("Set-Cookie").find("HttpOnly"), std::string::npos);
  // The right token works, as header or query parameter.
  EXPECT_EQ(c.Get("/api/case", srv->auth())->status, 200);
  EXPECT_EQ(c.Get(("/api/case?token=" + srv->token).c_str())->status, 200);
}

TEST_F(UiServer, DotDotPathsAre404) {
  auto c = srv->client();
  // Files that exist beside and above the case directory must never be reachable.
  for (const char* p : {"/../ct.nii.gz", "/../../etc/passwd", "/%2e%2e/ct.nii.gz", "/%2E%2E/%2E%2E/etc/passwd",
                        "/api/../api/case", "/..%2fct.nii.gz", "/.%2e/review/review.sqlite", "/index.html/../../x",
                        "/api/volume/../../ct.nii.gz"}) {
    auto r = c.Get(p, srv->auth());
    ASSERT_TRUE(r) << p;
    EXPECT_EQ(r->status, 404) << p;
  }
  // Case files are not served by name either (only through the API).
  for (const char* p : {"/ct.nii.gz", "/masks/PTV.nii.gz", "/review/review.sqlite", "/structures.json"}) {
    auto r = c.Get(p, srv->auth());
    EXPECT_EQ(r->status, 404) << p;
  }
}

TEST_F(UiServer, MalformedEditsAre400AndChangeNothing) {
  auto& db = srv->server->db();
  const auto before = db.version_count();
  const auto hist = db.history();
  const std::vector<std::string> bad = {
      "not json",
      "[1,2,3]",
      R"({"base_version":1})",
      R"({"op":"explode","base_version":1})",
      R"({"op":"margin","mm":-5,"base_version":1})",
      R"({"op":"margin","mm":"5","base_version":1})",
      R"({"op":"margin","mm":1e9,"base_version":1})",
      R"({"op":"margin","mm":0,"base_version":1})",
      R"({"op":"margin","mode":"sideways","mm":5,"base_version":1})",
      R"({"op":"margin","mm":5})",
      R"({"op":"margin","mm":5,"base_version":"one"})",
      R"({"op":"boolean","operation":"union","base_version":1})",
      R"({"op":"boolean","operation":"xor","other":"CTV","base_version":1})",
      R"({"op":"boolean","operation":"union","other":"Nope","base_version":1})",
      R"({"op":"smooth","sigma_mm":-1,"base_version":1})",
      R"({"op":"remove_islands","min_cc":null,"base_version":1})",
  };
  for (const auto& b : bad) {
    auto r = post_edit("PTV", b);
    ASSERT_TRUE(r) << b;
    EXPECT_EQ(r->status, 400) << b << " -> " << r->body;
    auto j = json::parse(r->body);
    ASSERT_TRUE(j.contains("error")) << b;
    EXPECT_FALSE(j["error"].get<std::string>().empty());
  }
  auto c = srv->client();
  const std::string id = std::to_string(id_of("PTV"));
  // Mask uploads: garbage, truncated NIfTI, wrong grid.
  auto r = c.Put(("/api/structures/" + id + "/mask?base_version=1").c_str(), srv->auth(), std::string(1000, 'x'),
                 "application/octet-stream");
  EXPECT_EQ(r->status, 400) << r->body;
  std::string nii;
  {
    core::Geometry g = test::ui_grid();
    g.size = {10, 10, 10};
    core::Image small(g, core::PixelType::UInt8);
    core::write_image(small, dir.file("small.nii"));
    std::ifstream f(dir.file("small.nii"), std::ios::binary);
    nii.assign(std::istreambuf_iterator<char>(f), {});
  }
  r = c.Put(("/api/structures/" + id + "/mask?base_version=1").c_str(), srv->auth(), nii, "application/octet-stream");
  EXPECT_EQ(r->status, 400) << r->body;
  r = c.Put(("/api/structures/" + id + "/mask?base_version=1").c_str(), srv->auth(), nii.substr(0, 400),
            "application/octet-stream");
  EXPECT_EQ(r->status, 400) << r->body;
  r = c.Put(("/api/structures/" + id + "/mask").c_str(), srv->auth(), nii, "application/octet-stream");
  EXPECT_EQ(r->status, 400) << r->body;
  // Structure management.
  r = c.Post("/api/structures", srv->auth(), R"({"name":""})", "application/json");
  EXPECT_EQ(r->status, 400);
  r = c.Post("/api/structures", srv->auth(), R"({"name":"CTV"})", "application/json");
  EXPECT_EQ(r->status, 400);
  r = c.Post("/api/structures", srv->auth(), R"({"name":"a/b"})", "application/json");
  EXPECT_EQ(r->status, 400);
  r = c.Post(("/api/structures/" + id + "/rename").c_str(), srv->auth(), R"({"base_version":1})", "application/json");
  EXPECT_EQ(r->status, 400);
  r = c.Post(("/api/structures/" + id + "/rename").c_str(), srv->auth(), R"({"base_version":1,"name":"CTV"})",
             "application/json");
  EXPECT_EQ(r->status, 400);
  r = c.Post("/api/approve", srv->auth(), R"({"reviewer":"x","status":"MAYBE"})", "application/json");
  EXPECT_EQ(r->status, 400);

  EXPECT_EQ(db.version_count(), before);
  EXPECT_EQ(db.history().size(), hist.size());
  EXPECT_EQ(db.structures().size(), 4u);
  EXPECT_EQ(version_of("PTV"), 1);
}

TEST_F(UiServer, MarginIsCoreExpandAndANewVersion) {
  auto r = post_edit("CTV", R"({"op":"margin","mode":"grow","mm":5,"base_version":1,"author":"dr-a"})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = json::parse(r->body);
  EXPECT_EQ(j["version"], 2);
  EXPECT_EQ(j["author"], "dr-a");
  EXPECT_EQ(j["action"], "margin +5 mm");
  auto& db = srv->server->db();
  const auto id = id_of("CTV");
  core::Image v1 = db.mask(id, 1, test::ui_grid());
  core::Image v2 = db.mask(id, 2, test::ui_grid());
  core::Image expect = core::expand(v1, core::Margin::uniform(5));
  ASSERT_EQ(v2.byte_size(), expect.byte_size());
  EXPECT_EQ(std::memcmp(v2.raw(), expect.raw(), v2.byte_size()), 0);
  EXPECT_GT(v2.count_nonzero(), v1.count_nonzero());
  // Per-direction shrink, boolean, smoothing, islands: each one new version.
  r = post_edit("CTV", R"({"op":"margin","mode":"shrink","left":2,"right":0,"anterior":0,"posterior":0,"superior":3,"inferior":0,"base_version":2})");
  ASSERT_EQ(r->status, 200) << r->body;
  core::Margin m;
  m.left = 2;
  m.superior = 3;
  core::Image v3 = db.mask(id, 3, test::ui_grid());
  core::Image e3 = core::shrink(v2, m);
  EXPECT_EQ(std::memcmp(v3.raw(), e3.raw(), v3.byte_size()), 0);
  r = post_edit("CTV", R"({"op":"boolean","operation":"union","other":"Cord","base_version":3})");
  ASSERT_EQ(r->status, 200) << r->body;
  r = post_edit("CTV", R"({"op":"smooth","sigma_mm":1.5,"base_version":4})");
  ASSERT_EQ(r->status, 200) << r->body;
  r = post_edit("CTV", R"({"op":"remove_islands","min_cc":1.0,"base_version":5})");
  ASSERT_EQ(r->status, 200) << r->body;
  auto hist = db.history(id);
  ASSERT_EQ(hist.size(), 6u);
  EXPECT_EQ(hist[3].action, "union Cord");
  // Old versions are still there, unchanged.
  core::Image again = db.mask(id, 1, test::ui_grid());
  EXPECT_EQ(std::memcmp(again.raw(), v1.raw(), v1.byte_size()), 0);
}

TEST_F(UiServer, StaleBaseVersionIs409Conflict) {
  // Browser A and browser B both loaded PTV version 1.
  auto a = post_edit("PTV", R"({"op":"margin","mm":2,"base_version":1,"author":"A"})");
  ASSERT_EQ(a->status, 200) << a->body;
  auto b = post_edit("PTV", R"({"op":"margin","mm":4,"base_version":1,"author":"B"})");
  ASSERT_EQ(b->status, 409) << b->body;
  auto j = json::parse(b->body);
  EXPECT_TRUE(j["conflict"].get<bool>());
  EXPECT_EQ(j["latest_version"], 2);
  EXPECT_NE(j["error"].get<std::string>().find("conflict"), std::string::npos);
  EXPECT_EQ(version_of("PTV"), 2);
  EXPECT_EQ(srv->server->db().find("PTV")->latest.author, "A");
  // Uploading a painted mask from the stale version conflicts too.
  auto c = srv->client();
  auto m = c.Get(("/api/structures/" + std::to_string(id_of("PTV")) + "/mask.nii?version=1").c_str(), srv->auth());
  ASSERT_EQ(m->status, 200);
  auto r = c.Put(("/api/structures/" + std::to_string(id_of("PTV")) + "/mask?base_version=1").c_str(), srv->auth(),
                 m->body, "application/octet-stream");
  EXPECT_EQ(r->status, 409);
  r = c.Put(("/api/structures/" + std::to_string(id_of("PTV")) + "/mask?base_version=2&action=brush").c_str(),
            srv->auth(), m->body, "application/octet-stream");
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(version_of("PTV"), 3);
}

TEST_F(UiServer, MaskRoundTripAndHistoryAfterRestart) {
  auto c = srv->client();
  const auto id = id_of("Cord");
  auto m = c.Get(("/api/structures/" + std::to_string(id) + "/mask.nii").c_str(), srv->auth());
  ASSERT_EQ(m->status, 200);
  std::ofstream(dir.file("cord.nii"), std::ios::binary) << m->body;
  core::Image back = core::read_image(dir.file("cord.nii"), core::PixelType::UInt8);
  EXPECT_TRUE(back.geometry().same_grid(test::ui_grid()));
  core::Image orig = core::read_image(dir.file("masks/Cord.nii.gz"), core::PixelType::UInt8);
  EXPECT_EQ(std::memcmp(back.raw(), orig.raw(), orig.byte_size()), 0);
  // Paint: add a voxel block, save it as a new version.
  auto* d = back.data<std::uint8_t>();
  const auto g = test::ui_grid();
  for (int i = 2; i < 5; ++i) d[g.offset(i, 3, 4)] = 1;
  core::write_image(back, dir.file("cord2.nii"));
  std::ifstream f(dir.file("cord2.nii"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), {});
  auto r = c.Put(("/api/structures/" + std::to_string(id) + "/mask?base_version=1&action=brush").c_str(), srv->auth(),
                 bytes, "application/octet-stream");
  ASSERT_EQ(r->status, 200) << r->body;
  // Rename and create.
  r = c.Post(("/api/structures/" + std::to_string(id) + "/rename").c_str(), srv->auth(),
             R"({"base_version":2,"name":"SpinalCord"})", "application/json");
  ASSERT_EQ(r->status, 200) << r->body;
  r = c.Post("/api/structures", srv->auth(), R"({"name":"PRV cord","copy_of":"SpinalCord"})", "application/json");
  ASSERT_EQ(r->status, 201) << r->body;
  srv.reset();
  // A new server on the same case sees the latest versions and the whole history.
  ui::ServerOptions o;
  o.case_dir = dir.str();
  srv = std::make_unique<Running>(o);
  auto& db = srv->server->db();
  auto s = db.find("SpinalCord");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->latest.version, 3);
  EXPECT_FALSE(db.find("Cord"));
  auto h = db.history(s->id);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h[1].action, "brush");
  EXPECT_EQ(h[1].voxels, static_cast<std::int64_t>(orig.count_nonzero()) + 3);
  EXPECT_TRUE(db.find("PRV cord"));
  EXPECT_EQ(db.structures().size(), 5u);
  auto list = json::parse(srv->client().Get("/api/history", srv->auth())->body);
  EXPECT_EQ(list.size(), db.history().size());
}

TEST_F(UiServer, DeleteKeepsHistory) {
  auto c = srv->client();
  const auto id = id_of("Cord");
  auto r = c.Delete(("/api/structures/" + std::to_string(id)).c_str(), srv->auth(), R"({"base_version":1})",
                    "application/json");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_FALSE(srv->server->db().find("Cord"));
  EXPECT_EQ(srv->server->db().history(id).size(), 2u);
  EXPECT_GT(srv->server->db().mask(id, 1, test::ui_grid()).count_nonzero(), 0u);
  // ... and a deleted structure can be brought back, with its last mask and name.
  EXPECT_EQ(json::parse(c.Get("/api/structures/deleted", srv->auth())->body).size(), 1u);
  r = c.Post(("/api/structures/" + std::to_string(id) + "/restore").c_str(), srv->auth(), R"({"base_version":2})",
             "application/json");
  ASSERT_EQ(r->status, 200) << r->body;
  ASSERT_TRUE(srv->server->db().find("Cord"));
  EXPECT_EQ(srv->server->db().find("Cord")->latest.version, 3);
  EXPECT_EQ(srv->server->db().mask(id, 0, test::ui_grid()).count_nonzero(),
            srv->server->db().mask(id, 1, test::ui_grid()).count_nonzero());
  // Restoring a live structure, or over a name taken meanwhile, is refused.
  r = c.Post(("/api/structures/" + std::to_string(id) + "/restore").c_str(), srv->auth(), R"({"base_version":3})",
             "application/json");
  EXPECT_EQ(r->status, 400) << r->body;
  ASSERT_EQ(c.Delete(("/api/structures/" + std::to_string(id)).c_str(), srv->auth(), R"({"base_version":3})",
                     "application/json")->status, 200);
  ASSERT_EQ(c.Post("/api/structures", srv->auth(), R"({"name":"Cord"})", "application/json")->status, 201);
  r = c.Post(("/api/structures/" + std::to_string(id) + "/restore").c_str(), srv->auth(), R"({"base_version":4})",
             "application/json");
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("rename it first"), std::string::npos) << r->body;
  // Odd input the client cannot send is refused too.
  for (const char* body : {R"({"name":"   "})", R"({"name":" PTV2"})", R"({"name":"X","color":[300,-5,0]})",
                           R"({"name":"X","type":"NOT_A_TYPE"})"})
    EXPECT_EQ(c.Post("/api/structures", srv->auth(), body, "application/json")->status, 400) << body;
  EXPECT_EQ(c.Post("/api/structures", srv->auth(),
                   "{\"name\":\"\u5de6\u5de6\u5de6\u5de6\u5de6\u5de6\u5de6\u5de6\u5de6\u5de6\u5de6\u5de6\u5de6\u5de6\u5de6\u5de6\u5de6\u5de6\u5de6\u5de6\u5de6\u5de6\"}",
                   "application/json")->status,
            201) << "22 CJK characters are 22 characters, not 66 bytes";
  const auto ptv = id_of("PTV");
  EXPECT_EQ(c.Post(("/api/structures/" + std::to_string(ptv) + "/revert").c_str(), srv->auth(),
                   R"({"base_version":1,"version":-7})", "application/json")->status, 400);
}

TEST_F(UiServer, ApproveWritesRtStructWithReviewAttributes) {
  ASSERT_EQ(post_edit("PTV", R"({"op":"margin","mm":2,"base_version":1})")->status, 200);
  auto c = srv->client();
  ASSERT_EQ(c.Post("/api/structures", srv->auth(), R"({"name":"Boost","copy_of":"CTV"})", "application/json")->status, 201);
  // Approving a stale view is a conflict.
  json stale = {{"reviewer", "Dr Who"}, {"versions", {{std::to_string(id_of("PTV")), 1}}}};
  auto refused = c.Post("/api/approve", srv->auth(), stale.dump(), "application/json");
  EXPECT_EQ(refused->status, 409);
  // It says that the approval was refused, and why (not "save structure", audit 18).
  EXPECT_EQ(json::parse(refused->body)["error"].get<std::string>().rfind("approve: PTV: conflict: changed by ", 0), 0u)
      << refused->body;
  auto r = c.Post("/api/approve", srv->auth(), R"({"reviewer":"Dr Who"})", "application/json");
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = json::parse(r->body);
  ASSERT_TRUE(j["rtstruct"].is_string()) << r->body;
  std::map<std::string, std::string> alg;
  for (const auto& s : j["structures"]) alg[s["name"]] = s["generation_algorithm"];
  EXPECT_EQ(alg["PTV"], "SEMIAUTOMATIC");
  EXPECT_EQ(alg["CTV"], "AUTOMATIC");
  EXPECT_EQ(alg["Boost"], "MANUAL");
  auto rs = rtstruct::read_rtstruct(j["rtstruct"]);
  std::map<std::string, std::string> stored;
  for (const auto& roi : rs.rois) stored[roi.name] = roi.generation_algorithm;
  EXPECT_EQ(stored["PTV"], "SEMIAUTOMATIC");
  EXPECT_EQ(stored["CTV"], "AUTOMATIC");
  EXPECT_EQ(stored["Boost"], "MANUAL");
  // Approved PTV contours rasterise back to the approved mask.
  auto set = rtstruct::rasterize(rs, test::ui_grid());
  core::Image ptv = srv->server->db().mask(id_of("PTV"), 0, test::ui_grid());
  core::Image got = set.get("PTV").mask;
  std::size_t diff = 0;
  for (std::size_t n = 0; n < ptv.num_voxels(); ++n)
    diff += (ptv.data<std::uint8_t>()[n] != 0) != (got.data<std::uint8_t>()[n] != 0);
  EXPECT_EQ(diff, 0u);
  auto ra = rtstruct::read_rtstruct(j["rtstruct_automatic"]);
  EXPECT_EQ(ra.rois.size(), 4u);  // the automatic ones, untouched
  auto auto_ptv = rtstruct::rasterize(ra, test::ui_grid()).get("PTV").mask;
  core::Image v1 = srv->server->db().mask(id_of("PTV"), 1, test::ui_grid());
  EXPECT_EQ(std::memcmp(auto_ptv.raw(), v1.raw(), v1.byte_size()), 0);
  // Review attributes, read with the DICOM dump tool when available.
  auto dump = test::run_command("dcmdump +P 300e,0002 +P 300e,0008 '" + j["rtstruct"].get<std::string>() + "'");
  if (dump.exit_code == 0) {
    EXPECT_NE(dump.output.find("APPROVED"), std::string::npos) << dump.output;
    EXPECT_NE(dump.output.find("Dr Who"), std::string::npos) << dump.output;
  }
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(j["directory"].get<std::string>()) / "approval.json"));
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(j["directory"].get<std::string>()) / "masks/PTV.nii.gz"));
}

namespace {
std::string nifti_bytes_of(const core::Image& m, const std::string& file) {
  core::write_image(m, file);
  std::ifstream f(file, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), {});
}
}  // namespace

// Found by the session-12 audit: each of these lost edits or wrote a wrong result before.
TEST_F(UiServer, SavesWithDotsInTheLabelAndUtf8AuthorsNeverBrickTheCase) {
  auto c = srv->client();
  const auto id = id_of("Cord");
  core::Image m = srv->server->db().mask(id, 1, test::ui_grid());
  m.data<std::uint8_t>()[test::ui_grid().offset(2, 3, 4)] = 1;
  const std::string body = nifti_bytes_of(m, dir.file("m.nii"));
  const std::string path = "/api/structures/" + std::to_string(id) + "/mask?base_version=1&action=brush%205%20mm%20HU%20-100..200";
  // The threshold brush's label has ".." in the query: a save, not a path traversal.
  httplib::Headers h = srv->auth();
  h.emplace("X-Isoline-Author", "M%C3%BCller");  // percent-encoded UTF-8, as the client sends it
  auto r = c.Put(path.c_str(), h, body, "application/octet-stream");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(srv->server->db().find("Cord")->latest.author, "M\xC3\xBC" "ller");
  EXPECT_EQ(srv->server->db().find("Cord")->latest.action, "brush 5 mm HU -100..200");
  // A raw Latin-1 byte (what a browser sends for an unencoded header) is a 400, and nothing is stored.
  httplib::Headers bad = srv->auth();
  bad.emplace("X-Isoline-Author", "M\xFCller");
  r = c.Put(("/api/structures/" + std::to_string(id) + "/mask?base_version=2&action=brush").c_str(), bad, body,
            "application/octet-stream");
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_EQ(srv->server->db().find("Cord")->latest.version, 2);
  EXPECT_EQ(c.Get("/api/case", srv->auth())->status, 200);
  EXPECT_EQ(c.Get("/api/structures", srv->auth())->status, 200);
  // A mask upload with the right size but another header (shifted) is refused, not resampled.
  core::Image shifted = m;
  core::Geometry g = shifted.geometry();
  g.origin[0] += 50;
  shifted.set_geometry(g);
  r = c.Put(("/api/structures/" + std::to_string(id) + "/mask?base_version=2&action=x").c_str(), srv->auth(),
            nifti_bytes_of(shifted, dir.file("s.nii")), "application/octet-stream");
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("not on the CT grid"), std::string::npos) << r->body;
}

TEST_F(UiServer, TheTokenSurvivesARestartAndThePortIsNotShared) {
  const std::string token = srv->token;
  const int port = srv->port;
  // A second server on the same port must fail to bind (no SO_REUSEPORT split of requests).
  {
    ui::ServerOptions o;
    o.case_dir = dir.str();
    o.port = port;
    ui::ReviewServer second(o);
    EXPECT_THROW(second.bind(), core::IoError);
  }
  srv.reset();
  ui::ServerOptions o;
  o.case_dir = dir.str();
  srv = std::make_unique<Running>(o);
  EXPECT_EQ(srv->token, token) << "a restarted server accepts the tabs still open on it";
  EXPECT_EQ((std::filesystem::status(dir.file("review/token")).permissions() & std::filesystem::perms::group_read),
            std::filesystem::perms::none);
}

// A tab left open with unsaved paint reaches the restarted server only at the same address:
// without --port the server binds the last one's port again (review/port) when it is free.
TEST_F(UiServer, ARestartedServerBindsThePortOfTheLastOneWhenFree) {
  const int port = srv->port;
  auto recorded = [&] {
    std::ifstream f(dir.file("review/port"));
    int p = 0;
    f >> p;
    return p;
  };
  EXPECT_EQ(recorded(), port);
  srv.reset();
  ui::ServerOptions o;
  o.case_dir = dir.str();
  srv = std::make_unique<Running>(o);
  EXPECT_EQ(srv->port, port) << "the restarted server is not where the open tabs look for it";
  EXPECT_EQ(srv->client().Get("/api/case", srv->auth())->status, 200);
  // Port taken (here by the running server): another free one, recorded for the next start.
  Running second(o);
  EXPECT_NE(second.port, port);
  EXPECT_EQ(recorded(), second.port);
}

TEST_F(UiServer, ApprovalKeepsDeletedAutomaticStructuresInRsAutoAndRefusesUnseenOnes) {
  auto c = srv->client();
  ASSERT_EQ(c.Delete(("/api/structures/" + std::to_string(id_of("Cord"))).c_str(), srv->auth(), R"({"base_version":1})",
                     "application/json")->status, 200);
  json seen = json::object();  // what the reviewer's list shows after the delete
  for (const auto& s : srv->server->db().structures()) seen[std::to_string(s.id)] = s.latest.version;
  // Made meanwhile elsewhere (another tab, a script): not approved unseen.
  ASSERT_EQ(c.Post("/api/structures", srv->auth(), R"({"name":"Unseen","copy_of":"CTV"})", "application/json")->status, 201);
  auto r = c.Post("/api/approve", srv->auth(), json{{"reviewer", "Dr A"}, {"versions", seen}}.dump(), "application/json");
  EXPECT_EQ(r->status, 409) << r->body;
  EXPECT_NE(r->body.find("Unseen"), std::string::npos) << r->body;
  seen[std::to_string(id_of("Unseen"))] = 1;
  r = c.Post("/api/approve", srv->auth(), json{{"reviewer", "Dr \xC3\x84rztin\\Smith"}, {"versions", seen}}.dump(),
             "application/json");
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = json::parse(r->body);
  auto ra = rtstruct::read_rtstruct(j["rtstruct_automatic"]);
  std::set<std::string> auto_names;
  for (const auto& roi : ra.rois) auto_names.insert(roi.name);
  EXPECT_EQ(auto_names.count("Cord"), 1u) << "the deleted automatic structure is in RS_auto";
  auto rs = rtstruct::read_rtstruct(j["rtstruct"]);
  for (const auto& roi : rs.rois) EXPECT_NE(roi.name, "Cord") << "and not approved";
  // The reviewer's name is one value in the file's character set (ISO_IR 100 here).
  EXPECT_EQ(test::dciodvfy_errors(j["rtstruct"].get<std::string>()), "");
}

TEST_F(UiServer, AnApprovalWithoutItsRtStructIsAnErrorAndLeavesNothing) {
  std::filesystem::create_directories(dir.file("dicom"));  // a case whose DICOM CT folder is empty
  auto r = srv->client().Post("/api/approve", srv->auth(), R"({"reviewer":"Dr A"})", "application/json");
  EXPECT_GE(r->status, 400) << r->body;
  std::error_code ec;
  EXPECT_TRUE(!std::filesystem::exists(dir.file("review/approved"), ec) ||
              std::filesystem::is_empty(dir.file("review/approved"), ec));
}

// Audit 18, defect 1: the approval carries the name the reviewer gave, never a default;
// a name that is blank after trimming is a 400 (approval and changes), nothing is written.
TEST_F(UiServer, ApprovalAndChangesNeedARealName) {
  auto c = srv->client();
  auto approved = [&] {
    std::error_code ec;
    return std::filesystem::exists(dir.file("review/approved"), ec) && !std::filesystem::is_empty(dir.file("review/approved"), ec);
  };
  for (const char* body : {R"({"reviewer":"   "})", R"({"reviewer":""})", R"({})", R"({"reviewer":" \t"})",
                           R"({"reviewer":7})"}) {
    auto r = c.Post("/api/approve", srv->auth(), body, "application/json");
    EXPECT_EQ(r->status, 400) << body << " " << r->body;
    EXPECT_NE(r->body.find("reviewer"), std::string::npos) << r->body;
  }
  // (serve without --author: no default name to fall back on; a blank header is no name)
  httplib::Headers blank = srv->auth();
  blank.emplace("X-Isoline-Author", "%20%20");
  EXPECT_EQ(c.Post("/api/approve", blank, "{}", "application/json")->status, 400);
  EXPECT_FALSE(approved());
  EXPECT_EQ(json::parse(c.Get("/api/case", srv->auth())->body)["author"], "") << "no placeholder name pre-filled";
  // A change whose author is blank is refused and stores nothing.
  auto e = post_edit("PTV", R"({"op":"margin","mm":2,"base_version":1,"author":"  "})");
  EXPECT_EQ(e->status, 400) << e->body;
  EXPECT_NE(e->body.find("author"), std::string::npos) << e->body;
  EXPECT_EQ(version_of("PTV"), 1);
  // A name given is trimmed; a script's change without any name is "unnamed", not "reviewer".
  ASSERT_EQ(post_edit("PTV", R"({"op":"margin","mm":2,"base_version":1,"author":" Dr A "})")->status, 200);
  EXPECT_EQ(srv->server->db().find("PTV")->latest.author, "Dr A");
  ASSERT_EQ(post_edit("PTV", R"({"op":"margin","mm":2,"base_version":2})")->status, 200);
  EXPECT_EQ(srv->server->db().find("PTV")->latest.author, "unnamed");
  auto r = c.Post("/api/approve", srv->auth(), R"({"reviewer":"  Dr Smith "})", "application/json");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["reviewer"], "Dr Smith");
}

// Audit 18, defect 10: quality flags describe the automatic contour. A reviewer marks them
// checked (stored with who and when, in the history and the approval record and the
// approved ROI's description); once the contour is edited they say "edited since vN by NAME";
// a contour restored to version 1's is the automatic one again.
TEST_F(UiServer, QualityFlagsCanBeCheckedAndReferToTheAutomaticContour) {
  auto c = srv->client();
  const std::string ctv = std::to_string(id_of("CTV"));
  auto get = [&](const std::string& name) {
    for (const auto& s : json::parse(c.Get("/api/structures", srv->auth())->body))
      if (s["name"] == name) return s;
    return json();
  };
  auto flags = [&](const std::string& body) {
    return c.Post(("/api/structures/" + ctv + "/flags").c_str(), srv->auth(), body, "application/json");
  };
  EXPECT_EQ(get("CTV")["flags_state"], "open");
  EXPECT_EQ(get("PTV")["flags_state"], "none");
  // Who checked: a name is required (serve without --author); a stale version is a 409;
  // a structure without flags has nothing to check.
  EXPECT_EQ(flags(R"({"version":1})")->status, 400);
  EXPECT_EQ(flags(R"({"version":1,"author":"  "})")->status, 400);
  EXPECT_EQ(flags(R"({"version":1,"checked":"yes","author":"Dr Smith"})")->status, 400);
  EXPECT_EQ(flags(R"({"version":7,"author":"Dr Smith"})")->status, 409);
  EXPECT_EQ(c.Post(("/api/structures/" + std::to_string(id_of("PTV")) + "/flags").c_str(), srv->auth(),
                   R"({"version":1,"author":"Dr Smith"})", "application/json")->status,
            400);
  EXPECT_TRUE(srv->server->db().flag_checks().empty());
  auto r = flags(R"({"version":1,"author":" Dr Smith "})");
  ASSERT_EQ(r->status, 200) << r->body;
  json s = json::parse(r->body);
  EXPECT_EQ(s["flags_state"], "checked");
  EXPECT_EQ(s["flags_check"]["author"], "Dr Smith");
  EXPECT_EQ(s["flags_check"]["version"], 1);
  EXPECT_FALSE(s["flags_check"]["time"].get<std::string>().empty());
  EXPECT_EQ(version_of("CTV"), 1) << "a check is not a new version of the contour";
  auto hist = json::parse(c.Get(("/api/flag_checks?structure=" + ctv).c_str(), srv->auth())->body);
  ASSERT_EQ(hist.size(), 1u);
  EXPECT_EQ(hist[0]["flags"], "low confidence 0.61; volume unusual");
  // Approved: the record and the approved ROI's description say who checked.
  auto entry = [](const json& rec, const std::string& name) {
    for (const auto& x : rec["structures"])
      if (x["name"] == name) return x;
    return json();
  };
  auto a = c.Post("/api/approve", srv->auth(), R"({"reviewer":"Dr Smith"})", "application/json");
  ASSERT_EQ(a->status, 200) << a->body;
  json rec = json::parse(a->body);
  EXPECT_EQ(entry(rec, "CTV")["quality_flags_review"], "checked") << rec.dump();
  EXPECT_EQ(entry(rec, "CTV")["quality_flags_check"]["by"], "Dr Smith");
  EXPECT_EQ(entry(rec, "CTV")["quality_flags"].size(), 2u);
  EXPECT_TRUE(rec["quality_flags_unchecked"].empty());
  EXPECT_FALSE(entry(rec, "PTV").contains("quality_flags"));
  {
    std::ifstream f(std::filesystem::path(rec["directory"].get<std::string>()) / "approval.json");
    const json onfile = json::parse(f);
    EXPECT_EQ(entry(onfile, "CTV")["quality_flags_check"]["by"], "Dr Smith");
  }
  auto dump = test::run_command("dcmdump +P 3006,0028 '" + rec["rtstruct"].get<std::string>() + "'");
  if (dump.exit_code == 0) {
    EXPECT_NE(dump.output.find("volume unusual [flags checked by Dr Smith"), std::string::npos) << dump.output;
  }
  // Edited by Dr B, then renamed: the flags are on the automatic contour, edited since v2
  // (the margin, not the rename); not "checked" any more.
  ASSERT_EQ(post_edit("CTV", R"({"op":"margin","mm":2,"base_version":1,"author":"Dr B"})")->status, 200);
  s = get("CTV");
  EXPECT_EQ(s["flags_state"], "edited") << s.dump();
  EXPECT_EQ(s["flags_edited_since"]["version"], 2);
  EXPECT_EQ(s["flags_edited_since"]["author"], "Dr B");
  EXPECT_EQ(s["flags_edited_since"]["action"], "margin +2 mm");
  ASSERT_EQ(c.Post(("/api/structures/" + ctv + "/rename").c_str(), srv->auth(),
                   R"({"name":"CTV1","base_version":2,"author":"Dr C"})", "application/json")->status,
            200);
  s = get("CTV1");
  EXPECT_EQ(s["flags_state"], "edited");
  EXPECT_EQ(s["flags_edited_since"]["version"], 2) << s.dump();
  a = c.Post("/api/approve", srv->auth(), R"({"reviewer":"Dr Smith"})", "application/json");
  ASSERT_EQ(a->status, 200) << a->body;
  EXPECT_EQ(entry(json::parse(a->body), "CTV1")["quality_flags_review"], "contour edited");
  // Restored to version 1: the automatic contour again, so the check holds again; then the
  // mark taken back: open, and the approval lists it as unchecked.
  ASSERT_EQ(c.Post(("/api/structures/" + ctv + "/revert").c_str(), srv->auth(),
                   R"({"version":1,"base_version":3,"author":"Dr C"})", "application/json")->status,
            200);
  EXPECT_EQ(get("CTV1")["flags_state"], "checked");
  ASSERT_EQ(flags(R"({"version":4,"checked":false,"author":"Dr C"})")->status, 200);
  s = get("CTV1");
  EXPECT_EQ(s["flags_state"], "open");
  EXPECT_EQ(s["flags_check"]["checked"], false);
  EXPECT_EQ(srv->server->db().flag_checks(id_of("CTV1")).size(), 2u);
  a = c.Post("/api/approve", srv->auth(), R"({"reviewer":"Dr Smith"})", "application/json");
  ASSERT_EQ(a->status, 200) << a->body;
  rec = json::parse(a->body);
  EXPECT_EQ(entry(rec, "CTV1")["quality_flags_review"], "unchecked");
  EXPECT_EQ(rec["quality_flags_unchecked"], json::array({"CTV1"}));
  dump = test::run_command("dcmdump +P 3006,0028 '" + rec["rtstruct"].get<std::string>() + "'");
  if (dump.exit_code == 0) {
    EXPECT_NE(dump.output.find("[flags not checked]"), std::string::npos) << dump.output;
  }
}

// Audit 18, defect 11: a tab polls /api/versions (latest version per structure, deleted
// ones too) to learn of other people's saves; a 409 lists the versions a save over them
// would drop from the live structure.
TEST_F(UiServer, VersionsForPollingAndConflictsNameWhatWouldBeDropped) {
  auto c = srv->client();
  ASSERT_EQ(post_edit("PTV", R"({"op":"margin","mm":1,"base_version":1,"author":"Dr B"})")->status, 200);
  ASSERT_EQ(post_edit("PTV", R"({"op":"smooth","sigma_mm":1,"base_version":2,"author":"Dr C"})")->status, 200);
  ASSERT_EQ(c.Delete(("/api/structures/" + std::to_string(id_of("Cord"))).c_str(), srv->auth(),
                     R"({"base_version":1,"author":"Dr C"})", "application/json")->status,
            200);
  auto v = c.Get("/api/versions", srv->auth());
  ASSERT_EQ(v->status, 200);
  std::map<std::string, json> by_name;
  const json polled = json::parse(v->body);
  for (const auto& s : polled["structures"]) by_name[s["name"]] = s;
  ASSERT_EQ(by_name.size(), 4u) << v->body;
  EXPECT_EQ(by_name["PTV"]["version"], 3);
  EXPECT_EQ(by_name["PTV"]["author"], "Dr C");
  EXPECT_EQ(by_name["CTV"]["version"], 1);
  EXPECT_EQ(by_name["Cord"]["deleted"], true);
  EXPECT_FALSE(by_name["PTV"].contains("flags")) << "the poll reads no masks and no flags";
  // A save from version 1 would drop versions 2 (Dr B) and 3 (Dr C) from the live PTV.
  auto check = [&](const httplib::Result& r) {
    ASSERT_EQ(r->status, 409) << r->body;
    const json j = json::parse(r->body);
    ASSERT_EQ(j["meanwhile"].size(), 2u) << r->body;
    EXPECT_EQ(j["meanwhile"][0]["version"], 2);
    EXPECT_EQ(j["meanwhile"][0]["author"], "Dr B");
    EXPECT_EQ(j["meanwhile"][0]["action"], "margin +1 mm");
    EXPECT_EQ(j["meanwhile"][1]["author"], "Dr C");
  };
  check(post_edit("PTV", R"({"op":"margin","mm":3,"base_version":1,"author":"Dr A"})"));
  auto m = c.Get(("/api/structures/" + std::to_string(id_of("PTV")) + "/mask.nii?version=1").c_str(), srv->auth());
  check(c.Put(("/api/structures/" + std::to_string(id_of("PTV")) + "/mask?base_version=1").c_str(), srv->auth(),
              m->body, "application/octet-stream"));
  // The database's own check (a save that lost the race) names the author and action too.
  try {
    srv->server->db().save_version(id_of("PTV"), 2, core::Image(), "Dr A", "brush");
    ADD_FAILURE() << "no conflict";
  } catch (const ui::Conflict& e) {
    EXPECT_NE(std::string(e.what()).find("by Dr C (smooth"), std::string::npos) << e.what();
    EXPECT_EQ(e.base_version, 2);
  }
  EXPECT_EQ(version_of("PTV"), 3);
}

// Server-side drafts: a reviewer's unsaved drawing is kept by the server (a closed or crashed
// tab loses nothing), one per structure and reviewer, never a version; saving the structure
// clears the author's draft, discarding too.
namespace {
httplib::Headers as_reviewer(const httplib::Headers& auth, const std::string& name) {
  httplib::Headers h = auth;
  h.emplace("X-Isoline-Author", name);
  return h;
}
}  // namespace

httplib::Result UiServer::put_draft(std::int64_t id, const std::string& query, const core::Image& m,
                                    const std::string& file) {
  auto c = srv->client();
  return c.Put(("/api/structures/" + std::to_string(id) + "/draft?" + query).c_str(),
               as_reviewer(srv->auth(), "Dr%20Smith"), nifti_bytes_of(m, dir.file(file)), "application/octet-stream");
}

json UiServer::put_draft_ok(std::int64_t id, const std::string& query, const core::Image& m, const std::string& file) {
  auto r = put_draft(id, query, m, file);
  EXPECT_TRUE(r);
  if (!r) return json();
  EXPECT_EQ(r->status, 200) << r->body;
  return json::parse(r->body, nullptr, false);
}

std::int64_t UiServer::draft_voxels(std::int64_t id, const std::string& tab) {
  auto d = srv->server->db().draft(id, "Dr Smith", tab);
  return d ? d->voxels : std::int64_t{-1};
}

TEST_F(UiServer, DraftsArePerReviewerNotVersionsAndSavingOrDiscardingClearsThem) {
  auto c = srv->client();
  auto& db = srv->server->db();
  const auto id = id_of("PTV");
  const std::string sid = std::to_string(id);
  const core::Image v1 = db.mask(id, 1, test::ui_grid());
  core::Image drawn = v1.clone();
  const auto g = test::ui_grid();
  for (int i = 2; i < 9; ++i) drawn.data<std::uint8_t>()[g.offset(i, 3, 4)] = 1;
  const std::string body = nifti_bytes_of(drawn, dir.file("draft.nii"));
  const auto versions_before = db.version_count();
  auto r = c.Put(("/api/structures/" + sid + "/draft?base_version=1&action=brush%205%20mm").c_str(),
                 as_reviewer(srv->auth(), "Dr%20Smith"), body, "application/octet-stream");
  ASSERT_EQ(r->status, 200) << r->body;
  json d = json::parse(r->body);
  EXPECT_EQ(d["reviewer"], "Dr Smith");
  EXPECT_EQ(d["base_version"], 1);
  EXPECT_EQ(d["action"], "brush 5 mm");
  EXPECT_EQ(d["name"], "PTV");
  EXPECT_EQ(d["voxels"].get<std::int64_t>(), static_cast<std::int64_t>(drawn.count_nonzero()));
  // Not a version: the live PTV is still version 1 with its mask, the history unchanged.
  EXPECT_EQ(db.version_count(), versions_before);
  EXPECT_EQ(version_of("PTV"), 1);
  EXPECT_EQ(db.history(id).size(), 1u);
  const core::Image live = db.mask(id, 0, g);
  EXPECT_EQ(std::memcmp(live.raw(), v1.raw(), v1.byte_size()), 0);
  for (const auto& st : json::parse(c.Get("/api/structures", srv->auth())->body))
    if (st["name"] == "PTV") {
      EXPECT_EQ(st["voxels"].get<std::int64_t>(), static_cast<std::int64_t>(v1.count_nonzero()));
    }
  // Read back: the list (no masks), the mask, the poll.
  auto list = json::parse(c.Get("/api/drafts", srv->auth())->body);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["structure_id"], id);
  EXPECT_EQ(list[0]["latest_version"], 1);
  auto m = c.Get(("/api/structures/" + sid + "/draft.nii?reviewer=Dr%20Smith").c_str(), srv->auth());
  ASSERT_EQ(m->status, 200) << m->body;
  std::ofstream(dir.file("back.nii"), std::ios::binary) << m->body;
  const core::Image back = core::read_image(dir.file("back.nii"), core::PixelType::UInt8);
  ASSERT_EQ(back.byte_size(), drawn.byte_size());
  EXPECT_EQ(std::memcmp(back.raw(), drawn.raw(), drawn.byte_size()), 0);
  EXPECT_EQ(json::parse(c.Get("/api/versions", srv->auth())->body)["drafts"].size(), 1u);
  // One per structure and reviewer: a second put replaces it; another reviewer has their own.
  drawn.data<std::uint8_t>()[g.offset(2, 5, 4)] = 1;
  ASSERT_EQ(c.Put(("/api/structures/" + sid + "/draft?base_version=1&action=brush").c_str(),
                  as_reviewer(srv->auth(), "Dr%20Smith"), nifti_bytes_of(drawn, dir.file("d2.nii")), "application/octet-stream")
                ->status,
            200);
  ASSERT_EQ(c.Put(("/api/structures/" + sid + "/draft?base_version=1&action=eraser").c_str(),
                  as_reviewer(srv->auth(), "Dr%20B"), nifti_bytes_of(v1, dir.file("d3.nii")), "application/octet-stream")
                ->status,
            200);
  ASSERT_EQ(db.drafts().size(), 2u);
  EXPECT_EQ(db.draft(id, "Dr Smith")->voxels, static_cast<std::int64_t>(drawn.count_nonzero()));
  EXPECT_EQ(json::parse(c.Get("/api/drafts?reviewer=Dr%20B", srv->auth())->body).size(), 1u);
  // A restarted server (a crash, a reboot) still has them.
  srv.reset();
  ui::ServerOptions o;
  o.case_dir = dir.str();
  srv = std::make_unique<Running>(o);
  auto c2 = srv->client();
  ASSERT_EQ(srv->server->db().drafts().size(), 2u);
  EXPECT_EQ(srv->server->db().draft(id, "Dr Smith")->base_version, 1);
  // Saving over it with keep_draft=1 (the client keeps a draft it has not restored) keeps it...
  r = c2.Put(("/api/structures/" + sid + "/mask?base_version=1&action=brush&keep_draft=1").c_str(),
            as_reviewer(srv->auth(), "Dr%20Smith"), nifti_bytes_of(v1, dir.file("s1.nii")), "application/octet-stream");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_TRUE(srv->server->db().draft(id, "Dr Smith"));
  // ... a plain save clears the author's draft (same transaction), not the other reviewer's.
  r = c2.Put(("/api/structures/" + sid + "/mask?base_version=2&action=brush").c_str(),
            as_reviewer(srv->auth(), "Dr%20Smith"), body, "application/octet-stream");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_FALSE(srv->server->db().draft(id, "Dr Smith"));
  EXPECT_TRUE(srv->server->db().draft(id, "Dr B"));
  // A save refused (409: stale base) leaves the draft.
  ASSERT_EQ(c2.Put(("/api/structures/" + sid + "/draft?base_version=3").c_str(), as_reviewer(srv->auth(), "Dr%20Smith"),
                  body, "application/octet-stream")->status,
            200);
  EXPECT_EQ(c2.Put(("/api/structures/" + sid + "/mask?base_version=1&action=brush").c_str(),
                  as_reviewer(srv->auth(), "Dr%20Smith"), body, "application/octet-stream")->status,
            409);
  EXPECT_TRUE(srv->server->db().draft(id, "Dr Smith"));
  // Discard: gone; a second discard says there was none.
  r = c2.Delete(("/api/structures/" + sid + "/draft").c_str(), as_reviewer(srv->auth(), "Dr%20B"));
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["discarded"], true);
  EXPECT_EQ(json::parse(c2.Delete(("/api/structures/" + sid + "/draft").c_str(), as_reviewer(srv->auth(), "Dr%20B"))->body)["discarded"],
            false);
  EXPECT_FALSE(srv->server->db().draft(id, "Dr B"));
  EXPECT_EQ(c2.Get(("/api/structures/" + sid + "/draft.nii?reviewer=Dr%20B").c_str(), srv->auth())->status, 404);
}

// Two draft requests of one tab (the timed one and the page-leave one) can reach the server
// out of order: the newer drawing stays ("stale" for the older); another tab keeps its own
// draft beside it; requests without a tab replace each other.
TEST_F(UiServer, AnOlderDraftOfTheSameTabDoesNotReplaceANewerOne) {
  auto c = srv->client();
  auto& db = srv->server->db();
  const auto id = id_of("PTV");
  const std::string sid = std::to_string(id);
  const auto g = test::ui_grid();
  const core::Image v1 = db.mask(id, 1, g);
  core::Image older = v1.clone(), newer = v1.clone();
  for (int i = 2; i < 5; ++i) older.data<std::uint8_t>()[g.offset(i, 3, 4)] = 1;
  for (int i = 2; i < 9; ++i) newer.data<std::uint8_t>()[g.offset(i, 3, 4)] = 1;
  const auto put = [&](const std::string& query, const core::Image& m, const std::string& name) {
    return put_draft_ok(id, "base_version=1&" + query, m, name);
  };
  const auto kept = [&](const std::string& tab = "t1") { return draft_voxels(id, tab); };
  const std::int64_t n_older = static_cast<std::int64_t>(older.count_nonzero());
  const std::int64_t n_newer = static_cast<std::int64_t>(newer.count_nonzero());
  ASSERT_NE(n_older, n_newer);
  EXPECT_FALSE(put("tab=t1&seq=7", newer, "a.nii").contains("stale"));
  json r = put("tab=t1&seq=6", older, "b.nii");  // arrives after the newer one
  EXPECT_EQ(r["stale"], true) << r;
  EXPECT_EQ(r["voxels"].get<std::int64_t>(), n_newer) << r;
  EXPECT_EQ(kept(), n_newer);
  EXPECT_EQ(put("tab=t1&seq=7", older, "c.nii")["stale"], true);  // the same change again
  EXPECT_EQ(kept(), n_newer);
  put("tab=t1&seq=8", older, "d.nii");  // a later change of the tab
  EXPECT_EQ(kept(), n_older);
  put("tab=t2&seq=1", newer, "e.nii");  // another tab (of the same reviewer): its own draft
  EXPECT_EQ(kept("t2"), n_newer);
  EXPECT_EQ(kept(), n_older);
  EXPECT_EQ(put("tab=t2&seq=1", older, "e2.nii")["stale"], true);  // each tab in its own order
  EXPECT_EQ(kept("t2"), n_newer);
  put("action=x", older, "f.nii");  // no tab: replaces the one put without a tab
  EXPECT_EQ(kept(""), n_older);
  put("action=y", newer, "f2.nii");
  EXPECT_EQ(kept(""), n_newer);
  EXPECT_EQ(kept(), n_older);
  EXPECT_EQ(db.drafts().size(), 3u);
  auto bad = c.Put(("/api/structures/" + sid + "/draft?base_version=1&tab=t1&seq=x").c_str(),
                   as_reviewer(srv->auth(), "Dr%20Smith"), nifti_bytes_of(older, dir.file("g.nii")), "application/octet-stream");
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->body.find("seq"), std::string::npos) << bad->body;
}

// (defect: two tabs of one reviewer shared one draft) Two tabs or windows of the same
// reviewer drawing on the same structure each keep their own draft: the second does not
// replace the first. Each is read back by its tab; a save clears the saving tab's draft only
// (and those its drawing was restored from: `replaces`), a discard one tab's; the approval
// record lists every one.
TEST_F(UiServer, TwoTabsOfOneReviewerKeepTheirOwnDraftsOfAStructure) {
  auto c = srv->client();
  auto& db = srv->server->db();
  const auto id = id_of("PTV");
  const std::string sid = std::to_string(id);
  const auto g = test::ui_grid();
  const core::Image v1 = db.mask(id, 1, g);
  const core::Image in_a = with_front_line(v1), in_b = with_side_line(v1);  // tabs A and B
  core::Image in_c = v1.clone();
  for (int k = 2; k < 6; ++k) in_c.data<std::uint8_t>()[g.offset(6, 40, k)] = 1;  // tab C
  const auto smith = as_reviewer(srv->auth(), "Dr%20Smith");
  const auto put = [&](const std::string& query, const core::Image& m, const std::string& name) {
    return put_draft_ok(id, query, m, name);
  };
  const auto mask_of = [&](const std::string& tab) -> std::int64_t {  // voxels of the draft read back, -1: none
    auto r = c.Get(("/api/structures/" + sid + "/draft.nii?reviewer=Dr%20Smith&tab=" + tab).c_str(), srv->auth());
    if (r->status != 200) return -1;
    std::ofstream(dir.file("back.nii"), std::ios::binary) << r->body;
    const core::Image back = core::read_image(dir.file("back.nii"), core::PixelType::UInt8);
    for (std::size_t n = 0; n < back.num_voxels(); ++n)
      if (back.data<std::uint8_t>()[n] != (tab == "A" ? in_a : tab == "B" ? in_b : in_c).data<std::uint8_t>()[n])
        return -2;  // not that tab's drawing
    return static_cast<std::int64_t>(back.count_nonzero());
  };
  const auto tabs = [&] {
    std::vector<std::string> out;
    for (const auto& d : json::parse(c.Get("/api/drafts", srv->auth())->body)) out.push_back(d.value("tab", "(none)"));
    std::sort(out.begin(), out.end());
    return out;
  };
  EXPECT_EQ(put("base_version=1&tab=A&seq=3", in_a, "a.nii")["tab"], "A");
  EXPECT_EQ(put("base_version=1&tab=B&seq=1", in_b, "b.nii")["tab"], "B");  // a later put of another tab
  EXPECT_EQ(tabs(), (std::vector<std::string>{"A", "B"}));
  EXPECT_EQ(mask_of("A"), static_cast<std::int64_t>(in_a.count_nonzero()));
  EXPECT_EQ(mask_of("B"), static_cast<std::int64_t>(in_b.count_nonzero()));
  EXPECT_EQ(json::parse(c.Get("/api/versions", srv->auth())->body)["drafts"].size(), 2u);
  // Without a tab a GET or DELETE cannot tell which: a 400 saying so; nothing discarded.
  auto r = c.Get(("/api/structures/" + sid + "/draft.nii?reviewer=Dr%20Smith").c_str(), srv->auth());
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("Dr Smith has 2 unsaved drawings of it (from different tabs or windows)"), std::string::npos)
      << r->body;
  EXPECT_EQ(c.Delete(("/api/structures/" + sid + "/draft").c_str(), smith)->status, 400);
  EXPECT_EQ(tabs(), (std::vector<std::string>{"A", "B"}));
  // An older request of tab A still does not replace A's newer draft, nor touch B's.
  EXPECT_EQ(put("base_version=1&tab=A&seq=2", in_b, "a2.nii")["stale"], true);
  EXPECT_EQ(mask_of("A"), static_cast<std::int64_t>(in_a.count_nonzero()));
  EXPECT_EQ(mask_of("B"), static_cast<std::int64_t>(in_b.count_nonzero()));
  // The approval lists every one of them (not approved, kept).
  put("base_version=1&tab=C&seq=1", in_c, "c.nii");
  auto a = c.Post("/api/approve", srv->auth(), R"({"reviewer":"Dr Smith"})", "application/json");
  ASSERT_EQ(a->status, 200) << a->body;
  std::vector<std::string> listed;
  const json rec = json::parse(a->body);
  for (const auto& d : rec["unsaved_drafts"]) {
    EXPECT_EQ(d["name"], "PTV");
    EXPECT_EQ(d["reviewer"], "Dr Smith");
    listed.push_back(d.value("tab", "(none)"));
  }
  std::sort(listed.begin(), listed.end());
  EXPECT_EQ(listed, (std::vector<std::string>{"A", "B", "C"}));
  EXPECT_EQ(tabs(), (std::vector<std::string>{"A", "B", "C"}));
  // Tab D restores B's drawing (it is D's drawing now): D's first draft replaces B's, in one
  // transaction; A's and C's stay.
  put("base_version=1&tab=D&seq=1&replaces=B&replaces_seq=1", in_b, "d.nii");
  EXPECT_EQ(tabs(), (std::vector<std::string>{"A", "C", "D"}));
  // Tab A saves: its draft is cleared, the other tabs' stay.
  r = c.Put(("/api/structures/" + sid + "/mask?base_version=1&action=brush&tab=A").c_str(), smith,
            nifti_bytes_of(in_a, dir.file("s.nii")), "application/octet-stream");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(tabs(), (std::vector<std::string>{"C", "D"}));
  // A save of a drawing restored from C clears C's draft too.
  put("base_version=2&tab=E&seq=1", in_c, "e.nii");
  r = c.Put(("/api/structures/" + sid + "/mask?base_version=2&action=brush&tab=E&replaces=C&replaces_seq=1").c_str(), smith,
            nifti_bytes_of(in_c, dir.file("s2.nii")), "application/octet-stream");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(tabs(), (std::vector<std::string>{"D"}));
  // Discarding names the tab; the only draft left needs no tab.
  put("base_version=1&tab=F&seq=1", in_a, "f.nii");
  r = c.Delete(("/api/structures/" + sid + "/draft?tab=F").c_str(), smith);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["discarded"], true);
  EXPECT_EQ(tabs(), (std::vector<std::string>{"D"}));
  EXPECT_EQ(mask_of("D"), -2);  // D holds B's drawing, the one it restored
  r = c.Delete(("/api/structures/" + sid + "/draft").c_str(), smith);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["tab"], "D");
  EXPECT_TRUE(tabs().empty());
}

// (defect: `replaces` removed a draft written after it was restored) Tab A restores tab B's
// draft while B is still open; B draws on (its draft now holds more than A restored), then A's
// draft (or A's save) names B's in `replaces`: B's newer drawing must stay, or B, closed with
// nothing left to send, loses it. A draft is replaced only as far as the change number the
// restoring tab read (`replaces_seq`); one unchanged since is replaced as before.
TEST_F(UiServer, ARestoredDraftReplacesNoDrawingWrittenSinceItWasRestored) {
  auto c = srv->client();
  auto& db = srv->server->db();
  const auto id = id_of("PTV");
  const std::string sid = std::to_string(id);
  const auto g = test::ui_grid();
  const core::Image v1 = db.mask(id, 1, g);
  const core::Image s1 = with_front_line(v1);  // B's first strokes
  const core::Image s2 = with_side_line(s1);   // and B's later ones
  const auto smith = as_reviewer(srv->auth(), "Dr%20Smith");
  const auto put = [&](const std::string& query, const core::Image& m, const std::string& name) {
    return put_draft_ok(id, "base_version=1&" + query, m, name);
  };
  const auto voxels_of = [&](const std::string& tab) { return draft_voxels(id, tab); };
  const auto n1 = static_cast<std::int64_t>(s1.count_nonzero()), n2 = static_cast<std::int64_t>(s2.count_nonzero());
  EXPECT_EQ(put("tab=B&seq=5", s1, "b1.nii")["seq"], 5);
  // A lists the drafts (B's at change 5) and restores B's drawing; B draws on meanwhile.
  const json listed = json::parse(c.Get("/api/drafts", srv->auth())->body);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0]["seq"], 5) << listed.dump();
  put("tab=B&seq=7", s2, "b2.nii");
  put("tab=A&seq=1&replaces=B&replaces_seq=5", s1, "a.nii");
  EXPECT_EQ(voxels_of("B"), n2) << "B's drawing of after the restore was removed";
  EXPECT_EQ(voxels_of("A"), n1);
  // A's save of the restored drawing: B's newer drawing stays too.
  auto r = c.Put(("/api/structures/" + sid + "/mask?base_version=1&action=brush&tab=A&replaces=B&replaces_seq=5").c_str(),
                 smith, nifti_bytes_of(s1, dir.file("s.nii")), "application/octet-stream");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(voxels_of("A"), -1);
  EXPECT_EQ(voxels_of("B"), n2);
  // Unchanged since it was read (change 7): the restored drawing takes its place, as before.
  put("tab=C&seq=9&replaces=B&replaces_seq=7", s2, "c.nii");
  EXPECT_EQ(voxels_of("B"), -1);
  EXPECT_EQ(voxels_of("C"), n2);
  r = c.Put(("/api/structures/" + sid + "/mask?base_version=2&action=brush&tab=D&replaces=C&replaces_seq=9").c_str(),
            smith, nifti_bytes_of(s2, dir.file("s2.nii")), "application/octet-stream");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_TRUE(db.drafts().empty());
  // A draft put without a tab (a client that sends no change numbers) counts its writes itself:
  // written again after it was read, it is not replaced either.
  const std::int64_t read_seq = put("action=x", s1, "e1.nii")["seq"];
  EXPECT_EQ(json::parse(c.Get("/api/drafts", srv->auth())->body)[0]["seq"], read_seq);
  put("action=y", s2, "e2.nii");
  put("tab=F&seq=1&replaces=&replaces_seq=" + std::to_string(read_seq), s1, "f.nii");
  EXPECT_EQ(voxels_of(""), n2);
  // `replaces` needs the change number it was read at, one per tab.
  for (const char* q : {"tab=G&seq=1&replaces=F", "tab=G&seq=1&replaces=F&replaces=&replaces_seq=1",
                        "tab=G&seq=1&replaces=F&replaces_seq=x"}) {
    r = c.Put(("/api/structures/" + sid + "/draft?base_version=1&" + q).c_str(), smith,
              nifti_bytes_of(s1, dir.file("g.nii")), "application/octet-stream");
    EXPECT_EQ(r->status, 400) << q << ": " << r->body;
    EXPECT_NE(r->body.find("replaces_seq"), std::string::npos) << r->body;
  }
  EXPECT_EQ(voxels_of("F"), n1);
  EXPECT_FALSE(db.draft(id, "Dr Smith", "G"));
}

// (defect: an already-saved drawing came back as a draft) The page is hidden or left while its
// save is on its way (Save, then the tab closed or another window brought forward at once): the
// page-leave draft request of the same drawing reaches the server after the save cleared the
// draft, and wrote it again: the saved drawing was offered as an unsaved one (and listed in the
// approval). A save names the tab and the change number of the drawing it saves (`seq`); a
// later draft request of that tab not above it is stale ("saved": true) and writes nothing; a
// newer one (the tab drew on) is kept as before.
TEST_F(UiServer, ADraftRequestOfADrawingAlreadySavedDoesNotComeBackAsADraft) {
  auto c = srv->client();
  auto& db = srv->server->db();
  const auto id = id_of("PTV");
  const std::string sid = std::to_string(id);
  const auto g = test::ui_grid();
  const core::Image drawn = with_front_line(db.mask(id, 1, g));
  const core::Image more = with_side_line(drawn);
  const auto smith = as_reviewer(srv->auth(), "Dr%20Smith");
  const auto put = [&](const std::string& query, const core::Image& m, const std::string& name) {
    return put_draft_ok(id, query, m, name);
  };
  put("base_version=1&tab=K&seq=3", drawn, "a.nii");  // the timed request (change 3)
  // Save of change 4, then the page-leave request of change 4 arrives.
  auto r = c.Put(("/api/structures/" + sid + "/mask?base_version=1&action=brush&tab=K&seq=4").c_str(), smith,
                 nifti_bytes_of(drawn, dir.file("s.nii")), "application/octet-stream");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_TRUE(db.drafts().empty());
  const json late = put("base_version=1&tab=K&seq=4", drawn, "b.nii");
  EXPECT_EQ(late.value("stale", false), true) << late.dump();
  EXPECT_EQ(late.value("saved", false), true) << late.dump();
  EXPECT_TRUE(db.drafts().empty()) << "the saved drawing came back as a draft";
  EXPECT_TRUE(json::parse(c.Get("/api/drafts", srv->auth())->body).empty());
  // Another tab, or another reviewer with a tab of that name, is not concerned.
  put("base_version=1&tab=L&seq=2", drawn, "c.nii");
  EXPECT_TRUE(db.draft(id, "Dr Smith", "L"));
  EXPECT_EQ(c.Put(("/api/structures/" + sid + "/draft?base_version=1&tab=K&seq=1").c_str(), as_reviewer(srv->auth(), "Dr%20B"),
                  nifti_bytes_of(drawn, dir.file("d.nii")), "application/octet-stream")->status, 200);
  EXPECT_TRUE(db.draft(id, "Dr B", "K"));
  // The tab draws on after its save (change 5, on v2): kept as a draft, as always; its next
  // save clears it, and so on.
  const json next = put("base_version=2&tab=K&seq=5", more, "e.nii");
  EXPECT_FALSE(next.value("stale", false)) << next.dump();
  ASSERT_TRUE(db.draft(id, "Dr Smith", "K"));
  EXPECT_EQ(db.draft(id, "Dr Smith", "K")->voxels, static_cast<std::int64_t>(more.count_nonzero()));
  r = c.Put(("/api/structures/" + sid + "/mask?base_version=2&action=brush&tab=K&seq=6").c_str(), smith,
            nifti_bytes_of(more, dir.file("s2.nii")), "application/octet-stream");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_FALSE(db.draft(id, "Dr Smith", "K"));
  EXPECT_EQ(put("base_version=2&tab=K&seq=5", more, "f.nii").value("saved", false), true);
  EXPECT_FALSE(db.draft(id, "Dr Smith", "K"));
  // A save without a change number (a script) keeps nothing back; a bad one is a 400.
  r = c.Put(("/api/structures/" + sid + "/mask?base_version=3&action=brush&tab=K&seq=x").c_str(), smith,
            nifti_bytes_of(more, dir.file("s3.nii")), "application/octet-stream");
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_EQ(db.history(id).size(), 3u);
}

// (defect: Discard removed strokes it had not shown) This tab discards the draft of another
// window (as listed: change 5), which is still open and drew on meanwhile (change 7): the
// newer strokes were discarded with it, unseen, and that window, closed with nothing left to
// send, lost them. A DELETE names the change number it saw (`seq`); a draft written since is
// not discarded (409 saying so, the draft as it is now); one unchanged since is.
TEST_F(UiServer, DiscardingADraftKeepsWhatWasDrawnSinceItWasListed) {
  auto c = srv->client();
  auto& db = srv->server->db();
  const auto id = id_of("PTV");
  const std::string sid = std::to_string(id);
  const auto g = test::ui_grid();
  const core::Image s1 = with_front_line(db.mask(id, 1, g));
  const core::Image s2 = with_side_line(s1);
  const auto smith = as_reviewer(srv->auth(), "Dr%20Smith");
  const auto put = [&](const std::string& query, const core::Image& m, const std::string& name) {
    put_draft_ok(id, "base_version=1&" + query, m, name);
  };
  const auto del = [&](const std::string& query) { return c.Delete(("/api/structures/" + sid + "/draft?" + query).c_str(), smith); };
  put("tab=B&seq=5", s1, "a.nii");
  put("tab=B&seq=7", s2, "b.nii");  // B drew on after this tab listed its draft at change 5
  auto r = del("tab=B&seq=5");
  EXPECT_EQ(r->status, 409) << r->body;
  EXPECT_NE(r->body.find("changed since"), std::string::npos) << r->body;
  const json j = json::parse(r->body);
  EXPECT_EQ(j.value("discarded", true), false) << r->body;
  EXPECT_EQ(j["draft"]["seq"], 7) << r->body;
  ASSERT_TRUE(db.draft(id, "Dr Smith", "B"));
  EXPECT_EQ(db.draft(id, "Dr Smith", "B")->voxels, static_cast<std::int64_t>(s2.count_nonzero()));
  r = del("tab=B&seq=7");  // as it is now: discarded
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["discarded"], true);
  EXPECT_FALSE(db.draft(id, "Dr Smith", "B"));
  EXPECT_EQ(json::parse(del("tab=B&seq=7")->body)["discarded"], false);  // none: nothing to say
  put("tab=C&seq=1", s1, "c.nii");
  EXPECT_EQ(del("tab=C&seq=x")->status, 400);
  EXPECT_EQ(json::parse(del("tab=C")->body)["discarded"], true);  // without a change number: whatever it holds
}

// (defect: a browser copy of a page-leave draft that was discarded meanwhile came back once)
// A page-leave request that reaches the server after its page is gone leaves the browser's
// copy of it in place (the answer that removes it never arrives); the copy is sent on the next
// open of the case there. When that tab's draft was discarded meanwhile (or restored into
// another window, or saved from there), the copy wrote it again: offered as unsaved once more.
// The server notes, per tab, the change number of a drawing that went (drafts_gone, kept
// across restarts: a copy may come days later); a request of that tab not above it writes
// nothing ("stale", "gone": how it went); a later change of the tab (strokes the discard never
// saw) is kept as always. A drafts_saved table of an older server is taken over.
TEST_F(UiServer, ADraftThatWasDiscardedOrRestoredElsewhereDoesNotComeBackFromALateRequest) {
  auto c = srv->client();
  const auto id = id_of("PTV");
  const std::string sid = std::to_string(id);
  const auto g = test::ui_grid();
  const core::Image s1 = with_front_line(srv->server->db().mask(id, 1, g));
  const core::Image s2 = with_side_line(s1);
  const auto smith = as_reviewer(srv->auth(), "Dr%20Smith");
  const auto put = [&](const std::string& query, const core::Image& m) {
    return put_draft_ok(id, "base_version=1&" + query, m, "p.nii");
  };
  const auto del = [&](const std::string& query) {
    auto cl = srv->client();
    return cl.Delete(("/api/structures/" + sid + "/draft?" + query).c_str(), as_reviewer(srv->auth(), "Dr%20Smith"));
  };
  const auto has = [&](const std::string& tab) { return srv->server->db().draft(id, "Dr Smith", tab).has_value(); };
  // Discarded as shown (change 3): the copy of change 3 comes back to nothing.
  put("tab=K&seq=3", s1);
  ASSERT_EQ(del("tab=K&seq=3")->status, 200);
  json late = put("tab=K&seq=3", s1);
  EXPECT_EQ(late.value("stale", false), true) << late.dump();
  EXPECT_EQ(late.value("gone", ""), "discarded") << late.dump();
  EXPECT_FALSE(late.contains("saved")) << late.dump();
  EXPECT_FALSE(has("K")) << "the discarded drawing came back";
  EXPECT_EQ(put("tab=K&seq=2", s1).value("gone", ""), "discarded");
  // Restored into tab R (whose draft takes its place): the copy of L's change 5 stays gone, and
  // so after R saves it.
  put("tab=L&seq=5", s1);
  put("tab=R&seq=1&replaces=L&replaces_seq=5", s1);
  EXPECT_FALSE(has("L"));
  EXPECT_EQ(put("tab=L&seq=5", s1).value("gone", ""), "restored");
  EXPECT_FALSE(has("L"));
  auto r = c.Put(("/api/structures/" + sid + "/mask?base_version=1&action=brush&tab=R&seq=1").c_str(), smith,
                 nifti_bytes_of(s1, dir.file("s.nii")), "application/octet-stream");
  ASSERT_EQ(r->status, 200) << r->body;
  late = put("tab=R&seq=1", s1);
  EXPECT_EQ(late.value("gone", ""), "saved") << late.dump();
  EXPECT_EQ(late.value("saved", false), true) << late.dump();
  EXPECT_TRUE(srv->server->db().drafts().empty());
  // Strokes the discard did not see (change 4 of K, the copy of a page whose timed draft of
  // change 3 was discarded): kept, and offered.
  json kept = put("tab=K&seq=4", s2);
  EXPECT_FALSE(kept.value("stale", false)) << kept.dump();
  ASSERT_TRUE(has("K"));
  EXPECT_EQ(srv->server->db().draft(id, "Dr Smith", "K")->voxels, static_cast<std::int64_t>(s2.count_nonzero()));
  // Another reviewer with a tab of that name is not concerned.
  r = c.Put(("/api/structures/" + sid + "/draft?base_version=1&tab=L&seq=5").c_str(), as_reviewer(srv->auth(), "Dr%20B"),
            nifti_bytes_of(s1, dir.file("b.nii")), "application/octet-stream");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_FALSE(json::parse(r->body).value("stale", false)) << r->body;
  // A server started again still knows (the copy is sent on the next open, maybe days later).
  ASSERT_EQ(del("tab=K&seq=4")->status, 200);
  const std::string dbfile = dir.file("review/review.sqlite");
  ui::ServerOptions o;
  o.case_dir = dir.str();
  srv.reset();
  // (and an older server's drafts_saved, a save's change number, is taken over as "saved")
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(dbfile.c_str(), &raw), SQLITE_OK);
  char* err = nullptr;
  ASSERT_EQ(sqlite3_exec(raw,
                         ("CREATE TABLE drafts_saved(structure_id INTEGER NOT NULL, reviewer TEXT NOT NULL, tab TEXT NOT NULL,"
                          " seq INTEGER NOT NULL, time TEXT NOT NULL, PRIMARY KEY(structure_id, reviewer, tab));"
                          " INSERT INTO drafts_saved VALUES(" + sid + ", 'Dr Smith', 'S', 9, '2026-01-01T00:00:00Z');")
                             .c_str(),
                         nullptr, nullptr, &err),
            SQLITE_OK)
      << (err ? err : "");
  sqlite3_close(raw);
  srv = std::make_unique<Running>(o);
  EXPECT_EQ(put("tab=K&seq=4", s2).value("gone", ""), "discarded");
  EXPECT_EQ(put("tab=S&seq=9", s2).value("gone", ""), "saved");
  EXPECT_FALSE(has("K"));
  EXPECT_FALSE(has("S"));
  EXPECT_FALSE(put("tab=S&seq=10", s2).value("stale", false));
  EXPECT_TRUE(has("S"));
}

// (defect: tab names were cut to 64 bytes) Two tabs whose names share their first 64 bytes
// were kept as one: the second's draft replaced the first's. A tab or `replaces` name longer
// than 64 bytes is refused (400 naming it), nothing is written.
TEST_F(UiServer, ATabNameLongerThanItsLimitIsRefusedNotCut) {
  auto c = srv->client();
  auto& db = srv->server->db();
  const auto id = id_of("Cord");
  const std::string sid = std::to_string(id);
  const core::Image v1 = db.mask(id, 1, test::ui_grid());
  const std::string body = nifti_bytes_of(v1, dir.file("m.nii"));
  const auto smith = as_reviewer(srv->auth(), "Dr%20Smith");
  const std::string stem(64, 'w');
  const auto put = [&](const std::string& query) { return put_draft(id, "base_version=1&" + query, v1, "m.nii"); };
  EXPECT_EQ(put("tab=" + stem + "&seq=1")->status, 200);  // 64 bytes: kept as it is
  for (const std::string& q : {"tab=" + stem + "1&seq=1", "tab=" + stem + "2&seq=2", "tab=x&seq=1&replaces=" + stem +
                                                                                     "1&replaces_seq=1"}) {
    auto r = put(q);
    EXPECT_EQ(r->status, 400) << r->body;
    EXPECT_NE(r->body.find("at most 64 bytes"), std::string::npos) << r->body;
  }
  ASSERT_EQ(db.drafts().size(), 1u);
  EXPECT_EQ(db.drafts()[0].tab, stem);
  auto r = c.Delete(("/api/structures/" + sid + "/draft?tab=" + stem + "9").c_str(), smith);
  EXPECT_EQ(r->status, 400) << r->body;
  r = c.Get(("/api/structures/" + sid + "/draft.nii?reviewer=Dr%20Smith&tab=" + stem + "9").c_str(), srv->auth());
  EXPECT_EQ(r->status, 400) << r->body;
  r = c.Put(("/api/structures/" + sid + "/mask?base_version=1&action=brush&tab=" + stem + "9").c_str(), smith, body,
            "application/octet-stream");
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_EQ(db.drafts().size(), 1u);
  EXPECT_EQ(db.history(id).size(), 1u);
}

// Drafts of one structure and reviewer are capped (every tab or window that is closed unsaved
// leaves one, so they could grow without bound): a further tab's draft is refused with a 409
// saying what to do, and none of the kept ones is dropped. A tab that has one keeps replacing
// it, and a drawing restored from a kept one takes its place.
TEST_F(UiServer, DraftsOfOneStructureAndReviewerAreCappedAndNoneIsDropped) {
  auto c = srv->client();
  auto& db = srv->server->db();
  const auto id = id_of("Cord");
  const std::string sid = std::to_string(id);
  const core::Image v1 = db.mask(id, 1, test::ui_grid());
  const std::string body = nifti_bytes_of(v1, dir.file("m.nii"));
  const auto smith = as_reviewer(srv->auth(), "Dr%20Smith");
  const auto put = [&](const std::string& query) { return put_draft(id, "base_version=1&" + query, v1, "m.nii"); };
  const int limit = static_cast<int>(ui::ReviewDb::kDraftLimit);
  for (int t = 0; t < limit; ++t) ASSERT_EQ(put("tab=w" + std::to_string(t) + "&seq=1")->status, 200);
  auto r = put("tab=new&seq=1");
  EXPECT_EQ(r->status, 409) << r->body;
  EXPECT_NE(r->body.find("draft: Cord: " + std::to_string(limit) + " unsaved drawings of Dr Smith are kept already"),
            std::string::npos)
      << r->body;
  EXPECT_NE(r->body.find("restore or discard some of them"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("none of them was dropped"), std::string::npos) << r->body;
  ASSERT_EQ(db.drafts().size(), static_cast<std::size_t>(limit));
  for (const auto& d : db.drafts()) EXPECT_NE(d.tab, "new");
  EXPECT_EQ(put("tab=w3&seq=2")->status, 200);                 // a kept tab goes on
  EXPECT_EQ(put("tab=new&seq=1&replaces=w5&replaces_seq=1")->status, 200);   // restored from w5: takes its place
  EXPECT_EQ(db.drafts().size(), static_cast<std::size_t>(limit));
  EXPECT_FALSE(db.draft(id, "Dr Smith", "w5"));
  // Another reviewer, or another structure, has room of their own.
  EXPECT_EQ(c.Put(("/api/structures/" + sid + "/draft?base_version=1&tab=x&seq=1").c_str(),
                  as_reviewer(srv->auth(), "Dr%20B"), body, "application/octet-stream")->status,
            200);
}

// A review.sqlite written before drafts were kept per tab (one row per structure and reviewer:
// the first drafts table had no tab/seq columns, the second had them outside the key) opens
// with every draft kept, mask and all, and then keeps one per tab.
TEST_F(UiServer, AnOlderReviewDatabaseKeepsItsDraftsAndThenKeepsOnePerTab) {
  const auto ptv = id_of("PTV"), cord = id_of("Cord");
  const auto g = test::ui_grid();
  core::Image drawn = srv->server->db().mask(ptv, 1, g).clone();
  for (int i = 2; i < 9; ++i) drawn.data<std::uint8_t>()[g.offset(i, 3, 4)] = 1;
  const std::string dbfile = dir.file("review/review.sqlite");
  for (const bool with_tab_columns : {false, true}) {
    SCOPED_TRACE(with_tab_columns ? "drafts(…, tab, seq, PRIMARY KEY(structure_id, reviewer))"
                                  : "drafts(…, PRIMARY KEY(structure_id, reviewer))");
    {
      auto c = srv->client();
      for (const auto& [sid, who] : {std::pair{ptv, "Dr%20Smith"}, std::pair{cord, "Dr%20B"}})
        ASSERT_EQ(c.Put(("/api/structures/" + std::to_string(sid) + "/draft?base_version=1&action=brush&tab=old&seq=4").c_str(),
                        as_reviewer(srv->auth(), who), nifti_bytes_of(drawn, dir.file("d.nii")), "application/octet-stream")
                      ->status,
                  200);
    }
    srv.reset();
    // Make the drafts table what an older server wrote (the same drafts in it).
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(dbfile.c_str(), &raw), SQLITE_OK);
    const std::string cols = "structure_id, reviewer, base_version, time, action, voxels, volume_cc, mask";
    const std::string sql =
        "BEGIN; CREATE TABLE drafts_old(structure_id INTEGER NOT NULL REFERENCES structures(id),"
        " reviewer TEXT NOT NULL, base_version INTEGER NOT NULL, time TEXT NOT NULL, action TEXT NOT NULL,"
        " voxels INTEGER NOT NULL, volume_cc REAL NOT NULL, mask BLOB NOT NULL," +
        std::string(with_tab_columns ? " tab TEXT NOT NULL DEFAULT '', seq INTEGER NOT NULL DEFAULT 0," : "") +
        " PRIMARY KEY(structure_id, reviewer));"
        " INSERT INTO drafts_old SELECT " + cols + (with_tab_columns ? ", tab, seq" : "") + " FROM drafts;"
        " DROP TABLE drafts; ALTER TABLE drafts_old RENAME TO drafts; COMMIT;";
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_close(raw);
    ui::ServerOptions o;
    o.case_dir = dir.str();
    srv = std::make_unique<Running>(o);
    auto c = srv->client();
    // Every draft is there, with its mask.
    auto list = json::parse(c.Get("/api/drafts", srv->auth())->body);
    ASSERT_EQ(list.size(), 2u) << list.dump();
    for (const auto& d : list) {
      EXPECT_EQ(d.value("tab", "(none)"), with_tab_columns ? "old" : "") << d.dump();
      EXPECT_EQ(d["base_version"], 1);
      EXPECT_EQ(d["action"], "brush");
      EXPECT_EQ(d["voxels"].get<std::int64_t>(), static_cast<std::int64_t>(drawn.count_nonzero()));
    }
    auto m = c.Get(("/api/structures/" + std::to_string(ptv) + "/draft.nii?reviewer=Dr%20Smith").c_str(), srv->auth());
    ASSERT_EQ(m->status, 200) << m->body;
    std::ofstream(dir.file("back.nii"), std::ios::binary) << m->body;
    const core::Image back = core::read_image(dir.file("back.nii"), core::PixelType::UInt8);
    ASSERT_EQ(back.byte_size(), drawn.byte_size());
    EXPECT_EQ(std::memcmp(back.raw(), drawn.raw(), drawn.byte_size()), 0);
    // A draft of another tab is now kept beside it (the old key would have replaced it); the
    // kept tab's change number still orders its requests. (A tab of its own each round: the
    // first round's draft of its tab was discarded, and a discarded drawing does not come back.)
    const std::string tab = with_tab_columns ? "new2" : "new1";
    ASSERT_EQ(c.Put(("/api/structures/" + std::to_string(ptv) + "/draft?base_version=1&tab=" + tab + "&seq=1").c_str(),
                    as_reviewer(srv->auth(), "Dr%20Smith"), nifti_bytes_of(drawn, dir.file("n.nii")), "application/octet-stream")
                  ->status,
              200);
    EXPECT_EQ(json::parse(c.Get("/api/drafts?reviewer=Dr%20Smith", srv->auth())->body).size(), 2u);
    if (with_tab_columns) {
      auto r = c.Put(("/api/structures/" + std::to_string(ptv) + "/draft?base_version=1&tab=old&seq=3").c_str(),
                     as_reviewer(srv->auth(), "Dr%20Smith"), nifti_bytes_of(drawn, dir.file("o.nii")), "application/octet-stream");
      EXPECT_EQ(json::parse(r->body).value("stale", false), true) << r->body;
    }
    // Opened again (already migrated): the same.
    srv.reset();
    srv = std::make_unique<Running>(o);
    auto c2 = srv->client();
    const json left = json::parse(c2.Get("/api/drafts", srv->auth())->body);
    EXPECT_EQ(left.size(), 3u) << left.dump();
    for (const auto& d : left)
      c2.Delete(("/api/structures/" + std::to_string(d["structure_id"].get<std::int64_t>()) +
                 "/draft?tab=" + d.value("tab", "")).c_str(),
                as_reviewer(srv->auth(), d["reviewer"] == "Dr B" ? "Dr%20B" : "Dr%20Smith"));
    ASSERT_TRUE(srv->server->db().drafts().empty());
  }
}

TEST_F(UiServer, DraftsAreNeverApprovedAndStayAfterAnApproval) {
  auto c = srv->client();
  auto& db = srv->server->db();
  const auto id = id_of("PTV");
  const auto g = test::ui_grid();
  core::Image drawn = db.mask(id, 1, g).clone();  // a large unsaved change: a slab added
  for (std::int64_t j = 0; j < 20; ++j)
    for (std::int64_t i = 0; i < 20; ++i) drawn.data<std::uint8_t>()[g.offset(i, j, 16)] = 1;
  ASSERT_EQ(c.Put(("/api/structures/" + std::to_string(id) + "/draft?base_version=1&action=brush").c_str(),
                  as_reviewer(srv->auth(), "Dr%20Smith"), nifti_bytes_of(drawn, dir.file("d.nii")), "application/octet-stream")
                ->status,
            200);
  auto a = c.Post("/api/approve", srv->auth(), R"({"reviewer":"Dr Smith"})", "application/json");
  ASSERT_EQ(a->status, 200) << a->body;
  const json rec = json::parse(a->body);
  // The approved PTV is the live version 1, not the draft, in the RT-STRUCT and the masks.
  const core::Image v1 = db.mask(id, 1, g);
  auto approved = rtstruct::rasterize(rtstruct::read_rtstruct(rec["rtstruct"].get<std::string>()), g).get("PTV").mask;
  std::size_t diff_live = 0, diff_draft = 0;
  for (std::size_t n = 0; n < v1.num_voxels(); ++n) {
    diff_live += (approved.data<std::uint8_t>()[n] != 0) != (v1.data<std::uint8_t>()[n] != 0);
    diff_draft += (approved.data<std::uint8_t>()[n] != 0) != (drawn.data<std::uint8_t>()[n] != 0);
  }
  EXPECT_EQ(diff_live, 0u);
  EXPECT_GT(diff_draft, 300u);
  const core::Image file = core::read_image(rec["directory"].get<std::string>() + "/masks/PTV.nii.gz", core::PixelType::UInt8);
  EXPECT_EQ(file.count_nonzero(), v1.count_nonzero());
  for (const auto& st : rec["structures"])
    if (st["name"] == "PTV") {
      EXPECT_EQ(st["version"], 1);
    }
  // The record says so, and the draft is kept (it is not part of the approval).
  ASSERT_EQ(rec["unsaved_drafts"].size(), 1u) << rec.dump();
  EXPECT_EQ(rec["unsaved_drafts"][0]["name"], "PTV");
  EXPECT_EQ(rec["unsaved_drafts"][0]["reviewer"], "Dr Smith");
  EXPECT_EQ(rec["unsaved_drafts"][0]["base_version"], 1);
  EXPECT_TRUE(db.draft(id, "Dr Smith"));
}

namespace {
// `in` gzipped at `level` (a .nii.gz body, or the outer layer of a Content-Encoding: gzip one).
std::string gzip_of(const std::string& in, int level = 9) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, static_cast<uLong>(in.size())) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}
}  // namespace

TEST_F(UiServer, BadDraftRequestsAre4xxNamingTheProblem) {
  auto c = srv->client();
  const auto id = id_of("Cord");
  const std::string sid = std::to_string(id);
  const auto g = test::ui_grid();
  const core::Image ok = srv->server->db().mask(id, 1, g);
  const std::string good = nifti_bytes_of(ok, dir.file("ok.nii"));
  auto put = [&](const std::string& path, const httplib::Headers& h, const std::string& body) {
    auto r = c.Put(path.c_str(), h, body, "application/octet-stream");
    EXPECT_TRUE(r);
    return r;
  };
  const auto smith = as_reviewer(srv->auth(), "Dr%20Smith");
  // A structure that does not exist: 404 naming it.
  auto r = put("/api/structures/999/draft?base_version=1", smith, good);
  EXPECT_EQ(r->status, 404) << r->body;
  EXPECT_NE(r->body.find("structure 999: no such structure"), std::string::npos) << r->body;
  EXPECT_EQ(c.Get("/api/structures/999/draft.nii?reviewer=Dr%20Smith", srv->auth())->status, 404);
  EXPECT_EQ(c.Delete("/api/structures/999/draft", smith)->status, 404);
  // A mask on another grid (another size; the right size with a shifted header): 400, never resampled.
  core::Geometry small = g;
  small.size = {40, 48, 32};
  r = put("/api/structures/" + sid + "/draft?base_version=1", smith,
          nifti_bytes_of(core::Image(small, core::PixelType::UInt8), dir.file("small.nii")));
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("draft: mask: the uploaded mask is not on the CT grid"), std::string::npos) << r->body;
  core::Image shifted = ok.clone();
  core::Geometry sg = g;
  sg.origin[2] += 10;
  shifted.set_geometry(sg);
  r = put("/api/structures/" + sid + "/draft?base_version=1", smith, nifti_bytes_of(shifted, dir.file("sh.nii")));
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("not on the CT grid: its header differs"), std::string::npos) << r->body;
  r = put("/api/structures/" + sid + "/draft?base_version=1", smith, "not a NIfTI");
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("draft: mask: body is not a NIfTI image"), std::string::npos) << r->body;
  // A header that declares a huge image (a small gzip can inflate to gigabytes) is refused from
  // the header alone, plain or gzipped, before any image is read.
  ASSERT_EQ(good.substr(0, 4), std::string("\x5c\x01\x00\x00", 4)) << "expected a plain NIfTI-1 body";
  std::string huge = good;
  for (int i = 0; i < 3; ++i) {
    const std::int16_t n = 4000;
    std::memcpy(huge.data() + 42 + 2 * i, &n, 2);
  }
  for (const std::string& body : {huge, gzip_of(huge, 1)}) {
    r = put("/api/structures/" + sid + "/draft?base_version=1", smith, body);
    EXPECT_EQ(r->status, 400) << r->body;
    EXPECT_NE(r->body.find("not on the CT grid (its header declares 4000 x 4000 x 4000 voxels"), std::string::npos)
        << r->body;
  }
  // The same body gzipped but on the grid is taken.
  r = put("/api/structures/" + sid + "/draft?base_version=1", smith, gzip_of(good, 1));
  EXPECT_EQ(r->status, 200) << r->body;
  ASSERT_EQ(c.Delete(("/api/structures/" + sid + "/draft").c_str(), smith)->status, 200);  // (none below)
  // No reviewer (a draft is kept per reviewer), or a blank one.
  r = put("/api/structures/" + sid + "/draft?base_version=1", srv->auth(), good);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("draft: reviewer: missing"), std::string::npos) << r->body;
  r = put("/api/structures/" + sid + "/draft?base_version=1&reviewer=%20%20", srv->auth(), good);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_EQ(c.Get(("/api/structures/" + sid + "/draft.nii").c_str(), srv->auth())->status, 400);
  // The base version: missing, not a number, not a version of the structure.
  r = put("/api/structures/" + sid + "/draft", smith, good);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("draft: base_version: missing"), std::string::npos) << r->body;
  EXPECT_EQ(put("/api/structures/" + sid + "/draft?base_version=x", smith, good)->status, 400);
  r = put("/api/structures/" + sid + "/draft?base_version=7", smith, good);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("must be a version of the structure, 1 to 1, got 7"), std::string::npos) << r->body;
  // No draft of this reviewer: 404 saying so. Nothing was stored by any of the above.
  r = c.Get(("/api/structures/" + sid + "/draft.nii?reviewer=Dr%20Smith").c_str(), srv->auth());
  EXPECT_EQ(r->status, 404) << r->body;
  EXPECT_NE(r->body.find("no draft of Dr Smith"), std::string::npos) << r->body;
  EXPECT_TRUE(srv->server->db().drafts().empty());
}

// Audit 18, defect 5: a broken file in the case's DICOM CT stops `serve` at start with the
// file named (the approval needs that series), not at Approve after the whole review.
TEST(UiServerCase, AnUnreadableDicomCtStopsTheServerWithTheFileNamed) {
  test::TempDir dir;
  test::write_ui_case(dir.str());
  const core::Image ct = core::read_image(dir.file("ct.nii.gz"));
  rtstruct::CtWriteOptions wo;
  rtstruct::write_ct_series(ct, dir.file("dicom"), wo);
  ui::ServerOptions o;
  o.case_dir = dir.str();
  o.ui_dir = "";
  { ui::ReviewServer ok(o); }  // a readable series: starts
  std::string first;
  for (const auto& e : std::filesystem::directory_iterator(dir.file("dicom"))) {
    first = e.path().string();
    break;
  }
  ASSERT_FALSE(first.empty());
  {
    std::ifstream in(first, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(dir.file("dicom/RS.dcm"), std::ios::binary) << bytes.substr(0, 400);  // truncated
  }
  try {
    ui::ReviewServer bad(o);
    ADD_FAILURE() << "started with a truncated dicom/RS.dcm";
  } catch (const core::Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("RS.dcm"), std::string::npos) << m;
    EXPECT_NE(m.find("approval would fail"), std::string::npos) << m;
  }
}

// Audit 18, defect 14: a missing case directory and an `isoline run` output say what they are.
TEST(UiServerCase, ClearMessagesForAMissingDirAndARunOutput) {
  test::TempDir dir;
  ui::ServerOptions o;
  o.case_dir = dir.file("nope");
  try {
    ui::ReviewServer s(o);
    ADD_FAILURE();
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
  std::filesystem::create_directories(dir.file("result/CT"));
  std::filesystem::create_directories(dir.file("result/masks"));
  std::ofstream(dir.file("result/RS.dcm")) << "x";
  o.case_dir = dir.file("result");
  try {
    ui::ReviewServer s(o);
    ADD_FAILURE();
  } catch (const core::Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("`isoline run` output, not a review case"), std::string::npos) << m;
    EXPECT_NE(m.find("isoline convert"), std::string::npos) << m;
  }
}

// Docs audit 19, defect 1: an `isoline run` output of a DICOM CT has no ct.nii.gz and no CT/;
// `serve` gives its CT as ServerOptions::ct_path (the DICOM series metrics.json records). The
// browser gets it as NIfTI, and the approved RT-STRUCT references that series, not one of its own.
TEST(UiServerCase, ARunOutputOpensWithItsDicomCtWhichTheApprovalReferences) {
  test::TempDir dir;
  test::write_ui_case(dir.file("case"));
  const core::Image ct = core::read_image(dir.file("case/ct.nii.gz"));
  const rtstruct::CtSeries series = rtstruct::write_ct_series(ct, dir.file("patient_ct"), {});
  std::filesystem::create_directories(dir.file("run"));
  std::filesystem::rename(dir.file("case/masks"), dir.file("run/masks"));
  std::filesystem::rename(dir.file("case/dose.nii.gz"), dir.file("run/dose.nii.gz"));
  std::ofstream(dir.file("run/metrics.json")) << "{}\n";
  ui::ServerOptions o;
  o.case_dir = dir.file("run");
  try {  // without the CT: what it is, and how to make a case
    ui::ReviewServer s(o);
    ADD_FAILURE();
  } catch (const core::Error& e) {
    EXPECT_NE(std::string(e.what()).find("`isoline run` output without its CT"), std::string::npos) << e.what();
  }
  o.ct_path = dir.file("patient_ct");
  {
    Running srv(o);
    const json c = json::parse(srv.client().Get("/api/case", srv.auth())->body);
    EXPECT_EQ(c["ct"]["name"], "ct.nii.gz");
    auto v = srv.client().Get("/api/volume/ct", srv.auth());
    ASSERT_EQ(v->status, 200);
    std::ofstream(dir.file("served.nii.gz"), std::ios::binary) << v->body;
    const core::Image served = core::read_image(dir.file("served.nii.gz"));
    EXPECT_TRUE(served.geometry().same_grid(ct.geometry(), 1e-3));
    EXPECT_EQ(std::memcmp(served.raw(), ct.raw(), ct.byte_size()), 0);
    EXPECT_EQ(srv.server->db().structures().size(), 4u);
    auto a = srv.client().Post("/api/approve", srv.auth(), R"({"reviewer": "Dr Test"})", "application/json");
    ASSERT_EQ(a->status, 200) << a->body;
    const json j = json::parse(a->body);
    EXPECT_EQ(j["ct_series_instance_uid"], series.series_instance_uid);
    EXPECT_EQ(rtstruct::read_rtstruct(j["rtstruct"]).referenced_series_instance_uid, series.series_instance_uid);
  }
  EXPECT_FALSE(std::filesystem::exists(dir.file("run/review/dicom_ct")));
  // A CT that is no longer where metrics.json says: named, with the way out.
  o.ct_path = dir.file("gone");
  try {
    ui::ReviewServer s(o);
    ADD_FAILURE();
  } catch (const core::Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(dir.file("gone") + " (named in its metrics.json), no longer exists"), std::string::npos) << m;
    EXPECT_NE(m.find("isoline convert DICOM_CT --out CASE/ct.nii.gz"), std::string::npos) << m;
  }
}

TEST_F(UiServer, DoseEstimateNotAvailableIs501) {
  auto c = srv->client();
  auto r = c.Post("/api/dose/estimate", srv->auth(), "{}", "application/json");
  ASSERT_EQ(r->status, 501);
  EXPECT_NE(json::parse(r->body)["error"].get<std::string>().find("not available in this build"), std::string::npos);
  auto dvh = json::parse(c.Get("/api/dvh", srv->auth())->body);
  ASSERT_TRUE(dvh["available"].get<bool>());
  EXPECT_EQ(dvh["curves"].size(), 4u);
  auto iso = c.Get("/api/volume/isodose", srv->auth());
  EXPECT_EQ(iso->status, 200);
  EXPECT_FALSE(iso->get_header_value("X-Isodose-Levels-Gy").empty());
}

// The client gets the colours and the prescription with the case.
TEST_F(UiServer, CaseCarriesTheDoseColours) {
  const json c = json::parse(srv->client().Get("/api/case", srv->auth())->body);
  ASSERT_TRUE(c["dose"].is_object()) << c.dump();
  ASSERT_EQ(c["dose"]["isodose_lines"].size(), core::kIsodoseLines.size());
  ASSERT_EQ(c["dose"]["wash"].size(), core::kDoseWash.size());
  EXPECT_EQ(c["dose"]["isodose_lines"][3]["color"], json::array({255, 120, 85}));
  EXPECT_GT(c["dose"]["prescription_gy"].get<double>(), 0.0);
}

// Isodose levels are percentages of the prescription a target's name gives (PTV60 -> 60 Gy, as
// `isoline dvh` reads it), not of a nominal max/1.07 (the fixture's PTV has no number: that).
TEST(UiServerCase, IsodoseLevelsFollowThePrescriptionOfTheTargetsName) {
  test::TempDir dir;
  test::write_ui_case(dir.str());
  std::filesystem::copy_file(dir.file("masks/PTV.nii.gz"), dir.file("masks/PTV60.nii.gz"));
  ui::ServerOptions o;
  o.case_dir = dir.str();
  Running srv(o);
  auto iso = srv.client().Get("/api/volume/isodose", srv.auth());
  ASSERT_TRUE(iso);
  ASSERT_EQ(iso->status, 200) << iso->body;
  const json lv = json::parse(iso->get_header_value("X-Isodose-Levels-Gy"));
  ASSERT_EQ(lv.size(), 4u) << lv.dump();
  const double expect[] = {30.0, 48.0, 57.0, 63.0};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(lv[i].get<double>(), expect[i], 1e-9) << lv.dump();
}

TEST(UiServerEstimator, ProgressAndNewDose) {
  test::TempDir dir;
  test::write_ui_case(dir.str());
  ui::ServerOptions o;
  o.case_dir = dir.str();
  o.dose_estimator = [](const core::Image& ct, const core::StructureSet& set, const core::Progress& p) {
    core::Image d(ct.geometry(), core::PixelType::Float32);
    const core::Image& ptv = set.get("PTV").mask;
    for (int s = 0; s < 5; ++s) {
      p.update(s / 5.0, "step " + std::to_string(s));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    for (std::size_t n = 0; n < d.num_voxels(); ++n) d.data<float>()[n] = ptv.data<std::uint8_t>()[n] ? 60.f : 5.f;
    return d;
  };
  Running srv(o);
  auto c = srv.client();
  auto r = c.Post("/api/dose/estimate", srv.auth(), "{}", "application/json");
  ASSERT_EQ(r->status, 202) << r->body;
  const int job = json::parse(r->body)["job"];
  std::string state;
  for (int i = 0; i < 100 && state != "done" && state != "failed"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    state = json::parse(c.Get(("/api/jobs/" + std::to_string(job)).c_str(), srv.auth())->body)["state"];
  }
  ASSERT_EQ(state, "done");
  auto info = json::parse(c.Get("/api/case", srv.auth())->body);
  EXPECT_NEAR(info["dose"]["max_gy"].get<double>(), 60.0, 1e-3);
  EXPECT_EQ(info["dose"]["generation"], 1);
}

// SIGKILL during a save (the row written, the commit not yet done) leaves the previous
// version intact and the database usable.
TEST(UiServerCrash, KillDuringSaveKeepsPreviousVersion) {
  test::TempDir dir;
  test::write_ui_case(dir.str());
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    setenv("ISOLINE_SERVE_TEST_SAVE_DELAY_S", "30", 1);
    const std::string bin = test::isoline_bin();
    execl(bin.c_str(), bin.c_str(), "serve", dir.str().c_str(), "--port", "0", (char*)nullptr);
    _exit(127);
  }
  close(out[1]);
  std::string line, all;
  char ch;
  while (read(out[0], &ch, 1) == 1) {
    if (ch != '\n') { line += ch; continue; }
    all += line + "\n";
    if (line.rfind("open ", 0) == 0) break;
    line.clear();
  }
  ASSERT_EQ(line.rfind("open http://127.0.0.1:", 0), 0u) << all;
  const std::string url = line.substr(5);
  const int port = std::stoi(url.substr(url.find(':', 7) + 1));
  const std::string token = url.substr(url.find("token=") + 6);
  std::int64_t ptv_id = 0;
  {
    httplib::Client c("127.0.0.1", port);
    auto r = c.Get("/api/structures", httplib::Headers{{"X-Isoline-Token", token}});
    ASSERT_TRUE(r);
    for (const auto& s : json::parse(r->body))
      if (s["name"] == "PTV") ptv_id = s["id"];
  }
  ASSERT_GT(ptv_id, 0);
  std::thread saver([&] {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(60, 0);
    c.Post(("/api/structures/" + std::to_string(ptv_id) + "/edit").c_str(),
           httplib::Headers{{"X-Isoline-Token", token}}, R"({"op":"margin","mm":5,"base_version":1,"author":"A"})",
           "application/json");
  });
  // Wait until the save is inside its transaction (the row written, not committed).
  const auto marker = dir.path() / "review" / "review.sqlite.test-in-save";
  for (int i = 0; i < 400 && !std::filesystem::exists(marker); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  ASSERT_TRUE(std::filesystem::exists(marker));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status));
  saver.join();
  close(out[0]);

  ui::ReviewDb db((dir.path() / "review" / "review.sqlite").string());
  auto s = db.find("PTV");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->latest.version, 1);
  EXPECT_EQ(db.history(ptv_id).size(), 1u);
  core::Image v1 = db.mask(ptv_id, 1, test::ui_grid());
  core::Image orig = core::read_image(dir.file("masks/PTV.nii.gz"), core::PixelType::UInt8);
  EXPECT_EQ(std::memcmp(v1.raw(), orig.raw(), orig.byte_size()), 0);
  // The database still takes saves.
  EXPECT_EQ(db.save_version(ptv_id, 1, core::expand(v1, core::Margin::uniform(5)), "t", "margin +5 mm"), 2);
}

TEST(UiReviewDb, CompressRoundTrip) {
  core::Image m = test::ui_sphere(test::ui_grid(), 3, -4, 5, 11);
  core::Image r = ui::decompress_mask(ui::compress_mask(m), test::ui_grid());
  EXPECT_EQ(std::memcmp(m.raw(), r.raw(), m.byte_size()), 0);
  EXPECT_THROW(ui::decompress_mask("garbage", test::ui_grid()), core::IoError);
}

// A review database that cannot grow (a full disk; here a file size limit) is an error naming
// the database file and the system's reason, not SQLite's "disk I/O error" alone.
TEST(UiReviewDb, AFullDiskNamesTheDatabaseFileAndTheSystemsReason) {
  test::TempDir dir;
  const std::string file = dir.file("review.sqlite");
  ui::ReviewDb db(file);
  std::string message;
  {
    test::FileSizeLimit lim(64 * 1024);
    try {
      for (int i = 0; i < 5000; ++i) db.set_meta("key " + std::to_string(i), std::string(200, 'x'));
    } catch (const core::IoError& e) {
      message = e.what();
    }
  }
  ASSERT_FALSE(message.empty()) << "5000 values of 200 bytes fitted under 64 KiB";
  EXPECT_NE(message.find("review database: " + file), std::string::npos) << message;
  EXPECT_NE(message.find("File too large"), std::string::npos) << message;
}

TEST(UiEdits, ApplyEditMatchesMaskOps) {
  core::Image m = test::ui_sphere(test::ui_grid(), 0, 0, 0, 10);
  std::string action;
  auto none = [](const std::string&) -> core::Image { throw core::InvalidInput("no other"); };
  core::Image a = ui::apply_edit(m, R"({"op":"margin","mm":5})", none, &action);
  core::Image b = core::expand(m, core::Margin::uniform(5));
  EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.byte_size()), 0);
  EXPECT_EQ(action, "margin +5 mm");
  EXPECT_THROW(ui::apply_edit(m, R"({"op":"margin","mm":-1})", none, &action), core::InvalidInput);
}

}  // namespace

// A body larger than any mask on the CT grid is refused (413) before it is read into memory,
// not held whole and then found not to be a NIfTI image.
TEST_F(UiServer, ABodyLargerThanAnyMaskIsRefusedUnread) {
  auto c = srv->client();
  const std::string big(64u << 20, 'x');
  auto r = c.Put(("/api/structures/" + std::to_string(id_of("Cord")) + "/draft?base_version=1").c_str(),
                 as_reviewer(srv->auth(), "Dr%20Smith"), big, "application/octet-stream");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413) << r->body;
  EXPECT_TRUE(srv->server->db().drafts().empty());
  // A mask on the grid (uncompressed, the largest a client sends) still fits.
  const core::Image ok = srv->server->db().mask(id_of("Cord"), 1, test::ui_grid());
  r = c.Put(("/api/structures/" + std::to_string(id_of("Cord")) + "/draft?base_version=1").c_str(),
            as_reviewer(srv->auth(), "Dr%20Smith"), nifti_bytes_of(ok, dir.file("ok.nii")), "application/octet-stream");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
}

// A reviewer's name is kept cut to 64 bytes; GET /api/drafts?reviewer= with the name as typed
// (longer) still finds that reviewer's drafts, as GET/DELETE .../draft do.
TEST_F(UiServer, DraftsOfAReviewerWithALongNameAreFoundByTheirName) {
  auto c = srv->client();
  const auto id = id_of("Cord");
  const std::string name(70, 'a');
  const core::Image ok = srv->server->db().mask(id, 1, test::ui_grid());
  auto r = c.Put(("/api/structures/" + std::to_string(id) + "/draft?base_version=1").c_str(),
                 as_reviewer(srv->auth(), name), nifti_bytes_of(ok, dir.file("ok.nii")), "application/octet-stream");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(c.Get(("/api/structures/" + std::to_string(id) + "/draft.nii?reviewer=" + name).c_str(), srv->auth())->status,
            200);
  r = c.Get(("/api/drafts?reviewer=" + name).c_str(), srv->auth());
  ASSERT_TRUE(r);
  const auto list = nlohmann::json::parse(r->body);
  ASSERT_EQ(list.size(), 1u) << r->body;
  EXPECT_EQ(list[0]["structure_id"], id);
}


// (defect: a page-leave draft over 64 KB may not arrive) The client sends a draft as a .nii.gz
// gzipped once more, `Content-Encoding: gzip` (deflate alone cannot beat ~1030:1: the empty
// drawing of a 512 x 512 x 160 CT is ~40 KB gzipped once, well under 1 KB twice), so that the
// page-leave request fits the browser's 64 KB keepalive limit. The server takes it, decoding
// the outer layer with the same cap as a plain body: one that inflates beyond it (a zip bomb)
// is a 413 after at most that much is inflated, never held whole. Another Content-Encoding
// (br: unbounded ratio) or one on another request is a 415.
TEST_F(UiServer, ADraftSentGzippedTwiceIsTakenAndOneInflatingBeyondTheCapIs413) {
  auto c = srv->client();
  const auto id = id_of("Cord");
  const std::string path = "/api/structures/" + std::to_string(id) + "/draft?base_version=1&tab=T&seq=1";
  const core::Image m = with_front_line(srv->server->db().mask(id, 1, test::ui_grid()));
  const std::string nii = nifti_bytes_of(m, dir.file("d.nii"));
  auto h = as_reviewer(srv->auth(), "Dr%20Smith");
  h.emplace("Content-Encoding", "gzip");
  auto r = c.Put(path.c_str(), h, gzip_of(gzip_of(nii, 1)), "application/octet-stream");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(draft_voxels(id, "T"), static_cast<std::int64_t>(m.count_nonzero()));
  // 64 MB of zeros in 64 KB: refused at the cap (16 MB here), not inflated whole.
  const std::string bomb = gzip_of(std::string(64u << 20, '\0'));
  ASSERT_LT(bomb.size(), 100000u);
  r = c.Put((path + "2").c_str(), h, bomb, "application/octet-stream");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413) << r->body;
  EXPECT_NE(r->body.find("inflates to more than"), std::string::npos) << r->body;
  EXPECT_EQ(srv->server->db().draft(id, "Dr Smith", "T")->seq, 1);
  // Not gzip (a broken outer layer): 400.
  r = c.Put((path + "3").c_str(), h, "not gzip at all", "application/octet-stream");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  // Brotli, or an encoded body on another request: 415, nothing decoded.
  auto hb = as_reviewer(srv->auth(), "Dr%20Smith");
  hb.emplace("Content-Encoding", "br");
  r = c.Put((path + "4").c_str(), hb, nii, "application/octet-stream");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 415) << r->body;
  r = c.Put(("/api/structures/" + std::to_string(id) + "/mask?base_version=1").c_str(), h, gzip_of(nii),
            "application/octet-stream");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 415) << r->body;
  EXPECT_EQ(version_of("Cord"), 1);
  EXPECT_EQ(srv->server->db().draft(id, "Dr Smith", "T")->seq, 1);
}

// Integer query values are read whole: "5x" is a 400, not 5 (seq, base_version, replaces_seq
// all go through one strict reader).
TEST_F(UiServer, AnIntegerQueryValueWithTrailingTextIs400) {
  const auto id = id_of("Cord");
  const core::Image m = srv->server->db().mask(id, 1, test::ui_grid());
  for (const std::string q : {"base_version=1&tab=T&seq=5x", "base_version=1x&tab=T&seq=5",
                              "base_version=1&tab=T&seq=5&replaces=U&replaces_seq=3x", "base_version=1&tab=T&seq="}) {
    auto r = put_draft(id, q, m, "q.nii");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << q << ": " << r->body;
    EXPECT_NE(r->body.find("must be an integer"), std::string::npos) << r->body;
  }
  EXPECT_TRUE(srv->server->db().drafts().empty());
  auto c = srv->client();
  auto r = c.Delete(("/api/structures/" + std::to_string(id) + "/draft?tab=T&seq=2y").c_str(),
                    as_reviewer(srv->auth(), "Dr%20Smith"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
}

// (defect: a draft discarded between the two reads of GET .../draft.nii was a 400) The mask is
// read once: a draft that is gone is "none" (the server's 404), never an InvalidInput (400).
TEST_F(UiServer, ADraftMaskThatIsGoneIsNoneNotAnError) {
  auto& db = srv->server->db();
  const auto id = id_of("Cord");
  const core::Image m = with_side_line(db.mask(id, 1, test::ui_grid()));
  put_draft_ok(id, "base_version=1&tab=T&seq=1", m, "g.nii");
  auto got = db.draft_mask(id, "Dr Smith", "T", test::ui_grid());
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->count_nonzero(), m.count_nonzero());
  ASSERT_TRUE(db.discard_draft(id, "Dr Smith", "T"));
  EXPECT_FALSE(db.draft_mask(id, "Dr Smith", "T", test::ui_grid()).has_value());
  auto c = srv->client();
  auto r = c.Get(("/api/structures/" + std::to_string(id) + "/draft.nii?reviewer=Dr%20Smith&tab=T").c_str(), srv->auth());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404) << r->body;
}
