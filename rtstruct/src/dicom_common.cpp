#include "dicom_common.h"

#include "isoline/core/version.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <filesystem>
#include <mutex>
#include <thread>

#include "dcmtk/dcmdata/dcostrma.h"
#include "dcmtk/dcmdata/dcrledrg.h"
#include "dcmtk/dcmdata/dcvrds.h"
#include "dcmtk/dcmdata/dcwcache.h"
#include "dcmtk/dcmjpeg/djdecode.h"
#include "dcmtk/dcmjpls/djdecode.h"
#include "dcmtk/oflog/oflog.h"
#include "isoline/core/atomic_file.h"
#include "isoline/core/error.h"
#include "isoline/rtstruct/dicom_file.h"

namespace isoline::rtstruct {

std::string generate_uid() {
  char buf[100];
  // DCMTK's site root; Isoline has no registered root of its own.
  dcmGenerateUniqueIdentifier(buf, SITE_INSTANCE_UID_ROOT);
  return buf;
}

namespace detail {

void register_codecs() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Library code never prints: silence DCMTK's logger (warnings go to our errors).
    OFLog::configure(OFLogger::FATAL_LOG_LEVEL);
    DJDecoderRegistration::registerCodecs();
    DJLSDecoderRegistration::registerCodecs();
    DcmRLEDecoderRegistration::registerCodecs();
  });
}

void load_file(DcmFileFormat& ff, const std::string& file, const std::string& operation,
               bool headers_only) {
  register_codecs();
  std::error_code ec;
  if (!std::filesystem::exists(file, ec))
    core::fail<core::IoError>(operation, file, "file does not exist");
  if (std::filesystem::is_directory(file, ec))
    core::fail<core::IoError>(operation, file, "is a directory");
  const Uint32 max_len = headers_only ? 4096 : DCM_MaxReadLength;
  OFCondition st = ff.loadFile(file.c_str(), EXS_Unknown, EGL_noChange, max_len, ERM_autoDetect);
  if (st.bad())
    core::fail<core::IoError>(operation, file,
                              std::string("not a readable DICOM file (") + st.text() + ")");
}

std::string get_string(DcmItem& item, const DcmTagKey& tag, unsigned long pos) {
  OFString s;
  if (item.findAndGetOFString(tag, s, pos).bad()) return {};
  std::string r = s.c_str();
  while (!r.empty() && (r.back() == ' ' || r.back() == '\0')) r.pop_back();
  std::size_t b = 0;
  while (b < r.size() && r[b] == ' ') ++b;
  return r.substr(b);
}

std::string get_string_all(DcmItem& item, const DcmTagKey& tag) {
  OFString s;
  if (item.findAndGetOFStringArray(tag, s).bad()) return {};
  std::string r = s.c_str();
  while (!r.empty() && (r.back() == ' ' || r.back() == '\0')) r.pop_back();
  std::size_t b = 0;
  while (b < r.size() && r[b] == ' ') ++b;
  return r.substr(b);
}

bool has(DcmItem& item, const DcmTagKey& tag) {
  return item.tagExists(tag);
}

std::vector<double> get_numbers(DcmItem& item, const DcmTagKey& tag, const std::string& file) {
  std::vector<double> out;
  DcmElement* el = nullptr;
  if (item.findAndGetElement(tag, el).bad() || !el) return out;
  const DcmEVR vr = el->ident();
  if (vr == EVR_DS || vr == EVR_IS || vr == EVR_UN) {
    // Parse the raw string ourselves: strtod is much faster than DCMTK's per-value access
    // for ContourData with many thousand values, and tolerant of stray spaces.
    char* raw = nullptr;
    if (el->getString(raw).bad() || !raw) return out;
    const char* p = raw;
    const char* end = raw + el->getLength();
    while (p < end) {
      const char* q = p;
      while (q < end && *q != '\\') ++q;
      std::string tok(p, q);
      std::size_t b = tok.find_first_not_of(" \t\r\n");
      std::size_t e = tok.find_last_not_of(" \t\r\n\0");
      if (b == std::string::npos) {
        if (q < end || !out.empty()) out.push_back(std::nan(""));
      } else {
        tok = tok.substr(b, e - b + 1);
        char* stop = nullptr;
        double v = std::strtod(tok.c_str(), &stop);
        if (stop == tok.c_str() || *stop != '\0')
          core::fail<core::InvalidInput>("read DICOM", file,
                                         std::string("attribute ") + DcmTag(tag).getTagName() +
                                             " holds a non-numeric value \"" + tok.substr(0, 32) +
                                             "\"");
        out.push_back(v);
      }
      p = q + 1;
    }
    return out;
  }
  const unsigned long n = el->getVM();
  for (unsigned long i = 0; i < n; ++i) {
    Float64 d = 0;
    if (vr == EVR_FD || vr == EVR_FL) {
      if (vr == EVR_FD) {
        if (el->getFloat64(d, i).bad()) break;
      } else {
        Float32 f = 0;
        if (el->getFloat32(f, i).bad()) break;
        d = f;
      }
    } else if (vr == EVR_US) {
      Uint16 u = 0;
      if (el->getUint16(u, i).bad()) break;
      d = u;
    } else if (vr == EVR_SS) {
      Sint16 u = 0;
      if (el->getSint16(u, i).bad()) break;
      d = u;
    } else if (vr == EVR_UL) {
      Uint32 u = 0;
      if (el->getUint32(u, i).bad()) break;
      d = u;
    } else if (vr == EVR_SL) {
      Sint32 u = 0;
      if (el->getSint32(u, i).bad()) break;
      d = u;
    } else {
      break;
    }
    out.push_back(d);
  }
  return out;
}

