// The review web server (see server.h).
#include "isoline/ui/server.h"
#include "isoline/core/dose_style.h"

#include <httplib.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <zlib.h>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "approve.h"
#include "isoline/core/atomic_file.h"
#include "isoline/core/error.h"
#include "isoline/core/text.h"
#include "isoline/core/io.h"
#include "isoline/core/mask_ops.h"
#include "isoline/planning/dvh.h"
#include "isoline/rtstruct/ct_series.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace isoline::ui {

namespace {

constexpr const char* kOp = "serve";

std::string random_token() {
  std::random_device rd;
  static const char* hex = "0123456789abcdef";
  std::string t;
  for (int i = 0; i < 32; ++i) t += hex[rd() % 16];
  return t;
}

// Text from a request (header, query) that will be stored and sent back as JSON: valid UTF-8
// only, or the one bad request is a 400 instead of every later answer a 500.
std::string request_text(const std::string& v, const char* what) {
  if (!isoline::core::valid_utf8(v))
    isoline::core::fail<isoline::core::InvalidInput>("review server", what,
                                                     "not valid UTF-8 (send it percent-encoded UTF-8)");
  return v;
}

// The image size a NIfTI-1 or NIfTI-2 body (plain or gzipped) declares, read from its header
// alone (for gzip, only the header's bytes are inflated), so that a mask of another size is
// refused before any image is decompressed or allocated. nullopt when the body does not start
// with a NIfTI header. (Not core's nifti_sizes, io_itk.cpp: that one reads a file through
// gzopen, inflating all of it, for the bytes a header promises against those present; this one
// reads a body in memory, inflating only the header, for the sizes it declares.)
std::optional<std::array<std::int64_t, 3>> nifti_declared_size(const std::string& body, bool gz) {
  std::string head;
  if (!gz) {
    head = body.substr(0, 540);
  } else {
    z_stream z{};
    if (inflateInit2(&z, 15 + 16) != Z_OK) return std::nullopt;
    head.resize(540);
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(body.data()));
    z.avail_in = static_cast<uInt>(body.size());
    z.next_out = reinterpret_cast<Bytef*>(head.data());
    z.avail_out = static_cast<uInt>(head.size());
    int rc = Z_OK;
    while (z.avail_out > 0 && rc == Z_OK) rc = inflate(&z, Z_NO_FLUSH);
    head.resize(head.size() - z.avail_out);
    inflateEnd(&z);
  }
  const auto get = [&](std::size_t at, auto zero, bool swap) {
    decltype(zero) v{};
    std::memcpy(&v, head.data() + at, sizeof v);
    if (swap) {
      auto* b = reinterpret_cast<unsigned char*>(&v);
      std::reverse(b, b + sizeof v);
    }
    return v;
  };
  if (head.size() < 348) return std::nullopt;
  for (bool swap : {false, true}) {
    const std::int32_t sizeof_hdr = get(0, std::int32_t{}, swap);
    std::array<std::int64_t, 3> n{};
    if (sizeof_hdr == 348) {
      for (int i = 0; i < 3; ++i) n[static_cast<std::size_t>(i)] = get(42 + 2 * i, std::int16_t{}, swap);
      if (get(40, std::int16_t{}, swap) < 3) n[2] = 1;  // dim[0]: a 2-D image has one slice
      if (get(40, std::int16_t{}, swap) < 2) n[1] = 1;
      return n;
    }
    if (sizeof_hdr == 540 && head.size() >= 540) {
      for (int i = 0; i < 3; ++i) n[static_cast<std::size_t>(i)] = get(24 + 8 * i, std::int64_t{}, swap);
      if (get(16, std::int64_t{}, swap) < 3) n[2] = 1;
      if (get(16, std::int64_t{}, swap) < 2) n[1] = 1;
      return n;
    }
  }
  return std::nullopt;
}

std::string trimmed(const std::string& s) {
  const char* ws = " \t\r\n\f\v";
  const auto b = s.find_first_not_of(ws);
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) d |= static_cast<unsigned char>(a[i] ^ b[i]);
  return d == 0;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) core::fail<core::IoError>(kOp, path, "cannot read");
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string find_image(const fs::path& dir, const std::string& stem) {
  for (const char* ext : {".nii.gz", ".nii", ".nrrd", ".mha", ".mhd"}) {
    fs::path p = dir / (stem + ext);
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  return {};
}

std::string extension_of(const std::string& path) {
  for (const char* ext : {".nii.gz", ".nii", ".nrrd", ".mha", ".mhd"}) {
    const std::string e(ext);
    if (path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0) return e;
  }
  return fs::path(path).extension().string();
}

const char* content_type(const std::string& path) {
  const std::string e = fs::path(path).extension().string();
  if (e == ".html") return "text/html; charset=utf-8";
  if (e == ".js" || e == ".mjs") return "application/javascript";
  if (e == ".css") return "text/css";
  if (e == ".png") return "image/png";
  if (e == ".svg") return "image/svg+xml";
  if (e == ".json") return "application/json";
  if (e == ".map") return "application/json";
  return "application/octet-stream";
}

json color_json(const core::Color& c) { return json::array({c.r, c.g, c.b}); }

json version_json(const VersionInfo& v) {
  return {{"structure_id", v.structure_id}, {"version", v.version}, {"name", v.name},
          {"author", v.author}, {"time", v.time}, {"action", v.action}, {"deleted", v.deleted},
          {"voxels", v.voxels}, {"volume_cc", v.volume_cc}};
}

json structure_json(const StructureInfo& s) {
  // Quality flags: the description lists them separated by ';' (contouring's summary()).
  json flags = quality_flags(s.description);
  return {{"id", s.id}, {"name", s.latest.name}, {"type", s.type}, {"color", color_json(s.color)},
          {"description", s.description}, {"flags", flags}, {"origin", s.origin},
          {"version", s.latest.version}, {"author", s.latest.author}, {"time", s.latest.time},
          {"action", s.latest.action}, {"voxels", s.latest.voxels}, {"volume_cc", s.latest.volume_cc}};
}

json flag_check_json(const FlagCheck& c) {
  return {{"structure_id", c.structure_id}, {"version", c.version}, {"flags", c.flags},
          {"author", c.author}, {"time", c.time}, {"checked", c.checked}};
}

struct StructureMeta {
  std::string type;
  std::optional<core::Color> color;
  std::string description;
  std::string origin;  ///< "given": drawn by someone, not by Isoline's model ("" = automatic)
};

/// structures.json: {"<name>": {"type":..., "color":[r,g,b], "description":..., "flags":[...],
/// "origin": "given"}} ("given": not an auto-contour, e.g. the physician's targets of `run
/// --targets`; approved as MANUAL and left out of the untouched automatic RT-STRUCT)
/// or a list of objects with "name"; ground_truth.json and masks/quality.json (written by
/// `isoline contour` and `isoline run` beside their masks): the same under "structures". Later
/// files override earlier ones.
std::map<std::string, StructureMeta> read_metadata(const fs::path& dir) {
  std::map<std::string, StructureMeta> out;
  for (const char* file : {"masks/quality.json", "ground_truth.json", "structures.json"}) {
    fs::path p = dir / file;
    std::error_code ec;
    if (!fs::is_regular_file(p, ec)) continue;
    json j;
    try {
      j = json::parse(read_file(p.string()));
    } catch (const json::exception& e) {
      core::fail<core::InvalidInput>(kOp, p.string(), "not valid JSON: " + core::json_error(e.what()));
    }
    if (std::string(file) != "structures.json") {
      if (!j.contains("structures")) continue;
      j = j["structures"];
    }
    auto take = [&](const std::string& name, const json& e) {
      if (!e.is_object()) return;
      StructureMeta& m = out[name];
      if (e.contains("type") && e["type"].is_string()) m.type = e["type"];
      if (e.contains("color") && e["color"].is_array() && e["color"].size() == 3) {
        core::Color c;
        c.r = static_cast<std::uint8_t>(e["color"][0].get<int>());
        c.g = static_cast<std::uint8_t>(e["color"][1].get<int>());
        c.b = static_cast<std::uint8_t>(e["color"][2].get<int>());
        m.color = c;
      }
      if (e.contains("description") && e["description"].is_string()) m.description = e["description"];
      if (e.contains("origin") && e["origin"].is_string()) {
        const std::string o = e["origin"];
        if (o != "given" && o != "auto")
          core::fail<core::InvalidInput>(kOp, p.string(), name + ": origin '" + o + "' (given or auto)");
        m.origin = o == "given" ? o : "";
      }
      if (e.contains("flags") && e["flags"].is_array()) {
        std::string d;
        for (const auto& f : e["flags"])
          if (f.is_string()) d += (d.empty() ? "" : "; ") + f.get<std::string>();
        if (!d.empty()) m.description = d;
      }
    };
    if (j.is_object()) {
      for (auto it = j.begin(); it != j.end(); ++it) take(it.key(), it.value());
    } else if (j.is_array()) {
      for (const auto& e : j)
        if (e.is_object() && e.contains("name") && e["name"].is_string()) take(e["name"], e);
    }
  }
  return out;
}

/// A request about a structure that does not exist: 404 with the message.
struct DraftNotFound : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Job {
  std::string state = "running";  // running, done, failed
  double fraction = 0;
  std::string stage, detail, error;
};

}  // namespace

struct ReviewServer::Impl {
  ServerOptions opt;
  fs::path case_dir, review_dir, tmp_dir, ui_dir;
  std::string ct_path;       // the CT file served; empty for a DICOM CT (ct_nifti)
  std::string dicom_ct;      // ServerOptions::ct_path when a DICOM series: what the approval references
  std::mutex ct_mu;
  std::string ct_nifti;      // a DICOM CT as NIfTI for the browser, made at the first request
  core::Geometry grid;
  std::size_t body_cap = 0;  // the largest request body read (a mask on the grid, uncompressed)
  core::Image ct;
  std::unique_ptr<ReviewDb> db;
  httplib::Server http;
  int port = 0;
  std::atomic<std::uint64_t> tmp_counter{0};

  std::mutex dose_mu;
  core::Image dose;          // float32 Gy, or empty
  std::string dose_path;     // file served for the dose
  std::uint64_t dose_generation = 0;
  std::string isodose_bytes;  // cached NIfTI of isodose lines
  std::vector<double> isodose_levels_gy;
  double isodose_prescription_gy = 0;  ///< what the isodose percentages refer to

  std::mutex cache_mu;
  std::map<std::pair<std::int64_t, std::int64_t>, std::shared_ptr<const std::string>> nifti_cache;

  std::mutex jobs_mu;
  std::map<int, std::shared_ptr<Job>> jobs;
  std::vector<std::thread> job_threads;
  int next_job = 1;

  std::string tmp_path(const std::string& ext) {
    return (tmp_dir / ("t" + std::to_string(::getpid()) + "_" + std::to_string(tmp_counter++) + ext)).string();
  }

  /// NIfTI bytes of an image, through core::write_image (ITK).
  std::string nifti_bytes(const core::Image& img, const std::string& ext = ".nii") {
    const std::string p = tmp_path(ext);
    core::write_image(img, p);
    std::string b = read_file(p);
    std::error_code ec;
    fs::remove(p, ec);
    return b;
  }

  std::shared_ptr<const std::string> mask_nifti(std::int64_t id, std::int64_t version) {
    if (version <= 0) version = db->get(id).latest.version;
    auto key = std::make_pair(id, version);
    {
      std::lock_guard<std::mutex> l(cache_mu);
      auto it = nifti_cache.find(key);
      if (it != nifti_cache.end()) return it->second;
    }
    auto bytes = std::make_shared<const std::string>(nifti_bytes(db->mask(id, version, grid)));
    std::lock_guard<std::mutex> l(cache_mu);
    if (nifti_cache.size() > 48) nifti_cache.clear();
    nifti_cache[key] = bytes;
    return bytes;
  }

  /// `resample`: an automatic mask on another grid is resampled onto the CT (nearest); an
  /// upload must be on the CT grid (a shifted or flipped header would move or empty it).
  core::Image conform(core::Image m, const std::string& what, bool resample = true) {
    if (m.pixel_type() != core::PixelType::UInt8) m = m.cast(core::PixelType::UInt8);
    if (!m.geometry().same_grid(grid, 1e-3)) {
      if (m.geometry().size == grid.size && m.geometry().same_grid(grid, 0.05)) {
        m.set_geometry(grid);  // float rounding in a header written by the browser
      } else if (resample) {
        m = core::resample(m, grid, core::Interpolation::Nearest);
      } else {
        core::fail<core::InvalidInput>(kOp, what,
                                       "not on the CT grid (" + m.geometry().summary() + "; the CT: " +
                                           grid.summary() + ")");
      }
    }
    auto* d = m.data<std::uint8_t>();
    for (std::size_t i = 0, n = m.num_voxels(); i < n; ++i) d[i] = d[i] ? 1 : 0;
    (void)what;
    return m;
  }

  void load_case() {
    std::error_code ec;
    if (!fs::exists(opt.case_dir, ec))
      core::fail<core::IoError>(kOp, opt.case_dir, "does not exist (give the review case directory: ct.nii.gz, masks/)");
    if (!fs::is_directory(opt.case_dir, ec))
      core::fail<core::IoError>(kOp, opt.case_dir, "not a directory (give the review case directory: ct.nii.gz, masks/)");
    case_dir = fs::canonical(opt.case_dir);
    ct_path = find_image(case_dir, "ct");
    if (ct_path.empty() && !opt.ct_path.empty()) {
      open_run_ct(opt.ct_path);
    } else if (ct_path.empty()) {
      // An `isoline run` output (RS.dcm, masks/, dose.nii.gz, metrics.json) whose CT the caller
      // did not find: say how to make a review case from it (docs/ui.md).
      const bool run_output =
          (fs::is_regular_file(case_dir / "RS.dcm", ec) || fs::is_regular_file(case_dir / "metrics.json", ec)) &&
          fs::is_directory(case_dir / "masks", ec);
      if (run_output && fs::is_directory(case_dir / "CT", ec))
        core::fail<core::InvalidInput>(kOp, case_dir.string(),
                                       "an `isoline run` output, not a review case (no ct.nii.gz); " +
                                           make_case_hint((case_dir / "CT").string()));
      if (run_output)
        core::fail<core::InvalidInput>(kOp, case_dir.string(),
                                       "an `isoline run` output without its CT (no CT/, and metrics.json names no CT "
                                       "that exists), not a review case (no ct.nii.gz); " +
                                           make_case_hint(""));
      core::fail<core::InvalidInput>(kOp, case_dir.string(),
                                     "no ct.nii.gz (or ct.nii/.nrrd/.mha) in the case directory: not a review case "
                                     "(docs/ui.md, Case directory)");
    } else {
      ct = core::read_image(ct_path);
    }
    grid = ct.geometry();
    check_dicom_ct();
    review_dir = case_dir / "review";
    core::ensure_directory(review_dir.string(), kOp);
    tmp_dir = review_dir / "tmp";
    core::ensure_directory(tmp_dir.string(), kOp);
    for (auto& e : fs::directory_iterator(tmp_dir, ec)) fs::remove(e.path(), ec);  // leftovers of a crash
    const std::string dp = find_image(case_dir, "dose");
    if (!dp.empty()) {
      dose = core::read_image(dp, core::PixelType::Float32);
      dose_path = dp;
    }
    const std::string est = find_image(review_dir, "dose_estimated");
    if (!est.empty()) {
      dose = core::read_image(est, core::PixelType::Float32);
      dose_path = est;
    }
    ui_dir = opt.ui_dir.empty() ? fs::path() : fs::path(opt.ui_dir);
    if (!ui_dir.empty() && fs::is_directory(ui_dir, ec)) ui_dir = fs::canonical(ui_dir);

    const std::string dbp = opt.db_path.empty() ? (review_dir / "review.sqlite").string() : opt.db_path;
    db = std::make_unique<ReviewDb>(dbp);
    if (!db->meta("imported")) import_automatic();
  }

  /// "make one beside it: mkdir -p CASE && isoline convert CT --out CASE/ct.nii.gz && ...".
  /// `ct_dir` empty: the DICOM CT the run was given, unknown here.
  std::string make_case_hint(const std::string& ct_dir) const {
    const std::string d = case_dir.string();
    const std::string c = ct_dir.empty() ? "DICOM_CT" : ct_dir;
    return "make a review case beside it: mkdir -p CASE && isoline convert " + c + " --out CASE/ct.nii.gz && cp -r " +
           d + "/masks " + d + "/dose.nii.gz CASE/ && cp -r " + c + " CASE/dicom" +
           (ct_dir.empty() ? " (DICOM_CT: the DICOM CT series the run was given)" : "") +
           ", then isoline serve CASE (docs/ui.md, Case directory)";
  }

  /// The CT of an `isoline run` output (ServerOptions::ct_path): an image file, or a DICOM
  /// series that the approval then references and that the browser gets as NIfTI.
  void open_run_ct(const std::string& path) {
    std::error_code ec;
    if (!fs::exists(path, ec))
      core::fail<core::IoError>(kOp, case_dir.string(),
                                "the CT this `isoline run` output was made from, " + path +
                                    " (named in its metrics.json), no longer exists: put it back there, or " +
                                    make_case_hint(""));
    if (core::is_image_path(path)) {
      ct_path = path;
      ct = core::read_image(path);
      return;
    }
    try {
      ct = rtstruct::read_ct_series(path).image;
    } catch (const core::Error& e) {
      core::fail<core::InvalidInput>(kOp, path,
                                     std::string("the CT of this `isoline run` output cannot be read: ") + e.what());
    }
    dicom_ct = path;
  }