void put(DcmItem& item, const DcmTagKey& tag, const std::string& value) {
  OFCondition st = item.putAndInsertString(tag, value.c_str());
  if (st.bad())
    core::fail<core::InvalidInput>(
        "write DICOM", DcmTag(tag).getTagName(),
        std::string("cannot set value \"") + value.substr(0, 40) + "\": " + st.text());
}

void put_us(DcmItem& item, const DcmTagKey& tag, unsigned short value) {
  OFCondition st = item.putAndInsertUint16(tag, value);
  if (st.bad()) core::fail<core::InvalidInput>("write DICOM", DcmTag(tag).getTagName(), st.text());
}

namespace {

// Code points of a UTF-8 string; a byte that does not start a valid sequence counts as the
// Latin-1 character of that value (text from Latin-1 file names stays readable).
std::vector<char32_t> decode_utf8(const std::string& s) {
  std::vector<char32_t> out;
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    int n = b < 0x80 ? 0 : (b >> 5) == 0x6 ? 1 : (b >> 4) == 0xE ? 2 : (b >> 3) == 0x1E ? 3 : -1;
    char32_t cp = n == 0 ? b : n == 1 ? (b & 0x1F) : n == 2 ? (b & 0x0F) : (b & 0x07);
    bool ok = n >= 0 && i + static_cast<std::size_t>(n) < s.size();
    for (int k = 1; ok && k <= n; ++k) {
      const auto cb = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
      ok = (cb & 0xC0) == 0x80;
      cp = (cp << 6) | (cb & 0x3F);
    }
    if (!ok) {
      out.push_back(b);
      ++i;
    } else {
      out.push_back(cp);
      i += static_cast<std::size_t>(n) + 1;
    }
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace

OwnText own_text(const std::string& utf8, const std::string& charset, std::size_t max_chars) {
  const bool to_utf8 = charset == "ISO_IR 192";
  const bool to_latin1 = charset.empty() || charset == "ISO_IR 100";
  std::vector<char32_t> cps = decode_utf8(utf8);
  OwnText t;
  if (cps.size() > max_chars) {
    cps.resize(max_chars);
    t.changed = true;
  }
  for (char32_t cp : cps) {
    if (cp == U'\\') {
      cp = U'/';
      t.changed = true;
    } else if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0)) {
      cp = U' ';
      t.changed = true;
    } else if (cp >= 0x80 && !to_utf8 && !(to_latin1 && cp <= 0xFF)) {
      cp = U'?';
      t.changed = true;
    }
    append_utf8(t.utf8, cp);
    if (cp < 0x80 || to_utf8)
      append_utf8(t.encoded, cp);
    else
      t.encoded += static_cast<char>(cp);  // Latin-1
  }
  return t;
}

std::string format_ds(double v) {
  if (!std::isfinite(v)) core::fail<core::InvalidInput>("write DICOM", "DS", "non-finite value");
  if (v == 0.0) return "0";
  char buf[64];
  for (int prec = 15; prec >= 1; --prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strlen(buf) <= 16) return buf;
  }
  core::fail<core::InvalidInput>("write DICOM", "DS", "value cannot be written in 16 characters");
}

std::string format_ds_list(const std::vector<double>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) s += '\\';
    s += format_ds(v[i]);
  }
  return s;
}

void append_coordinate(std::string& out, double v) {
  long long q = std::llround(v * 1e6);
  if (q < 0) {
    out += '-';
    q = -q;
  }
  const long long ip = q / 1000000;
  long long fp = q % 1000000;
  char buf[32];
  int n = 0;
  // integer part
  char tmp[24];
  int t = 0;
  long long x = ip;
  do {
    tmp[t++] = static_cast<char>('0' + x % 10);
    x /= 10;
  } while (x);
  while (t) buf[n++] = tmp[--t];
  if (fp) {
    buf[n++] = '.';
    int digits = 6;
    while (fp % 10 == 0) {
      fp /= 10;
      --digits;
    }
    char f[8];
    for (int d = digits - 1; d >= 0; --d) {
      f[d] = static_cast<char>('0' + fp % 10);
      fp /= 10;
    }
    for (int d = 0; d < digits; ++d) buf[n++] = f[d];
  }
  out.append(buf, static_cast<std::size_t>(n));
}

void require_ct_uids(const CtSeries& ct, bool series_uid, const char* operation,
                     const std::string& file, const std::string& why) {
  std::string missing;
  auto need = [&](const std::string& uid, const char* name) {
    if (uid.empty()) missing += std::string(missing.empty() ? "" : ", ") + name;
  };
  need(ct.info.study_instance_uid, "Study Instance UID");
  if (series_uid) need(ct.series_instance_uid, "Series Instance UID");
  need(ct.frame_of_reference_uid, "Frame of Reference UID");
  if (series_uid) {  // an RT-STRUCT references every slice by its SOP Instance UID too
    std::size_t without = 0;
    for (const auto& sl : ct.slices) without += sl.sop_instance_uid.empty();
    if (without > 0)
      missing += std::string(missing.empty() ? "" : ", ") + "SOP Instance UIDs (" +
                 (without == ct.slices.size() ? "all " : "") + std::to_string(without) + " of " +
                 std::to_string(ct.slices.size()) + " slices)";
  }
  if (!missing.empty())
    core::fail<core::InvalidInput>(operation, file, "the CT series lacks its " + missing + " " + why);
}

PatientStudy read_patient_study(DcmItem& item) {
  PatientStudy p;
  p.patient_name = get_string_all(item, DCM_PatientName);
  p.patient_id = get_string(item, DCM_PatientID);
  p.patient_birth_date = get_string(item, DCM_PatientBirthDate);
  p.patient_sex = get_string(item, DCM_PatientSex);
  p.study_instance_uid = get_string(item, DCM_StudyInstanceUID);
  p.study_date = get_string(item, DCM_StudyDate);
  p.study_time = get_string(item, DCM_StudyTime);
  p.study_id = get_string(item, DCM_StudyID);
  p.accession_number = get_string(item, DCM_AccessionNumber);
  p.referring_physician_name = get_string_all(item, DCM_ReferringPhysicianName);
  p.study_description = get_string_all(item, DCM_StudyDescription);
  p.specific_character_set = get_string_all(item, DCM_SpecificCharacterSet);
  return p;
}

void parallel_for(std::size_t n, const std::function<void(std::size_t)>& body) {
  const unsigned nw = std::max(1u, std::min(2u, std::thread::hardware_concurrency()));
  std::vector<std::exception_ptr> errs(nw);
  std::atomic<std::size_t> next{0};
  auto work = [&](unsigned w) {
    try {
      for (std::size_t i; (i = next++) < n;) body(i);
    } catch (...) {
      errs[w] = std::current_exception();
      next = n;
    }
  };
  std::vector<std::thread> ts;
  for (unsigned w = 1; w < nw; ++w) ts.emplace_back(work, w);
  work(0);
  for (auto& t : ts) t.join();
  for (auto& e : errs)
    if (e) std::rethrow_exception(e);
}

void write_derived_header(DcmItem& ds, const DerivedSeries& d, const CtSeries& ct) {
  put(ds, DCM_InstanceCreationDate, d.date);
  put(ds, DCM_InstanceCreationTime, d.time);
  put(ds, DCM_SOPClassUID, d.sop_class_uid);
  put(ds, DCM_SOPInstanceUID, d.sop_instance_uid);
  write_patient_study(ds, ct.info);
  put(ds, DCM_Modality, d.modality);
  put(ds, DCM_Manufacturer, "Isoline");
  put(ds, DCM_ManufacturerModelName, "Isoline");
  put(ds, DCM_SoftwareVersions, core::version());
  put(ds, DCM_SeriesDescription, own_text(d.series_description, ct.info.specific_character_set, 64).encoded);
  put(ds, DCM_SeriesInstanceUID, d.series_instance_uid);
  put(ds, DCM_SeriesNumber, std::to_string(d.series_number));
  put(ds, DCM_OperatorsName, "");
  put(ds, DCM_FrameOfReferenceUID, ct.frame_of_reference_uid);
  put(ds, DCM_PositionReferenceIndicator, "");
  put(ds, DCM_InstanceNumber, "1");
}