  /// The CT as the browser reads it: the case's file, or a DICOM CT written as NIfTI (once).
  std::string ct_bytes() {
    if (dicom_ct.empty()) return read_file(ct_path);
    std::lock_guard<std::mutex> l(ct_mu);
    if (ct_nifti.empty()) ct_nifti = nifti_bytes(ct, ".nii.gz");
    return ct_nifti;
  }

  /// The approved RT-STRUCT must reference the case's DICOM CT (dicom/): read it now, so that
  /// an unreadable file there stops the server with the file named instead of failing the
  /// approval at the end of the review.
  void check_dicom_ct() {
    if (!dicom_ct.empty()) return;  // the run output's DICOM CT: read already
    std::error_code ec;
    const fs::path dicom = case_dir / "dicom";
    if (!fs::is_directory(dicom, ec)) return;
    try {
      (void)read_reference_ct(dicom.string());
    } catch (const core::Error& e) {
      core::fail<core::InvalidInput>(kOp, dicom.string(),
                                     std::string("the DICOM CT series the approved RT-STRUCT must reference cannot be "
                                                 "read, so approval would fail: ") +
                                         e.what() + " (replace or remove that file; dicom/ should hold only the CT series)");
    }
  }

  /// The case's access token, kept in review/token (owner-only) so that a restarted server
  /// accepts the tabs still open on it: their unsaved paint can be saved once it is back.
  std::string case_token() {
    const fs::path f = review_dir / "token";
    std::error_code ec;
    if (fs::is_regular_file(f, ec)) {
      std::string t = read_file(f.string());
      while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
      if (t.size() == 32 && t.find_first_not_of("0123456789abcdef") == std::string::npos) return t;
    }
    const std::string t = random_token();
    core::write_file_atomic(f.string(), t + "\n", kOp);
    fs::permissions(f, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace, ec);
    return t;
  }

  /// The port of the last server on this case (review/port), 0 when none is recorded. A
  /// server started without --port binds it again when it is free, so that a tab left open
  /// (unsaved paint) reaches the restarted server at the same address.
  int last_port() const {
    const fs::path f = review_dir / "port";
    std::error_code ec;
    if (!fs::is_regular_file(f, ec)) return 0;
    try {
      const long p = std::stol(read_file(f.string()));
      return p > 0 && p <= 65535 ? static_cast<int>(p) : 0;
    } catch (const std::exception&) {
      return 0;
    }
  }
  void remember_port() const {
    try {
      core::write_file_atomic((review_dir / "port").string(), std::to_string(port) + "\n", kOp);
    } catch (const std::exception&) {
      // A convenience only: the server works without it (a restart then picks another port).
    }
  }

  void import_automatic() {
    const auto meta = read_metadata(case_dir);
    const fs::path masks = case_dir / "masks";
    std::error_code ec;
    std::vector<std::string> files;
    if (fs::is_directory(masks, ec))
      for (auto& e : fs::directory_iterator(masks, ec))
        if (e.is_regular_file() && core::is_image_path(e.path().string())) files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    std::size_t index = 0;
    for (const auto& f : files) {
      std::string name = fs::path(f).filename().string();
      name = name.substr(0, name.size() - extension_of(name).size());
      if (db->find(name)) continue;
      core::Image m = conform(core::read_image(f, core::PixelType::UInt8), f);
      std::string type = core::to_dicom_string(core::guess_structure_type(name));
      core::Color color = core::default_color(name, index);
      std::string description;
      bool given = false;
      auto it = meta.find(name);
      if (it != meta.end()) {
        if (!it->second.type.empty()) type = it->second.type;
        if (it->second.color) color = *it->second.color;
        description = it->second.description;
        given = it->second.origin == "given";
      }
      if (type.empty()) type = "ORGAN";
      if (given)
        db->create_structure(name, type, color, description, "given", m, "case", "import (given)");
      else
        db->create_structure(name, type, color, description, "auto", m, "auto", "import (automatic)");
      ++index;
    }
    db->set_meta("imported", "1");
    db->set_meta("case_dir", case_dir.string());
  }

  /// The name the request gives for who made it (JSON "author", else the header
  /// X-Isoline-Author), trimmed; "" when it gives none. A name given but blank after trimming
  /// is a 400: every version and approval records a real name.
  static std::string named_author(const httplib::Request& req, const json* body) {
    if (body && body->contains("author")) {
      if (!(*body)["author"].is_string()) core::fail<core::InvalidInput>(kOp, "author", "must be a string (a name)");
      const std::string a = trimmed((*body)["author"].get<std::string>());
      if (a.empty()) core::fail<core::InvalidInput>(kOp, "author", "blank: give the name of the person making the change");
      return core::utf8_prefix(a, 64);
    }
    // The client sends the name percent-encoded (a header carries bytes, not UTF-8 text).
    if (req.has_header("X-Isoline-Author")) {
      const std::string a = trimmed(request_text(
          httplib::detail::decode_url(req.get_header_value("X-Isoline-Author"), false), "X-Isoline-Author"));
      if (a.empty()) core::fail<core::InvalidInput>(kOp, "author", "blank: give the name of the person making the change");
      return core::utf8_prefix(a, 64);
    }
    return {};
  }

  /// Author of a new version: the name the request gives, else --author, else "unnamed"
  /// (a script calling the API without a name; the browser client always sends the
  /// reviewer's name and refuses to save without one).
  std::string author_of(const httplib::Request& req, const json* body) {
    std::string a = named_author(req, body);
    if (a.empty()) a = trimmed(opt.author);
    return a.empty() ? std::string("unnamed") : a;
  }

  static json parse_body(const httplib::Request& req) {
    json j;
    try {
      j = json::parse(req.body.empty() ? std::string("{}") : req.body);
    } catch (const std::exception& e) {
      core::fail<core::InvalidInput>(kOp, "payload", "not valid JSON: " + core::json_error(e.what()));
    }
    if (!j.is_object()) core::fail<core::InvalidInput>(kOp, "payload", "must be a JSON object");
    return j;
  }

  static std::int64_t base_version(const json& j, const httplib::Request& req) {
    if (j.contains("base_version")) {
      if (!j["base_version"].is_number_integer())
        core::fail<core::InvalidInput>(kOp, "base_version", "must be an integer");
      return j["base_version"].get<std::int64_t>();
    }
    if (auto b = query_int(req, "base_version", kOp)) return *b;
    core::fail<core::InvalidInput>(kOp, "base_version", "missing: every change names the version it was based on");
  }

  /// `v` as an integer, read whole ("5x", "", " 5" are a 400 for `op` naming `name`, never 5).
  static std::int64_t strict_int(const std::string& v, const std::string& op, const char* name) {
    try {
      std::size_t used = 0;
      if (!v.empty() && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9'))) {
        const std::int64_t n = std::stoll(v, &used);
        if (used == v.size()) return n;
      }
    } catch (...) {
      // (out of range: as not a number)
    }
    core::fail<core::InvalidInput>(op, name, "must be an integer");
  }

  /// An integer query parameter (`?name=12`); nullopt when absent, a 400 for `op` when not a number.
  static std::optional<std::int64_t> query_int(const httplib::Request& req, const char* name, const std::string& op) {
    if (!req.has_param(name)) return std::nullopt;
    return strict_int(req.get_param_value(name), op, name);
  }

  static std::int64_t id_of(const httplib::Request& req) {
    try {
      return std::stoll(req.matches[1].str());
    } catch (...) {
      core::fail<core::InvalidInput>(kOp, "structure", "bad id");
    }
  }

  StructureInfo live(std::int64_t id) {
    StructureInfo s = db->get(id);
    if (s.latest.deleted) core::fail<core::InvalidInput>(kOp, s.latest.name, "the structure was deleted");
    return s;
  }

  /// `op` names what was refused ("save structure", "approve"): the client shows the text.
  void check_base(const StructureInfo& s, std::int64_t base, const char* op = "save structure") {
    if (base == s.latest.version) return;
    if (std::string(op) == "approve")
      throw Conflict("approve: " + s.latest.name + ": conflict: changed by " + s.latest.author + " (" +
                         s.latest.action + ", version " + std::to_string(s.latest.version) +
                         ") after this page loaded version " + std::to_string(base) +
                         "; reload and review it before approving",
                     s.latest.version, s.id, base);
    throw Conflict(std::string(op) + ": " + s.latest.name + ": conflict: based on version " + std::to_string(base) +
                       " but version " + std::to_string(s.latest.version) + " was saved meanwhile by " +
                       s.latest.author + " (" + s.latest.action + "); reload to see it",
                   s.latest.version, s.id, base);
  }

  // The version that made each structure's current contour when it is no longer version 1's
  // (ReviewDb::contour_edit), per (id, latest version): versions never change once saved.
  std::mutex edit_mu;
  std::map<std::pair<std::int64_t, std::int64_t>, std::optional<VersionInfo>> edit_cache;

  std::optional<VersionInfo> contour_edit(const StructureInfo& s) {
    const auto key = std::make_pair(s.id, s.latest.version);
    {
      std::lock_guard<std::mutex> l(edit_mu);
      auto it = edit_cache.find(key);
      if (it != edit_cache.end()) return it->second;
    }
    auto e = s.latest.version > 1 ? db->contour_edit(s.id) : std::nullopt;
    std::lock_guard<std::mutex> l(edit_mu);
    if (edit_cache.size() > 4096) edit_cache.clear();
    edit_cache[key] = e;
    return e;
  }

  /// A mask uploaded as NIfTI bytes (NiiVue's drawing; .nii or .nii.gz): on the CT grid, or a
  /// 400 naming the problem (`op` says which request: "serve" for a save, "draft").
  core::Image uploaded_mask(const std::string& body, const std::string& op) {
    // (a gzipped mask of a few strokes can be smaller than a NIfTI header: 348 bytes)
    const bool gz = body.size() >= 18 && static_cast<unsigned char>(body[0]) == 0x1f &&
                    static_cast<unsigned char>(body[1]) == 0x8b;
    // The size the header declares is checked first: an image of another size (say a small
    // gzip that inflates to gigabytes) is never decompressed or allocated, and the image read
    // below has that size.
    const auto declared = nifti_declared_size(body, gz);
    if (!declared) core::fail<core::InvalidInput>(op, "mask", "body is not a NIfTI image (no NIfTI-1/2 header)");
    if ((*declared)[0] != grid.size[0] || (*declared)[1] != grid.size[1] || (*declared)[2] != grid.size[2])
      core::fail<core::InvalidInput>(op, "mask",
                                     "the uploaded mask is not on the CT grid (its header declares " +
                                         std::to_string((*declared)[0]) + " x " + std::to_string((*declared)[1]) +
                                         " x " + std::to_string((*declared)[2]) + " voxels; the CT: " + grid.summary() +
                                         ")");
    const std::string p = tmp_path(gz ? ".nii.gz" : ".nii");
    try {  // a full disk is the server's problem (500 naming it), not a bad mask
      core::OutputFile f(p, op);
      f.write(body);
      f.close();
    } catch (...) {
      std::error_code ec;
      fs::remove(p, ec);
      throw;
    }
    core::Image m;
    try {
      m = core::read_image(p, core::PixelType::UInt8);
    } catch (const core::Error& e) {
      std::error_code ec;
      fs::remove(p, ec);
      core::fail<core::InvalidInput>(op, "mask", std::string("cannot read the uploaded NIfTI: ") + e.what());
    }
    std::error_code ec;
    fs::remove(p, ec);
    if (!m.geometry().same_grid(grid, 0.05))
      core::fail<core::InvalidInput>(op, "mask",
                                     "the uploaded mask is not on the CT grid: its header differs (" +
                                         m.geometry().summary() + "; the CT: " + grid.summary() +
                                         "); a shifted or flipped mask is never resampled");
    return conform(m, "uploaded mask", /*resample=*/false);
  }

  /// The structure a draft request names: 404 "draft: structure 99: no such structure" when
  /// unknown (a deleted structure keeps its drafts: the drawing is not lost).
  StructureInfo draft_structure(const httplib::Request& req) {
    const std::int64_t id = id_of(req);
    for (const auto& st : db->structures(/*include_deleted=*/true))
      if (st.id == id) return st;
    throw DraftNotFound("draft: structure " + std::to_string(id) + ": no such structure (GET /api/structures lists them)");
  }

  /// Whose draft: `?reviewer=NAME`, else the request's author (X-Isoline-Author, the name the
  /// reviewer typed); a draft is kept per reviewer, so a request without a name is a 400.
  std::string draft_reviewer(const httplib::Request& req) {
    std::string who;
    if (req.has_param("reviewer")) {
      who = trimmed(request_text(req.get_param_value("reviewer"), "reviewer"));
      if (who.empty()) core::fail<core::InvalidInput>("draft", "reviewer", "blank: give the reviewer's name");
    } else {
      who = named_author(req, nullptr);
    }
    if (who.empty())
      core::fail<core::InvalidInput>("draft", "reviewer",
                                     "missing: a draft is kept per reviewer; send the name (X-Isoline-Author header "
                                     "or ?reviewer=NAME; in the browser: type your name in the Reviewer box)");
    return core::utf8_prefix(who, 64);
  }

  /// A tab's name in a draft request: at most 64 bytes of UTF-8, refused beyond (not cut: two
  /// tabs whose names begin alike would share one draft, the second replacing the first's).
  static std::string tab_name(const std::string& v, const char* what) {
    std::string t = request_text(v, what);
    if (t.size() > 64)
      core::fail<core::InvalidInput>("draft", what, "at most 64 bytes, got " + std::to_string(t.size()));
    return t;
  }

  /// The tab a draft request comes from (`?tab=`); "" when it names none.
  static std::string draft_tab(const httplib::Request& req) {
    return req.has_param("tab") ? tab_name(req.get_param_value("tab"), "tab") : std::string();
  }

  /// The other tabs' drafts a drawing was restored from (`?replaces=T&replaces_seq=N`, one
  /// pair per tab, repeated; N: the draft's change number when it was read, "seq" in the
  /// drafts list): a draft put or a save of that drawing removes them in its transaction,
  /// unless written since (at most kDraftLimit).
  static std::vector<DraftRef> draft_replaces(const httplib::Request& req) {
    std::vector<DraftRef> out;
    const std::size_t n = req.get_param_value_count("replaces");
    if (n > static_cast<std::size_t>(ReviewDb::kDraftLimit))
      core::fail<core::InvalidInput>("draft", "replaces", "more than " + std::to_string(ReviewDb::kDraftLimit) + " tabs");
    if (req.get_param_value_count("replaces_seq") != n)
      core::fail<core::InvalidInput>("draft", "replaces_seq",
                                     "one per replaces (the change number of the draft restored, its \"seq\"): got " +
                                         std::to_string(req.get_param_value_count("replaces_seq")) + " for " +
                                         std::to_string(n));
    for (std::size_t i = 0; i < n; ++i) {
      DraftRef r;
      r.tab = tab_name(req.get_param_value("replaces", i), "replaces");
      r.seq = strict_int(req.get_param_value("replaces_seq", i), "draft", "replaces_seq");
      out.push_back(std::move(r));
    }
    return out;
  }

  /// Which of `who`'s drafts of `st` a GET or DELETE means: the tab it names (`?tab=`), else
  /// their only draft of it; nullopt when they have none; a 400 when they have several (from
  /// several tabs or windows) and the request does not say which.
  std::optional<std::string> which_draft(const httplib::Request& req, const StructureInfo& st, const std::string& who) {
    if (req.has_param("tab")) return draft_tab(req);
    const auto mine = db->drafts_of(st.id, who);
    if (mine.empty()) return std::nullopt;
    if (mine.size() > 1)
      core::fail<core::InvalidInput>("draft", st.latest.name,
                                     who + " has " + std::to_string(mine.size()) +
                                         " unsaved drawings of it (from different tabs or windows): name one with "
                                         "?tab= (GET /api/drafts lists them with their tab)");
    return mine.front().tab;
  }

  json draft_json(const DraftInfo& d) {
    json j = {{"structure_id", d.structure_id}, {"reviewer", d.reviewer}, {"tab", d.tab}, {"seq", d.seq},
              {"base_version", d.base_version}, {"time", d.time}, {"action", d.action}, {"voxels", d.voxels},
              {"volume_cc", d.volume_cc}};
    try {
      const StructureInfo st = db->get(d.structure_id);
      j["name"] = st.latest.name;
      j["latest_version"] = st.latest.version;
      j["deleted"] = st.latest.deleted;
    } catch (const core::Error&) {
      j["name"] = "";
    }
    return j;
  }

  /// A structure as the client sees it, with the state of its quality flags, which describe
  /// the automatic (or given) contour: "open" (to check), "checked" (a reviewer marked them,
  /// `flags_check` says who and when), "edited" (the contour is no longer that one:
  /// `flags_edited_since` names the version), "none" (no flags).
  json structure_out(const StructureInfo& s) {
    json j = structure_json(s);
    if (j["flags"].empty()) {
      j["flags_state"] = "none";
      return j;
    }
    const auto check = db->flag_check(s.id);
    const auto edit = contour_edit(s);
    if (check) j["flags_check"] = flag_check_json(*check);
    if (edit)
      j["flags_edited_since"] = {{"version", edit->version}, {"author", edit->author}, {"action", edit->action},
                                 {"time", edit->time}};
    j["flags_state"] = edit ? "edited" : (check && check->checked) ? "checked" : "open";
    return j;
  }

  core::Image other_mask(const std::string& name) {
    auto o = db->find(name);
    if (!o) core::fail<core::InvalidInput>(kOp, name, "no structure with this name");
    return db->mask(o->id, 0, grid);
  }