void write_patient_study(DcmItem& item, const PatientStudy& p) {
  put(item, DCM_SpecificCharacterSet,
      p.specific_character_set.empty() ? "ISO_IR 100" : p.specific_character_set);
  put(item, DCM_PatientName, p.patient_name);
  put(item, DCM_PatientID, p.patient_id);
  put(item, DCM_PatientBirthDate, p.patient_birth_date);
  put(item, DCM_PatientSex, p.patient_sex);
  put(item, DCM_StudyInstanceUID, p.study_instance_uid);
  put(item, DCM_StudyDate, p.study_date);
  put(item, DCM_StudyTime, p.study_time);
  put(item, DCM_StudyID, p.study_id);
  put(item, DCM_AccessionNumber, p.accession_number);
  put(item, DCM_ReferringPhysicianName, p.referring_physician_name);
  if (!p.study_description.empty()) put(item, DCM_StudyDescription, p.study_description);
}

std::string today() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y%m%d", &tm);
  return buf;
}

std::string now_time() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%H%M%S", &tm);
  return buf;
}

namespace {

// DCMTK's output end, writing through core::OutputFile in 64 KiB blocks. A failed write is kept
// (the IoError naming the system's reason) and makes the stream bad, which stops DCMTK.
class CheckedConsumer : public DcmConsumer {
 public:
  explicit CheckedConsumer(core::OutputFile& file) : file_(file) { buf_.reserve(kBlock); }
  OFBool good() const override { return status_.good(); }
  OFCondition status() const override { return status_; }
  OFBool isFlushed() const override { return buf_.empty(); }
  offile_off_t avail() const override { return 2147483647L; }  // as DcmFileConsumer: "unlimited"
  offile_off_t write(const void* data, offile_off_t size) override {
    if (!good() || !data || size <= 0) return 0;
    const auto n = static_cast<std::size_t>(size);
    if (buf_.size() + n > kBlock) drain();
    if (n >= kBlock) {
      put(static_cast<const char*>(data), n);
    } else if (good()) {
      buf_.insert(buf_.end(), static_cast<const char*>(data), static_cast<const char*>(data) + n);
    }
    return good() ? size : 0;
  }
  void flush() override { drain(); }
  /// Rethrows the first write's failure.
  void check() const {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  static constexpr std::size_t kBlock = std::size_t(64) << 10;
  void drain() {
    if (!buf_.empty() && good()) put(buf_.data(), buf_.size());
    buf_.clear();
  }
  void put(const char* p, std::size_t n) {
    try {
      file_.write(p, n);
    } catch (...) {
      error_ = std::current_exception();
      status_ = makeOFCondition(OFM_dcmdata, 19, OF_error, "write failed");
    }
  }
  core::OutputFile& file_;
  std::vector<char> buf_;
  OFCondition status_ = EC_Normal;
  std::exception_ptr error_;
};

class CheckedStream : public DcmOutputStream {
 public:
  explicit CheckedStream(CheckedConsumer* c) : DcmOutputStream(c) {}
};

}  // namespace

void save_file(DcmFileFormat& ff, const std::string& file, E_TransferSyntax xfer, bool new_meta,
               const std::string& operation) {
  core::OutputFile f(file, operation);
  CheckedConsumer consumer(f);
  OFCondition st;
  {
    CheckedStream stream(&consumer);
    DcmWriteCache cache;
    ff.transferInit();
    st = ff.write(stream, xfer, EET_ExplicitLength, &cache, EGL_recalcGL, EPD_noChange, 0, 0, 0,
                  new_meta ? EWM_createNewMeta : EWM_updateMeta);
    ff.transferEnd();
    stream.flush();  // a deflate filter's last block, then ours
  }
  consumer.check();  // the system's reason first: DCMTK only says "I/O suspension"
  if (st.bad())
    core::fail<core::IoError>(operation, file, std::string("cannot write: ") + st.text());
  f.close();
}

void save_atomic(DcmFileFormat& ff, const std::string& file, E_TransferSyntax xfer,
                 const std::string& operation) {
  core::AtomicOutput out(file);
  save_file(ff, out.temp_path(), xfer, /*new_meta=*/false, operation);
  out.commit();
}

}  // namespace detail

void save_dicom_file(DcmFileFormat& ff, const std::string& file,
                     const std::string& transfer_syntax_uid, bool new_meta,
                     const std::string& operation) {
  detail::save_file(ff, file, DcmXfer(transfer_syntax_uid.c_str()).getXfer(), new_meta, operation);
}
}  // namespace isoline::rtstruct