  json case_json() {
    json j;
    j["case"] = case_dir.filename().string();
    j["ct"] = {{"url", "/api/volume/ct"}, {"name", dicom_ct.empty() ? "ct" + extension_of(ct_path) : "ct.nii.gz"}};
    const auto& g = grid;
    j["grid"] = {{"size", g.size}, {"spacing_mm", g.spacing}, {"origin_mm", g.origin}, {"direction", g.direction}};
    {
      std::lock_guard<std::mutex> l(dose_mu);
      if (!dose.empty()) {
        auto mm = dose.min_max();
        j["dose"] = {{"url", "/api/volume/dose"}, {"name", "dose" + extension_of(dose_path)},
                     {"max_gy", mm.second}, {"generation", dose_generation},
                     {"isodose_url", "/api/volume/isodose"}, {"prescription_gy", prescription_gy()}};
        // the colours (core/include/isoline/core/dose_style.h, the report's too): isodose lines and colourwash
        json lines = json::array(), wash = json::array();
        for (const auto& l : core::kIsodoseLines) lines.push_back({{"fraction", l.fraction}, {"color", color_json(l.color)}});
        for (const auto& w : core::kDoseWash) wash.push_back({{"fraction", w.fraction}, {"color", color_json(w.color)}});
        j["dose"]["isodose_lines"] = lines;
        j["dose"]["wash"] = wash;
      } else {
        j["dose"] = nullptr;
      }
    }
    j["dose_estimator"] = static_cast<bool>(opt.dose_estimator);
    j["author"] = opt.author;
    json list = json::array();
    for (const auto& s : db->structures()) list.push_back(structure_out(s));
    j["structures"] = list;
    return j;
  }

  // What the isodose levels and the colourwash refer to: the highest prescription a target's
  // name gives (PTV70 -> 70 Gy, as `isoline dvh` reads it); without one, a nominal max/1.07.
  // Caller holds dose_mu.
  double prescription_gy() {
    double rx = 0;
    for (const auto& s : db->structures())
      if (core::is_target_type(core::structure_type_from_string(s.type)) ||
          core::is_target_type(core::guess_structure_type(s.latest.name)))
        rx = std::max(rx, core::prescription_from_name(s.latest.name));
    if (!(rx > 0)) rx = dose.min_max().second / 1.07;
    return rx;
  }

  void ensure_isodose() {
    // caller holds dose_mu
    if (!isodose_bytes.empty() || dose.empty()) return;
    const double rx = prescription_gy();
    isodose_prescription_gy = rx;
    isodose_levels_gy.clear();
    for (const auto& l : core::kIsodoseLines) isodose_levels_gy.push_back(l.fraction * rx);
    const auto& g = dose.geometry();
    core::Image lines(g, core::PixelType::UInt8);
    const float* d = dose.data<float>();
    auto* o = lines.data<std::uint8_t>();
    const std::int64_t nx = g.size[0], ny = g.size[1], nz = g.size[2];
    for (std::int64_t k = 0; k < nz; ++k)
      for (std::int64_t j = 0; j < ny; ++j)
        for (std::int64_t i = 0; i < nx; ++i) {
          const std::size_t n = g.offset(i, j, k);
          for (std::size_t l = isodose_levels_gy.size(); l-- > 0;) {
            const double L = isodose_levels_gy[l];
            if (d[n] < L) continue;
            bool edge = false;
            const std::int64_t nb[6][3] = {{i - 1, j, k}, {i + 1, j, k}, {i, j - 1, k},
                                           {i, j + 1, k}, {i, j, k - 1}, {i, j, k + 1}};
            for (auto& q : nb) {
              if (q[0] < 0 || q[1] < 0 || q[2] < 0 || q[0] >= nx || q[1] >= ny || q[2] >= nz) continue;
              if (d[g.offset(q[0], q[1], q[2])] < L) { edge = true; break; }
            }
            if (edge) { o[n] = static_cast<std::uint8_t>(l + 1); break; }
          }
        }
    isodose_bytes = nifti_bytes(lines);
  }

  json dvh_json() {
    std::lock_guard<std::mutex> l(dose_mu);
    if (dose.empty()) return json{{"available", false}};
    const double dmax = dose.min_max().second;
    const double bin = std::max(0.01, dmax / 100.0);
    json out = {{"available", true}, {"max_gy", dmax}};
    json curves = json::array();
    for (const auto& s : db->structures()) {
      core::Image m = db->mask(s.id, 0, grid);
      if (m.count_nonzero() == 0) continue;
      planning::Dvh h = planning::compute_dvh(dose, m, s.latest.name);
      std::vector<double> dd, ff;
      h.cumulative(bin, &dd, &ff);
      curves.push_back({{"id", s.id}, {"name", s.latest.name}, {"color", color_json(s.color)},
                        {"version", s.latest.version}, {"mean_gy", h.mean_gy()},
                        {"d95_gy", h.dose_at_percent(95)}, {"d2_gy", h.dose_at_percent(2)},
                        {"max_gy", h.max_gy()}, {"dose_gy", dd}, {"fraction", ff}});
    }
    out["curves"] = curves;
    return out;
  }

  /// Named by port: two servers on this machine (two cases) must not overwrite each other's.
  std::string token_cookie() const { return "isoline_token_" + std::to_string(port); }

  void send_json(httplib::Response& res, const json& j, int status = 200) {
    res.status = status;
    // replace: text stored by an older version (or any bad byte) can never make an answer,
    // or the error handler itself, throw.
    res.set_content(j.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
  }

  void routes();
};

void ReviewServer::Impl::routes() {
  auto& s = http;
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    res.set_header("X-Content-Type-Options", "nosniff");
    std::string token;
    bool from_query = false;
    if (req.has_header("X-Isoline-Token")) {
      token = req.get_header_value("X-Isoline-Token");
    } else if (req.has_param("token")) {
      token = req.get_param_value("token");
      from_query = true;
    } else if (req.has_header("Cookie")) {
      // The page's own assets (app.js, style.css) carry the token as a same-site cookie.
      const std::string c = req.get_header_value("Cookie");
      const std::string key = token_cookie() + "=";
      auto p = c.find(key);
      if (p != std::string::npos && (p == 0 || c[p - 1] == ' ' || c[p - 1] == ';'))
        token = c.substr(p + key.size(), c.find(';', p) == std::string::npos ? std::string::npos
                                                                             : c.find(';', p) - p - key.size());
    }
    if (!constant_time_equal(token, opt.token)) {
      send_json(res, {{"error", "unauthorized: open the URL printed by `isoline serve` (it carries the access token)"}}, 401);
      return httplib::Server::HandlerResponse::Handled;
    }
    if (from_query)
      res.set_header("Set-Cookie", token_cookie() + "=" + opt.token + "; Path=/; HttpOnly; SameSite=Strict");
    // A compressed body is inflated by cpp-httplib as it is read, with no cap of its own: only
    // gzip, and only where the handler caps what it holds (a draft); br and the rest are 415.
    if (req.has_header("Content-Encoding")) {
      const std::string enc = trimmed(req.get_header_value("Content-Encoding"));
      static const std::regex draft_put(R"(/api/structures/\d+/draft)");
      if (enc != "identity" &&
          !(enc == "gzip" && req.method == "PUT" && std::regex_match(req.path, draft_put))) {
        res.set_header("Connection", "close");
        send_json(res, {{"error", "Content-Encoding " + enc + " is not accepted here (only gzip, on PUT .../draft)"}},
                  415);
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    // The path only: a query value (an edit's label such as "HU -100..200") is not a path.
    std::string raw = req.target.substr(0, req.target.find('?'));
    std::string lower = raw;
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    if (req.path.find("..") != std::string::npos || raw.find("..") != std::string::npos ||
        lower.find("%2e%2e") != std::string::npos || lower.find(".%2e") != std::string::npos ||
        lower.find("%2e.") != std::string::npos || req.path.find('\\') != std::string::npos) {
      res.set_header("Connection", "close");  // a body left unread must not be read as a request
      send_json(res, {{"error", "not found"}}, 404);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  s.set_exception_handler([this](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    try {
      std::rethrow_exception(ep);
    } catch (const Conflict& e) {
      json body = {{"error", e.what()}, {"conflict", true}, {"latest_version", e.latest_version}};
      // The versions saved since the one the request was based on: what a save over them
      // would drop from the live structure (they stay in the history).
      json meanwhile = json::array();
      if (e.structure_id > 0) {
        try {
          for (const auto& v : db->history(e.structure_id))
            if (v.version > e.base_version) meanwhile.push_back(version_json(v));
        } catch (const std::exception&) {
          // the 409 stands without the list
        }
      }
      body["meanwhile"] = meanwhile;
      send_json(res, body, 409);
    } catch (const DraftNotFound& e) {
      send_json(res, {{"error", e.what()}}, 404);
    } catch (const DraftLimit& e) {
      send_json(res, {{"error", e.what()}, {"draft_limit", ReviewDb::kDraftLimit}}, 409);
    } catch (const core::InvalidInput& e) {
      send_json(res, {{"error", e.what()}}, 400);
    } catch (const core::NotSupported& e) {
      send_json(res, {{"error", e.what()}}, 501);
    } catch (const std::exception& e) {
      send_json(res, {{"error", e.what()}}, 500);
    } catch (...) {
      send_json(res, {{"error", "internal error"}}, 500);
    }
  });

  s.Get("/api/case", [this](const httplib::Request&, httplib::Response& res) { send_json(res, case_json()); });
  s.Get("/api/structures", [this](const httplib::Request&, httplib::Response& res) {
    json list = json::array();
    for (const auto& st : db->structures()) list.push_back(structure_out(st));
    send_json(res, list);
  });
  s.Get("/api/volume/ct", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(ct_bytes(), "application/octet-stream");
  });
  s.Get("/api/volume/dose", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard<std::mutex> l(dose_mu);
    if (dose.empty()) return send_json(res, {{"error", "no dose in this case"}}, 404);
    res.set_content(read_file(dose_path), "application/octet-stream");
  });
  s.Get("/api/volume/isodose", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard<std::mutex> l(dose_mu);
    if (dose.empty()) return send_json(res, {{"error", "no dose in this case"}}, 404);
    ensure_isodose();
    json lv = isodose_levels_gy;
    res.set_header("X-Isodose-Levels-Gy", lv.dump());
    res.set_content(isodose_bytes, "application/octet-stream");
  });
  s.Get(R"(/api/structures/(\d+)/mask(\.nii)?)", [this](const httplib::Request& req, httplib::Response& res) {
    std::int64_t version = 0;
    if (req.has_param("version")) {
      try { version = std::stoll(req.get_param_value("version")); } catch (...) {
        core::fail<core::InvalidInput>(kOp, "version", "must be an integer");
      }
    }
    auto bytes = mask_nifti(id_of(req), version);
    res.set_content(*bytes, "application/octet-stream");
  });
  s.Get(R"(/api/history)", [this](const httplib::Request& req, httplib::Response& res) {
    std::int64_t id = 0;
    if (req.has_param("structure")) {
      try { id = std::stoll(req.get_param_value("structure")); } catch (...) {
        core::fail<core::InvalidInput>(kOp, "structure", "must be an integer id");
      }
    }
    json list = json::array();
    for (const auto& v : db->history(id)) list.push_back(version_json(v));
    send_json(res, list);
  });

  // What the client polls (every ~12 s) to learn of versions saved by another tab or person:
  // the latest version of every structure, deleted ones included; no masks are read.
  s.Get("/api/versions", [this](const httplib::Request&, httplib::Response& res) {
    json list = json::array();
    for (const auto& st : db->structures(/*include_deleted=*/true))
      list.push_back({{"id", st.id}, {"name", st.latest.name}, {"version", st.latest.version},
                      {"author", st.latest.author}, {"action", st.latest.action}, {"time", st.latest.time},
                      {"deleted", st.latest.deleted}});
    // ... and the drafts (unsaved drawings kept by the server), so that a tab learns of one
    // written by another tab of the same reviewer; no masks either.
    json drafts = json::array();
    for (const auto& d : db->drafts()) drafts.push_back(draft_json(d));
    send_json(res, {{"structures", list}, {"drafts", drafts}});
  });
  s.Get("/api/flag_checks", [this](const httplib::Request& req, httplib::Response& res) {
    std::int64_t id = 0;
    if (req.has_param("structure")) {
      try { id = std::stoll(req.get_param_value("structure")); } catch (...) {
        core::fail<core::InvalidInput>(kOp, "structure", "must be an integer id");
      }
    }
    json list = json::array();
    for (const auto& c : db->flag_checks(id)) list.push_back(flag_check_json(c));
    send_json(res, list);
  });
  // The reviewer marks a structure's quality flags as checked ({"checked": false} takes the
  // mark back), as seen in `version` (the latest, else 409). Recorded with who and when.
  s.Post(R"(/api/structures/(\d+)/flags)", [this](const httplib::Request& req, httplib::Response& res) {
    const json j = parse_body(req);
    const StructureInfo st = live(id_of(req));
    if (!j.contains("version") || !j["version"].is_number_integer())
      core::fail<core::InvalidInput>(kOp, "version", "missing: the version whose flags were checked");
    bool checked = true;
    if (j.contains("checked")) {
      if (!j["checked"].is_boolean()) core::fail<core::InvalidInput>(kOp, "checked", "must be true or false");
      checked = j["checked"];
    }
    if (quality_flags(st.description).empty())
      core::fail<core::InvalidInput>(kOp, st.latest.name, "has no quality flags to check");
    std::string who = named_author(req, &j);
    if (who.empty()) who = trimmed(opt.author);
    if (who.empty())
      core::fail<core::InvalidInput>(kOp, "author", "missing: a flag check records who checked (type your name)");
    check_base(st, j["version"].get<std::int64_t>(), "check flags");
    db->check_flags(st.id, st.latest.version, st.description, who, checked);
    send_json(res, structure_out(db->get(st.id)));
  });

  // Save a painted mask (NIfTI bytes, e.g. NiiVue's drawing) as a new version. The author's
  // draft of the structure from the saving tab (`tab`, none: the draft put without a tab) is
  // cleared with it (same transaction), and those the drawing was restored from
  // (`replaces`); the author's drafts of other tabs stay. `keep_draft=1` clears none. `seq`:
  // the saving tab's change number of the drawing saved, so that its draft request of that
  // drawing arriving after the save (the page hidden or left meanwhile) writes nothing.
  s.Put(R"(/api/structures/(\d+)/mask)", [this](const httplib::Request& req, httplib::Response& res) {
    const json none = json::object();
    const StructureInfo st = live(id_of(req));
    const std::int64_t base = base_version(none, req);
    check_base(st, base);
    core::Image m = uploaded_mask(req.body, kOp);
    std::string action = req.has_param("action") ? req.get_param_value("action") : "brush";
    action = core::utf8_prefix(request_text(action, "action"), 200);
    const bool keep_draft = req.has_param("keep_draft") && req.get_param_value("keep_draft") == "1";
    std::vector<DraftRef> clear;  // this tab's draft, and those its drawing was restored from
    std::optional<DraftRef> saved_by;  // and the tab's change number saved: a later request of it is no draft
    if (!keep_draft) {
      clear.push_back({draft_tab(req)});
      for (auto& r : draft_replaces(req)) clear.push_back(std::move(r));
      if (const auto seq = query_int(req, "seq", "save")) saved_by = DraftRef{clear.front().tab, *seq};
    }
    db->save_version(st.id, base, m, author_of(req, nullptr), action, {}, false, clear, saved_by);
    send_json(res, structure_out(db->get(st.id)));
  });

  // Drafts: a reviewer's unsaved drawing of a structure (the client sends it while it has
  // unsaved changes), kept in review.sqlite beside the versions but never a version: never the
  // live structure, never approved. One per structure, reviewer (the typed name) and tab: two
  // tabs or windows of the same reviewer on the same structure each keep their own.
  // The body may come gzipped once more (`Content-Encoding: gzip` on a .nii.gz: a page-leave
  // request must fit the browser's 64 KB keepalive limit, which one gzip of a large CT's
  // drawing does not): cpp-httplib inflates it as it is read, and it is held only up to the
  // cap of a plain body (413 beyond: a zip bomb is never inflated whole).
  s.Put(R"(/api/structures/(\d+)/draft)", [this](const httplib::Request& req, httplib::Response& res,
                                                   const httplib::ContentReader& content_reader) {
    std::string body;
    bool over = false;
    const bool read = content_reader([&](const char* data, std::size_t n) {
      if (body.size() + n > body_cap) return !(over = true);
      body.append(data, n);
      return true;
    });
    if (!read) {
      res.set_header("Connection", "close");  // a body left unread must not be read as a request
      if (over || res.status == 413)
        return send_json(res,
                         {{"error", "draft: body: larger than any mask on the CT grid (" + std::to_string(body_cap) +
                                        " bytes" + (over ? "; it inflates to more than that" : "") + ")"}},
                         413);
      return send_json(res, {{"error", "draft: body: could not be read" +
                                           std::string(req.has_header("Content-Encoding")
                                                           ? " (not valid " + req.get_header_value("Content-Encoding") + ")"
                                                           : "")}},
                       400);
    }
    const StructureInfo st = draft_structure(req);
    const std::string who = draft_reviewer(req);
    const auto base = query_int(req, "base_version", "draft");
    if (!base) core::fail<core::InvalidInput>("draft", "base_version", "missing: the version the drawing was drawn on");
    core::Image m = uploaded_mask(body, "draft");
    std::string action = req.has_param("action") ? req.get_param_value("action") : "";
    action = core::utf8_prefix(request_text(action, "action"), 200);
    // The sending tab and its change number: of two requests of one tab that arrive out of
    // order, the older does not replace the newer (the reply then says "stale": true).
    const std::string tab = draft_tab(req);
    const std::int64_t seq = query_int(req, "seq", "draft").value_or(0);
    const DraftInfo d = db->put_draft(st.id, who, *base, m, action, tab, seq, draft_replaces(req));
    json j = draft_json(d);
    if (d.stale) j["stale"] = true;
    if (d.saved) j["saved"] = true;  // the tab saved this drawing already: not kept as a draft
    // (no draft any more: "saved", "discarded" or "restored" into another window; not kept again)
    if (!d.gone.empty()) j["gone"] = d.gone;
    send_json(res, j);
  });
  s.Get(R"(/api/structures/(\d+)/draft(\.nii)?)", [this](const httplib::Request& req, httplib::Response& res) {
    const StructureInfo st = draft_structure(req);
    const std::string who = draft_reviewer(req);
    const auto tab = which_draft(req, st, who);
    // (one read: a draft discarded, saved or restored meanwhile is none, a 404 like any other)
    const auto mask = tab ? db->draft_mask(st.id, who, *tab, grid) : std::nullopt;
    if (!mask)
      return send_json(res, {{"error", "draft: " + st.latest.name + ": no draft of " + who +
                                           (tab && req.has_param("tab") ? " from this tab" : "")}},
                       404);
    res.set_content(nifti_bytes(*mask), "application/octet-stream");
  });
  s.Delete(R"(/api/structures/(\d+)/draft)", [this](const httplib::Request& req, httplib::Response& res) {
    const StructureInfo st = draft_structure(req);
    const std::string who = draft_reviewer(req);
    const auto tab = which_draft(req, st, who);
    // `seq`: the change number of the draft as the reviewer saw it; one written since (its
    // window, still open, drew on) is not discarded: 409 with the draft as it is now.
    const auto seq = query_int(req, "seq", "draft");
    const bool discarded = tab && db->discard_draft(st.id, who, *tab, seq.value_or(INT64_MAX));
    if (!discarded && tab && seq) {
      if (const auto now = db->draft(st.id, who, *tab))
        return send_json(res,
                         {{"error", "draft: " + st.latest.name + ": not discarded: " + who +
                                        "'s unsaved drawing of it changed since it was shown (its window drew on: "
                                        "change " + std::to_string(now->seq) + ", not " + std::to_string(*seq) +
                                        "); look at it again"},
                          {"discarded", false},
                          {"draft", draft_json(*now)}},
                         409);
    }
    send_json(res, {{"discarded", discarded}, {"structure_id", st.id}, {"reviewer", who}, {"tab", tab.value_or("")}});
  });
  s.Get("/api/drafts", [this](const httplib::Request& req, httplib::Response& res) {
    std::string who;
    if (req.has_param("reviewer"))  // as kept: a name is stored cut to 64 bytes (draft_reviewer)
      who = core::utf8_prefix(trimmed(request_text(req.get_param_value("reviewer"), "reviewer")), 64);
    json list = json::array();
    for (const auto& d : db->drafts())
      if (who.empty() || d.reviewer == who) list.push_back(draft_json(d));
    send_json(res, list);
  });

  s.Post(R"(/api/structures/(\d+)/edit)", [this](const httplib::Request& req, httplib::Response& res) {
    const json j = parse_body(req);
    const StructureInfo st = live(id_of(req));
    const std::int64_t base = base_version(j, req);
    check_base(st, base);
    core::Image m = db->mask(st.id, base, grid);
    std::string action;
    core::Image out = apply_edit(m, req.body, [this](const std::string& n) { return other_mask(n); }, &action);
    db->save_version(st.id, base, out, author_of(req, &j), action);
    send_json(res, structure_out(db->get(st.id)));
  });

  s.Post(R"(/api/structures/(\d+)/rename)", [this](const httplib::Request& req, httplib::Response& res) {
    const json j = parse_body(req);
    const StructureInfo st = live(id_of(req));
    const std::int64_t base = base_version(j, req);
    if (!j.contains("name") || !j["name"].is_string())
      core::fail<core::InvalidInput>(kOp, "name", "missing the new name");
    const std::string name = j["name"];
    check_base(st, base);
    db->save_version(st.id, base, core::Image(), author_of(req, &j), "rename " + st.latest.name + " -> " + name, name);
    send_json(res, structure_out(db->get(st.id)));
  });

  s.Post(R"(/api/structures/(\d+)/revert)", [this](const httplib::Request& req, httplib::Response& res) {
    const json j = parse_body(req);
    const StructureInfo st = live(id_of(req));
    const std::int64_t base = base_version(j, req);
    if (!j.contains("version") || !j["version"].is_number_integer())
      core::fail<core::InvalidInput>(kOp, "version", "missing the version to go back to");
    const std::int64_t v = j["version"];
    if (v < 1 || v > st.latest.version)
      core::fail<core::InvalidInput>(kOp, "version", "must be a version of the structure, 1 to " + std::to_string(st.latest.version));
    check_base(st, base);
    core::Image m = db->mask(st.id, v, grid);
    db->save_version(st.id, base, m, author_of(req, &j), "revert to version " + std::to_string(v));
    send_json(res, structure_out(db->get(st.id)));
  });

  s.Get("/api/structures/deleted", [this](const httplib::Request&, httplib::Response& res) {
    json list = json::array();
    for (const auto& st : db->structures(/*include_deleted=*/true))
      if (st.latest.deleted) list.push_back(structure_out(st));
    send_json(res, list);
  });

  s.Post(R"(/api/structures/(\d+)/restore)", [this](const httplib::Request& req, httplib::Response& res) {
    const json j = parse_body(req);
    const std::int64_t id = id_of(req);
    db->restore(id, base_version(j, req), author_of(req, &j));
    send_json(res, structure_out(db->get(id)));
  });

  s.Delete(R"(/api/structures/(\d+))", [this](const httplib::Request& req, httplib::Response& res) {
    const json j = parse_body(req);
    const StructureInfo st = live(id_of(req));
    const std::int64_t base = base_version(j, req);
    check_base(st, base);
    db->save_version(st.id, base, core::Image(), author_of(req, &j), "delete", {}, true);
    send_json(res, {{"deleted", st.latest.name}, {"id", st.id}});
  });

  s.Post("/api/structures", [this](const httplib::Request& req, httplib::Response& res) {
    const json j = parse_body(req);
    if (!j.contains("name") || !j["name"].is_string())
      core::fail<core::InvalidInput>(kOp, "name", "missing the name of the new structure");
    const std::string name = j["name"];
    std::string type = j.value("type", std::string());
    if (!type.empty()) {
      const core::StructureType t = core::structure_type_from_string(type);
      if (t == core::StructureType::Other)
        core::fail<core::InvalidInput>(kOp, "type", "not an RT ROI interpreted type (PTV, CTV, GTV, ORGAN, ...): " + type);
      type = core::to_dicom_string(t);
    }
    if (type.empty()) type = core::to_dicom_string(core::guess_structure_type(name));
    if (type.empty()) type = "ORGAN";
    core::Color color = core::default_color(name, db->structures(true).size());
    if (j.contains("color")) {
      const auto& c = j["color"];
      if (!c.is_array() || c.size() != 3 || !c[0].is_number_integer() || !c[1].is_number_integer() || !c[2].is_number_integer())
        core::fail<core::InvalidInput>(kOp, "color", "must be [r, g, b]");
      for (int k = 0; k < 3; ++k)
        if (c[k].get<int>() < 0 || c[k].get<int>() > 255) core::fail<core::InvalidInput>(kOp, "color", "values are 0 to 255");
      color = {static_cast<std::uint8_t>(c[0].get<int>()), static_cast<std::uint8_t>(c[1].get<int>()),
               static_cast<std::uint8_t>(c[2].get<int>())};
    }
    core::Image m(grid, core::PixelType::UInt8);
    std::string action = "create";
    if (j.contains("copy_of")) {
      if (!j["copy_of"].is_string()) core::fail<core::InvalidInput>(kOp, "copy_of", "must be a structure name");
      m = other_mask(j["copy_of"]).clone();
      action = "create as copy of " + j["copy_of"].get<std::string>();
    }
    const auto id = db->create_structure(name, type, color, j.value("description", std::string()), "user", m,
                                         author_of(req, &j), action);
    send_json(res, structure_out(db->get(id)), 201);
  });

  s.Get("/api/dvh", [this](const httplib::Request&, httplib::Response& res) { send_json(res, dvh_json()); });

  s.Post("/api/approve", [this](const httplib::Request& req, httplib::Response& res) {
    const json j = parse_body(req);
    // The approval records who approved: a name the reviewer gave, never a default.
    std::string reviewer;
    if (j.contains("reviewer")) {
      if (!j["reviewer"].is_string()) core::fail<core::InvalidInput>("approve", "reviewer", "must be a string (a name)");
      reviewer = core::utf8_prefix(trimmed(j["reviewer"].get<std::string>()), 64);
    } else {
      reviewer = named_author(req, &j);
    }
    if (reviewer.empty())
      core::fail<core::InvalidInput>("approve", "reviewer",
                                     "missing or blank: the approval must name the reviewer (type your name to approve)");
    // Optimistic check: the client approves what it has seen.
    if (j.contains("versions")) {
      if (!j["versions"].is_object()) core::fail<core::InvalidInput>(kOp, "versions", "must map structure ids to versions");
      for (auto it = j["versions"].begin(); it != j["versions"].end(); ++it) {
        std::int64_t id = 0;
        try { id = std::stoll(it.key()); } catch (...) { core::fail<core::InvalidInput>(kOp, "versions", "bad id " + it.key()); }
        if (!it.value().is_number_integer()) core::fail<core::InvalidInput>(kOp, "versions", "bad version");
        const StructureInfo st = db->get(id);
        check_base(st, it.value().get<std::int64_t>(), "approve");
      }
      // ... and nothing it has not seen (made meanwhile in another tab or by a script).
      for (const auto& st : db->structures())
        if (!j["versions"].contains(std::to_string(st.id)))
          throw Conflict("approve: structure \"" + st.latest.name + "\" was created after the list was loaded; "
                         "reload and review it before approving",
                         st.latest.version);
    }
    ApprovalInput in;
    in.case_dir = case_dir.string();
    in.review_dir = review_dir.string();
    in.ct = ct;
    in.dicom_ct = dicom_ct;
    in.reviewer = reviewer;
    in.status = j.value("status", std::string("APPROVED"));
    if (in.status != "APPROVED" && in.status != "UNAPPROVED" && in.status != "REJECTED")
      core::fail<core::InvalidInput>(kOp, "status", "must be APPROVED, UNAPPROVED or REJECTED");
    for (const auto& st : db->structures(/*include_deleted=*/true)) {
      if (st.latest.deleted && st.origin != "auto") continue;
      ApprovalStructure a;
      a.info = st;
      a.deleted = st.latest.deleted;
      if (!st.latest.deleted) a.mask = db->mask(st.id, 0, grid);
      if (st.origin == "auto") a.automatic = db->mask(st.id, 1, grid);
      if (st.origin == "given" && !st.latest.deleted) a.given = db->mask(st.id, 1, grid);
      a.flag_check = db->flag_check(st.id);
      in.structures.push_back(std::move(a));
    }
    // Unsaved drawings are not approved (nor dropped): the record lists them, they stay.
    in.unsaved_drafts = json::array();
    for (const auto& d : db->drafts()) in.unsaved_drafts.push_back(draft_json(d));
    json r = write_approval(in);
    db->set_meta("last_approval", r.dump(-1, ' ', false, json::error_handler_t::replace));
    send_json(res, r);
  });

  s.Post("/api/dose/estimate", [this](const httplib::Request& req, httplib::Response& res) {
    if (!opt.dose_estimator) {
      send_json(res, {{"error", "re-estimate dose: not available in this build: no achievable-dose planning entry "
                                "point is linked into the review server yet"},
                      {"available", false}},
                501);
      return;
    }
    auto job = std::make_shared<Job>();
    int id;
    {
      std::lock_guard<std::mutex> l(jobs_mu);
      id = next_job++;
      jobs[id] = job;
    }
    core::StructureSet set(grid);
    for (const auto& st : db->structures()) {
      core::Structure x;
      x.name = st.latest.name;
      x.type = core::structure_type_from_string(st.type);
      x.color = st.color;
      x.mask = db->mask(st.id, 0, grid);
      set.add(std::move(x));
    }
    std::lock_guard<std::mutex> l(jobs_mu);
    job_threads.emplace_back([this, job, set]() {
      try {
        core::Progress progress([this, job](const core::ProgressEvent& e) {
          std::lock_guard<std::mutex> l2(jobs_mu);
          job->fraction = e.fraction;
          job->stage = e.stage;
          job->detail = e.detail;
        }, "dose");
        core::Image d = opt.dose_estimator(ct, set, progress).cast(core::PixelType::Float32);
        const std::string p = (review_dir / "dose_estimated.nii.gz").string();
        core::write_image(d, p);
        {
          std::lock_guard<std::mutex> l3(dose_mu);
          dose = d;
          dose_path = p;
          ++dose_generation;
          isodose_bytes.clear();
        }
        std::lock_guard<std::mutex> l2(jobs_mu);
        job->fraction = 1;
        job->state = "done";
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> l2(jobs_mu);
        job->state = "failed";
        job->error = e.what();
      }
    });
    send_json(res, {{"job", id}}, 202);
    (void)req;
  });

  s.Get(R"(/api/jobs/(\d+))", [this](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> l(jobs_mu);
    auto it = jobs.find(static_cast<int>(id_of(req)));
    if (it == jobs.end()) return send_json(res, {{"error", "no such job"}}, 404);
    const Job& j = *it->second;
    send_json(res, {{"state", j.state}, {"fraction", j.fraction}, {"stage", j.stage}, {"detail", j.detail},
                    {"error", j.error}});
  });

  // Bundled web client: only regular files under ui_dir.
  s.Get(R"(/([A-Za-z0-9_\-./]*))", [this](const httplib::Request& req, httplib::Response& res) {
    std::string rel = req.matches[1].str();
    if (rel.empty()) rel = "index.html";
    if (ui_dir.empty()) {
      if (rel != "index.html") return send_json(res, {{"error", "not found"}}, 404);
      res.set_content("<!doctype html><p>Isoline review server: the web client is not built (run the build with npm).</p>",
                      "text/html");
      return;
    }
    std::error_code ec;
    fs::path p = fs::weakly_canonical(ui_dir / rel, ec);
    const std::string root = ui_dir.string() + "/";
    if (ec || p.string().compare(0, root.size(), root) != 0 || !fs::is_regular_file(p, ec)) {
      send_json(res, {{"error", "not found"}}, 404);
      return;
    }
    res.set_content(read_file(p.string()), content_type(p.string()));
  });
}

ReviewServer::ReviewServer(ServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->opt = std::move(options);
  impl_->load_case();
  if (impl_->opt.token.empty()) impl_->opt.token = impl_->case_token();
  impl_->http.new_task_queue = [n = impl_->opt.threads] { return new httplib::ThreadPool(static_cast<size_t>(std::max(2, n))); };
  // Large volumes (a 512 x 512 x 160 mask is 42 MB) to a busy browser: generous timeouts.
  // SO_REUSEADDR only: cpp-httplib's default SO_REUSEPORT lets a second server bind the same
  // port, and the kernel would then split the browser's requests between the two.
  impl_->http.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, reinterpret_cast<void*>(&yes), sizeof(yes));
  });
  impl_->http.set_read_timeout(300, 0);
  impl_->http.set_write_timeout(300, 0);
  // No request body is larger than a mask on the CT grid sent uncompressed (up to 4 bytes a
  // voxel, plus the header): a larger one is refused (413) before it is read into memory
  // (cpp-httplib's default has no limit; a client sends a draft every few seconds).
  impl_->body_cap = std::max<std::size_t>(16u << 20, 4 * impl_->grid.num_voxels() + (1u << 20));
  impl_->http.set_payload_max_length(impl_->body_cap);
  impl_->routes();
}

ReviewServer::~ReviewServer() {
  stop();
  for (auto& t : impl_->job_threads)
    if (t.joinable()) t.join();
}

int ReviewServer::bind() {
  if (impl_->opt.port == 0) {
    const int last = impl_->last_port();
    if (last > 0 && impl_->http.bind_to_port(impl_->opt.host, last))
      impl_->port = last;
    else
      impl_->port = impl_->http.bind_to_any_port(impl_->opt.host);
  } else {
    impl_->port = impl_->http.bind_to_port(impl_->opt.host, impl_->opt.port) ? impl_->opt.port : -1;
  }
  if (impl_->port <= 0)
    core::fail<core::IoError>(kOp, impl_->opt.host + ":" + std::to_string(impl_->opt.port), "cannot listen there (port in use, or not an address of this machine?)");
  impl_->remember_port();
  return impl_->port;
}

void ReviewServer::serve() { impl_->http.listen_after_bind(); }
void ReviewServer::stop() { impl_->http.stop(); }
const std::string& ReviewServer::token() const { return impl_->opt.token; }
std::string ReviewServer::url() const {
  const std::string& h = impl_->opt.host;
  const std::string host = h.find(':') != std::string::npos ? "[" + h + "]" : h;  // IPv6 literal
  return "http://" + host + ":" + std::to_string(impl_->port) + "/?token=" + impl_->opt.token;
}
ReviewDb& ReviewServer::db() { return *impl_->db; }

}  // namespace isoline::ui

namespace isoline::ui {

std::string default_ui_dir() {
  if (const char* e = std::getenv("ISOLINE_UI_DIR"); e && *e) return e;
  std::error_code ec;
#ifdef ISOLINE_UI_DIST_DIR
  if (fs::is_regular_file(fs::path(ISOLINE_UI_DIST_DIR) / "index.html", ec)) return ISOLINE_UI_DIST_DIR;
#endif
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path p = exe.parent_path().parent_path() / "share" / "isoline" / "ui";
    if (fs::is_regular_file(p / "index.html", ec)) return p.string();
  }
  return {};
}

}  // namespace isoline::ui
