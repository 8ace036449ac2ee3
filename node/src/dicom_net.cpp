// DICOM networking of the node (DCMTK dcmnet): the C-STORE SCP that stores CT instances
// durably and records them in the queue (one thread and one queue connection per
// association, up to max_associations at once), and the C-STORE / C-ECHO SCU used to send
// results.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <system_error>
#include <thread>

#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcfilefo.h"
#include "dcmtk/dcmdata/dcuid.h"
#include "dcmtk/dcmdata/dcxfer.h"
#include "dcmtk/dcmnet/dcmtrans.h"
#include "dcmtk/dcmnet/diutil.h"
#include "dcmtk/dcmnet/dul.h"
#include "dcmtk/dcmnet/scpthrd.h"
#include "dcmtk/dcmnet/scu.h"
#include "dcmtk/oflog/appender.h"
#include "dcmtk/oflog/consap.h"
#include "dcmtk/oflog/layout.h"
#include "dcmtk/oflog/loglevel.h"
#include "dcmtk/oflog/oflog.h"
#include "dcmtk/oflog/spi/logevent.h"
#include "internal.h"
#include "isoline/core/atomic_file.h"
#include "isoline/core/error.h"
#include "isoline/node/node.h"
#include "isoline/node/node_util.h"
#include "isoline/rtstruct/dicom_file.h"

namespace fs = std::filesystem;

namespace isoline::node {

namespace detail {

namespace {

namespace l4 = dcmtk::log4cplus;

/// Hands DCMTK's log events to the node's logger (`say`, level "dcmtk INFO", "dcmtk ERROR",
/// ...): they share its lock, its destination (standard error or the --log file) and its line
/// format (timestamp, one line per event, UTF-8).
class SayAppender : public l4::Appender {
 public:
  explicit SayAppender(Say say) : say_(std::move(say)) { setName("isoline-node"); }
  ~SayAppender() override { destructorImpl(); }
  void close() override { closed = true; }

 protected:
  void append(const l4::spi::InternalLoggingEvent& e) override {
    const OFString& m = e.getMessage();
    const OFString& level = l4::getLogLevelManager().toString(e.getLogLevel());
    say_(std::string("dcmtk ") + level.c_str(), std::string(m.c_str(), m.length()));
  }

 private:
  Say say_;
};

}  // namespace

void configure_dcmtk_logging(bool debug, Say say) {
  // The logger "dcmtk" is the parent of every DCMTK module's ("dcmtk.dcmnet", "dcmtk.dcmdata",
  // ...). Configured there, not at the root, and not passing events on to the root: rtstruct's
  // first DICOM read calls OFLog::configure, which replaces the root's appenders and silences
  // it (the node's DCMTK lines stopped after its first job when they were set at the root).
  OFLogger dcmtk = OFLog::getLogger("dcmtk");
  l4::SharedAppenderPtr appender;
  if (say) {
    appender = l4::SharedAppenderPtr(new SayAppender(std::move(say)));
  } else {
    // Standard error with the node's UTC timestamp, "dcmtk" and the level instead of a bare
    // "I: ...".
    appender = l4::SharedAppenderPtr(
        new l4::ConsoleAppender(/*logToStdErr=*/true, /*immediateFlush=*/true));
    appender->setLayout(
        OFunique_ptr<l4::Layout>(new l4::PatternLayout("%d{%Y-%m-%dT%H:%M:%S.%qZ} dcmtk %p %m%n")));
  }
  dcmtk.removeAllAppenders();
  dcmtk.addAppender(appender);
  dcmtk.setAdditivity(false);
  dcmtk.setLogLevel(debug ? OFLogger::INFO_LOG_LEVEL : OFLogger::ERROR_LOG_LEVEL);
}

void reset_dcmtk_logging() {
  OFLogger dcmtk = OFLog::getLogger("dcmtk");
  dcmtk.removeAllAppenders();
  dcmtk.setAdditivity(true);
  dcmtk.setLogLevel(l4::NOT_SET_LOG_LEVEL);
}

namespace {

bool is_uid(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!(c == '.' || (c >= '0' && c <= '9'))) return false;
  return s.front() != '.' && s.back() != '.';
}

std::optional<int> get_int(DcmItem& ds, const DcmTagKey& tag) {
  Sint32 v = 0;
  if (ds.findAndGetSint32(tag, v).bad()) return std::nullopt;
  return static_cast<int>(v);
}

std::string get(DcmItem& ds, const DcmTagKey& tag) {
  OFString v;
  if (ds.findAndGetOFString(tag, v).bad()) return {};
  std::string s = v.c_str();
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

/// A UID's name in the DICOM dictionary ("RT Structure Set Storage"), or the UID itself.
std::string uid_name(const std::string& uid) {
  const char* n = dcmFindNameOfUID(uid.c_str(), nullptr);
  return n ? std::string(n) : uid;
}

/// Transfer syntaxes accepted for CT: the uncompressed ones first, then what the CT reader
/// decodes (deflate, RLE, JPEG, JPEG-LS, JPEG 2000).
const OFList<OFString>& ct_transfer_syntaxes() {
  static const OFList<OFString> l = [] {
    OFList<OFString> x;
    for (const char* u :
         {UID_LittleEndianExplicitTransferSyntax, UID_LittleEndianImplicitTransferSyntax,
          UID_BigEndianExplicitTransferSyntax, UID_DeflatedExplicitVRLittleEndianTransferSyntax,
          UID_RLELosslessTransferSyntax, UID_JPEGProcess14SV1TransferSyntax,
          UID_JPEGProcess14TransferSyntax, UID_JPEGProcess1TransferSyntax,
          UID_JPEGProcess2_4TransferSyntax, UID_JPEGLSLosslessTransferSyntax,
          UID_JPEGLSLossyTransferSyntax, UID_JPEG2000LosslessOnlyTransferSyntax,
          UID_JPEG2000TransferSyntax})
      x.push_back(u);
    return x;
  }();
  return l;
}

/// The socket of a DCMTK connection (its getter is protected; reached through a pointer to
/// member named in a derived class, never instantiated).
struct SocketAccess : DcmTransportConnection {
  static int of(DcmTransportConnection& c) { return static_cast<int>((c.*(&SocketAccess::getSocket))()); }
};

/// The SCP configuration every association shares: AE title, timeouts, accepted contexts.
DcmSCPConfig make_scp_config(const NodeConfig& cfg) {
  DcmSCPConfig c;
  c.setAETitle(cfg.aet.c_str());
  c.setPort(static_cast<Uint16>(cfg.port));
  c.setConnectionBlockingMode(DUL_NOBLOCK);
  c.setConnectionTimeout(1);  // the accept loop wakes up every second to check the stop flag
  c.setACSETimeout(static_cast<Uint32>(cfg.acse_timeout));
  c.setDIMSEBlockingMode(DIMSE_NONBLOCKING);
  c.setDIMSETimeout(static_cast<Uint32>(cfg.dimse_timeout));
  c.setHostLookupEnabled(OFFalse);
  OFList<OFString> plain;
  plain.push_back(UID_LittleEndianExplicitTransferSyntax);
  plain.push_back(UID_LittleEndianImplicitTransferSyntax);
  plain.push_back(UID_BigEndianExplicitTransferSyntax);
  c.addPresentationContext(UID_VerificationSOPClass, plain);
  c.addPresentationContext(UID_CTImageStorage, ct_transfer_syntaxes());
  return c;
}

/// Keys (e.g. calling AE titles) something was said for, shared by the associations' threads.
struct OnceSet {
  std::mutex m;
  std::set<std::string> said;
  /// True the first time `key` is given.
  bool first(const std::string& key) {
    std::lock_guard<std::mutex> lock(m);
    return said.insert(key).second;
  }
};

/// Serves one association (DcmThreadSCP::run), in its own thread, with its own queue
/// connection.
class StoreScp : public DcmThreadSCP {
 public:
  StoreScp(const NodeConfig& cfg, const DcmSCPConfig& scp_cfg, const std::string& queue_file,
           const std::atomic<bool>& stop, Say say, std::function<void()> wake,
           std::shared_ptr<OnceSet> once)
      : cfg_(cfg),
        queue_(queue_file),
        stop_(stop),
        say_(std::move(say)),
        wake_(std::move(wake)),
        once_(std::move(once)) {
    setConfig(scp_cfg);
  }

 protected:
  void notifyAssociationRequest(const T_ASC_Parameters& params, DcmSCPActionType& action) override {
    calling_ = params.DULparams.callingAPTitle;
    peer_ = params.DULparams.callingPresentationAddress;
    series_.clear();
    late_said_.clear();
    received_ = 0;
    released_ = false;
    refused_.clear();
    refused_sops_.clear();
    say_("info", "association request from '" + calling_ + "' (" + peer_ + ")");
    // The node accepts CT Image Storage and Verification only: say once which abstract
    // syntaxes the caller offered in vain (otherwise it only sees "no presentation context").
    std::set<std::string> other;
    auto* p = const_cast<T_ASC_Parameters*>(&params);
    const int n = ASC_countPresentationContexts(p);
    for (int i = 0; i < n; ++i) {
      T_ASC_PresentationContext pc;
      if (ASC_getPresentationContext(p, i, &pc).bad()) continue;
      const std::string as = pc.abstractSyntax;
      if (as != UID_CTImageStorage && as != UID_VerificationSOPClass) other.insert(uid_name(as));
    }
    // A sender that proposes what it means to send (Orthanc, a TPS) names a few SOP classes:
    // each is worth a warning. One that proposes every storage class (storescu's default)
    // gets a short info line instead of 60 names.
    if (!other.empty() && other.size() <= 8) {
      std::string list;
      for (const auto& o : other) list += (list.empty() ? "" : ", ") + o;
      say_("warning", "association from '" + calling_ + "': presentation context(s) refused for " + list +
                          " (the node accepts CT Image Storage and Verification only)");
    } else if (!other.empty()) {
      say_("info", "association from '" + calling_ + "': " + std::to_string(other.size()) +
                       " presentation contexts other than CT Image Storage and Verification refused");
    }
    DcmSCP::notifyAssociationRequest(params, action);
  }

  OFBool checkCalledAETitleAccepted(const OFString& called) override {
    if (called.c_str() == cfg_.aet) return OFTrue;
    say_("warning", "association from '" + calling_ + "' (" + peer_ +
                        ") refused: called AE title '" + called.c_str() + "' is not " + cfg_.aet);
    return OFFalse;
  }

  OFBool checkCallingAETitleAccepted(const OFString& calling) override {
    if (cfg_.allowed_calling_aets.empty()) return OFTrue;
    for (const auto& a : cfg_.allowed_calling_aets)
      if (a == calling.c_str()) return OFTrue;
    say_("warning", std::string("association from '") + calling.c_str() + "' (" + peer_ +
                        ") refused: calling AE title not accepted");
    return OFFalse;
  }

  void notifyReleaseRequest() override {
    if (released_) return;  // DCMTK may report the release twice
    released_ = true;
    say_("info", "association from '" + calling_ + "' released (" + std::to_string(received_) +
                     " instances stored" +
                     (refused_.empty() ? std::string() : ", instances of " + std::to_string(refused_.size()) +
                                                             " series refused") +
                     ")");
    mark_refused_interrupted();
    // The worker completes a released series once no instance of it arrived for the settle
    // time: a sender that opens one association per image has started the next one by then,
    // and its series stays one job.
    if (cfg_.complete_on_release) {
      for (const auto& s : series_) {
        if (refused_.count(s)) continue;
        try {
          queue_.mark_released(s, now_seconds());
        } catch (const core::Error& e) {
          say_("error", "cannot record the release of series " + s + ": " + e.what() +
                            " (it completes after the quiet time)");
        }
      }
      if (!series_.empty()) wake_();
    }
    series_.clear();
  }

  void notifyAbortRequest() override {
    say_(stop_.load() ? "info" : "warning",
         "association from '" + calling_ + (stop_.load() ? "' ended by the stop request (" : "' aborted by the peer (") +
             std::to_string(received_) + " instances stored)");
    interrupted();
  }

  void notifyDIMSEError(const OFCondition& cond) override {
    if (stop_.load())
      say_("info", "association from '" + calling_ + "' ended by the stop request (" +
                       std::to_string(received_) + " instances stored)");
    else
      say_("warning", std::string("DIMSE error on association from '") + calling_ + "': " + cond.text());
    interrupted();
  }

  OFCondition handleIncomingCommand(T_DIMSE_Message* msg,
                                    const DcmPresentationContextInfo& info) override {
    if (msg->CommandField != DIMSE_C_STORE_RQ) return DcmSCP::handleIncomingCommand(msg, info);
    T_DIMSE_C_StoreRQ& req = msg->msg.CStoreRQ;
    DcmDataset* raw = nullptr;
    OFCondition cond = receiveSTORERequest(req, info.presentationContextID, raw);
    std::unique_ptr<DcmDataset> ds(raw);
    if (cond.bad()) {
      say_("warning", std::string("C-STORE from '") + calling_ + "' not received: " + cond.text());
      return cond;
    }
    const Uint16 status = store(req, *ds, info);
    return sendSTOREResponse(info.presentationContextID, req, status);
  }

 private:
  /// Marks series `s` interrupted: its record when it now is (an error is logged when it fails).
  std::optional<SeriesRecord> mark_interrupted(const std::string& s) {
    try {
      queue_.mark_interrupted(s);
    } catch (const core::Error& e) {
      say_("error", std::string("cannot mark series ") + s + " interrupted: " + e.what());
      return std::nullopt;
    }
    auto rec = queue_.series(s);
    if (rec && rec->state == "interrupted") return rec;
    return std::nullopt;
  }

  /// Series of which this association had an instance refused (failure status) hold only a
  /// part of the scan: interrupted, as after an abort, until sent again or completed
  /// explicitly (isoline jobs --complete).
  void mark_refused_interrupted() {
    for (const auto& [s, why] : refused_) {
      if (auto rec = mark_interrupted(s))
        say_("warning", "series " + s + " is incomplete: the node refused instance(s) of it from '" + calling_ +
                            "' (" + why + "); interrupted after " + std::to_string(rec->num_instances) +
                            " instances: not processed until the sender sends it again (or isoline jobs "
                            "--complete " + s + ")");
      series_.erase(s);
    }
  }

  // The association ended abnormally: what it carried may be a part of a series. Such a
  // series is not processed until the sender sends (some of) it again.
  void interrupted() {
    mark_refused_interrupted();
    for (const auto& s : series_) {
      if (auto rec = mark_interrupted(s))
        say_("warning", "series " + s + " interrupted after " + std::to_string(rec->num_instances) +
                            " instances: not processed until the sender sends it again");
    }
    series_.clear();
  }

  /// A failure status for this instance; its series (when its UID is known) is remembered
  /// and marked interrupted now and again when the association ends.
  Uint16 refuse(Uint16 status, const std::string& why, const std::string& series = {},
                const std::string& sop_uid = {}) {
    std::string what;
    if (!series.empty()) what = "series " + series;
    if (!sop_uid.empty()) what += (what.empty() ? "" : ", ") + std::string("instance ") + sop_uid;
    say_("warning", "C-STORE from '" + calling_ + "' refused" + (what.empty() ? "" : " (" + what + ")") + ": " + why);
    if (!series.empty() && is_uid(series)) {
      refused_.emplace(series, why);
      refused_sops_[series].insert(sop_uid);
      try {
        queue_.mark_interrupted(series);  // so that the quiet time does not complete it meanwhile
      } catch (const core::Error&) {
      }
    }
    return status;
  }

  /// With completion on release, a series that arrives over several associations (a sender
  /// that opens one per image) is said once per calling AE title and node run.
  void warn_if_per_image_sender(const std::string& series) {
    std::optional<SeriesRecord> rec;
    try {
      rec = queue_.series(series);
    } catch (const core::Error&) {
      return;
    }
    if (!rec || rec->associations != 2 || !once_->first(calling_)) return;
    char settle[32];
    std::snprintf(settle, sizeof settle, "%.1f", cfg_.release_settle_seconds);
    const std::string who = "'" + calling_ + "'";
    say_("warning", "series " + series + " from " + who +
                        " arrives over several associations (one per image?): with "
                        "--complete-on-release a series is complete only when no instance of it "
                        "arrived for " + std::string(settle) +
                        " s after a release (release_settle_seconds), so that the next association "
                        "joins the same job; if " + who +
                        " pauses longer between associations, raise release_settle_seconds or "
                        "leave completion to the quiet time (said once per sender)");
  }

  Uint16 store(const T_DIMSE_C_StoreRQ& req, DcmDataset& ds,
               const DcmPresentationContextInfo& info) {
    const std::string sop_class = req.AffectedSOPClassUID;
    const std::string sop_uid = req.AffectedSOPInstanceUID;
    const std::string series = get(ds, DCM_SeriesInstanceUID);
    if (sop_class != UID_CTImageStorage)
      return refuse(STATUS_STORE_Refused_SOPClassNotSupported,
                    "SOP class " + uid_name(sop_class) + " is not CT Image Storage", series, sop_uid);
    if (get(ds, DCM_SOPClassUID) != sop_class || get(ds, DCM_SOPInstanceUID) != sop_uid)
      return refuse(STATUS_STORE_Error_DataSetDoesNotMatchSOPClass,
                    "the dataset's SOP Class/Instance UID differ from the request's", series, sop_uid);
    const std::string study = get(ds, DCM_StudyInstanceUID);
    if (!is_uid(sop_uid) || !is_uid(series) || !is_uid(study))
      return refuse(STATUS_STORE_Error_CannotUnderstand,
                    "missing or malformed Study/Series/SOP Instance UID", series, sop_uid);

    const fs::path dir = fs::path(cfg_.work_dir) / "incoming" / series;
    const std::string file = (dir / (sop_uid + ".dcm")).string();
    std::error_code ec;
    fs::create_directories(dir, ec);
    DcmFileFormat ff(&ds);
    // Every write checked (DCMTK's saveFile lost the error of its last buffer: a short file) and
    // durable before it is acknowledged: the file is on disk before its name appears (a late
    // ENOSPC/EIO, e.g. on NFS or thin-provisioned storage, refuses the instance), then its name.
    // The temporary's name is unique: two associations may carry the same instance at once.
    try {
      core::AtomicOutput out(file);
      rtstruct::save_dicom_file(ff, out.temp_path(), info.acceptedTransferSyntax.c_str(), /*new_meta=*/true,
                                "store");
      out.commit();
    } catch (const core::Error& e) {
      return refuse(STATUS_STORE_Refused_OutOfResources, e.what(), series, sop_uid);  // names `file`
    }
    if (const int err = core::sync_path(dir.string(), true))
      return refuse(STATUS_STORE_Refused_OutOfResources,
                    "cannot store durably: " + dir.string() + ": " + std::strerror(err), series, sop_uid);

    InstanceRecord r{sop_uid, series, study, sop_class, file, calling_};
    r.instance_number = get_int(ds, DCM_InstanceNumber);
    r.images_in_acquisition = get_int(ds, DCM_ImagesInAcquisition);
    {
      OFString type;
      r.localizer = ds.findAndGetOFStringArray(DCM_ImageType, type).good() &&
                    std::string(type.c_str()).find("LOCALIZER") != std::string::npos;
    }
    r.first_in_association = !series_.count(series);
    try {
      using A = JobQueue::Arrival;
      const A a = queue_.record_instance(r, now_seconds());
      if (r.first_in_association && cfg_.complete_on_release) warn_if_per_image_sender(series);
      if (a != A::Fresh && late_said_.insert(series).second) {
        const auto j = queue_.latest_job(series);
        const std::string jid = j ? std::to_string(j->id) : "ID";
        const std::string jn = "job " + jid + (j ? " (" + j->state + ", " + std::to_string(j->num_instances) + " instances)" : "");
        if (a == A::Repeat)
          say_("info", "series " + series + " already has " + jn +
                           ": instances sent again are stored, not processed again (isoline jobs --rerun " + jid +
                           " to process it again)");
        else if (a == A::Grows)
          say_("warning", "series " + series + " grows while " + jn +
                              " is not finished: new instances arrived, that job is superseded (it sends "
                              "nothing) and the series is processed again with all of them once complete");
        else
          say_("warning", "series " + series + " was already processed by " + jn +
                              ": new instances arrived, it is processed again with all of them once complete "
                              "(the new result supersedes the one already sent)");
      }
    } catch (const core::Error& e) {
      return refuse(STATUS_STORE_Refused_OutOfResources, e.what(), series, sop_uid);
    }
    if (series_.insert(series).second) {
      std::string who;
      if (cfg_.debug) {  // in the log's UTF-8 whatever the sender's character set
        OFString cs;  // every value: ISO 2022 character sets come as several
        ds.findAndGetOFStringArray(DCM_SpecificCharacterSet, cs);
        who = " patient '" + utf8_for_log(get(ds, DCM_PatientName), cs.c_str()) + "' ID '" +
              utf8_for_log(get(ds, DCM_PatientID), cs.c_str()) + "'";
      }
      say_("info", "receiving series " + series + " from '" + calling_ + "'" + who);
    }
    // An instance refused earlier in this association and now stored (the sender retried it)
    // no longer makes its series incomplete.
    if (auto it = refused_sops_.find(series); it != refused_sops_.end() && it->second.erase(sop_uid) &&
                                                it->second.empty()) {
      refused_sops_.erase(it);
      refused_.erase(series);
    }
    ++received_;
    return STATUS_Success;
  }

  const NodeConfig& cfg_;
  JobQueue queue_;
  const std::atomic<bool>& stop_;
  Say say_;
  std::function<void()> wake_;
  std::shared_ptr<OnceSet> once_;  // what the associations of this node run said once
  std::string calling_, peer_;
  std::set<std::string> series_;
  std::set<std::string> late_said_;  // series whose late arrival was logged (once per association)
  std::map<std::string, std::string> refused_;  // series with a refused instance -> why (first)
  std::map<std::string, std::set<std::string>> refused_sops_;  // and the instances refused
  int received_ = 0;
  bool released_ = false;
};

}  // namespace

bool is_localizer_series(const std::vector<std::string>& files) {
  if (files.empty()) return false;
  for (const auto& f : files) {
    DcmFileFormat ff;
    if (ff.loadFile(f.c_str(), EXS_Unknown, EGL_noChange, 256).bad()) return false;  // the reader says why
    OFString v;
    if (ff.getDataset()->findAndGetOFStringArray(DCM_ImageType, v).bad()) return false;
    if (std::string(v.c_str()).find("LOCALIZER") == std::string::npos) return false;
  }
  return true;
}

/// The accept loop: each association is served by a StoreScp in its own thread, so a long
/// series from one sender does not hold up another; beyond max_associations open at once
/// a caller is rejected (transient, local limit exceeded) and may try again.
struct Listener::Impl {
  const NodeConfig& cfg;
  std::string queue_file;
  std::atomic<bool>* stop;
  Say say;
  std::function<void()> wake;
  DcmSCPConfig scp_cfg;
  std::shared_ptr<OnceSet> once = std::make_shared<OnceSet>();
  T_ASC_Network* net = nullptr;
  /// What an association's thread shares with the listener: its socket, which the listener
  /// shuts down to end the association at a stop (only while the thread has not yet closed
  /// it: `closed` under the mutex), and whether the thread has finished.
  struct Conn {
    std::mutex m;
    int fd = -1;
    bool closed = false;
    std::atomic<bool> done{false};
  };
  struct Worker {
    std::thread thread;
    std::shared_ptr<Conn> conn;
  };
  /// At a stop request, open associations get this long to finish before they are ended.
  static constexpr double kStopGraceSeconds = 5.0;
  std::list<Worker> workers;

  Impl(const NodeConfig& c, std::atomic<bool>& s, Say sy, std::function<void()> w)
      : cfg(c),
        queue_file(queue_path(c.work_dir)),
        stop(&s),
        say(std::move(sy)),
        wake(std::move(w)),
        scp_cfg(make_scp_config(c)) {}

  ~Impl() {
    join(true);
    if (net) ASC_dropNetwork(&net);
  }

  /// Joins the threads whose association ended (all of them if `all`); returns how many run.
  std::size_t join(bool all) {
    for (auto it = workers.begin(); it != workers.end();) {
      if (all || it->conn->done.load()) {
        it->thread.join();
        it = workers.erase(it);
      } else {
        ++it;
      }
    }
    return workers.size();
  }

  static void drop(T_ASC_Association*& assoc) {
    if (!assoc) return;
    ASC_dropAssociation(assoc);
    ASC_destroyAssociation(&assoc);
  }

  void reject_busy(T_ASC_Association*& assoc) {
    say("warning", std::string("association from '") + assoc->params->DULparams.callingAPTitle +
                       "' (" + assoc->params->DULparams.callingPresentationAddress + ") refused: " +
                       std::to_string(workers.size()) + " associations open (max_associations " +
                       std::to_string(cfg.max_associations) + "); the caller may retry");
    T_ASC_RejectParameters rej;
    rej.result = ASC_RESULT_REJECTEDTRANSIENT;
    rej.source = ASC_SOURCE_SERVICEPROVIDER_PRESENTATION_RELATED;
    rej.reason = ASC_REASON_SP_PRES_LOCALLIMITEXCEEDED;
    ASC_rejectAssociation(assoc, &rej);
    drop(assoc);
  }

  void start(T_ASC_Association* assoc) {
    // The SCP (and its queue connection) is made here, so that a failure to open the queue
    // refuses this association instead of ending a thread silently.
    std::unique_ptr<StoreScp> scp;
    try {
      scp = std::make_unique<StoreScp>(cfg, scp_cfg, queue_file, *stop, say, wake, once);
    } catch (const std::exception& e) {
      say("error", std::string("association refused: ") + e.what());
      drop(assoc);
      return;
    }
    auto conn = std::make_shared<Conn>();
    if (assoc->DULassociation)
      if (DcmTransportConnection* tc = DUL_getTransportConnection(assoc->DULassociation))
        conn->fd = SocketAccess::of(*tc);
    std::thread t;
    try {
      t = std::thread([scp = std::move(scp), assoc, conn, this]() mutable {
        // Nothing may leave this thread (std::terminate would end the node and every other
        // association): an error ends this association only.
        try {
          const OFCondition c =
              scp->run(assoc);  // negotiation, then the DIMSE loop; the SCP frees assoc
          if (c.bad() && c != DUL_PEERREQUESTEDRELEASE && c != DUL_PEERABORTEDASSOCIATION)
            say("warning", std::string("association ended: ") + c.text());
        } catch (const std::exception& e) {
          say("error", std::string("association ended by an error: ") + e.what());
        } catch (...) {
          say("error", "association ended by an unknown error");
        }
        {
          std::lock_guard<std::mutex> lock(conn->m);
          conn->closed = true;  // the SCP closes the socket now: the listener must not touch it
        }
        try {
          scp.reset();
        } catch (...) {
        }
        conn->done.store(true);
      });
    } catch (const std::system_error& e) {  // no thread to be had: refuse this caller only
      say("error", std::string("association refused: cannot start a thread: ") + e.what());
      drop(assoc);
      return;
    }
    workers.push_back({std::move(t), conn});
  }
};

Listener::Listener(const NodeConfig& config, std::atomic<bool>& stop, Say say,
                   std::function<void()> wake_worker)
    : impl_(std::make_unique<Impl>(config, stop, std::move(say), std::move(wake_worker))) {}

Listener::~Listener() = default;

void Listener::open() {
  // As DcmSCP::openListenPort: keep the received data as it is.
  dcmEnableAutomaticInputDataCorrection.set(OFFalse);
  OFCondition c =
      ASC_initializeNetwork(NET_ACCEPTOR, impl_->cfg.port, impl_->cfg.acse_timeout, &impl_->net);
  if (c.bad()) {
    impl_->net = nullptr;
    core::fail<core::IoError>("listen", "port " + std::to_string(impl_->cfg.port),
                              std::string("cannot open: ") + c.text());
  }
}

void Listener::serve() {
  Impl& m = *impl_;
  if (!m.net)
    core::fail<core::IoError>("listen", "port " + std::to_string(m.cfg.port), "not opened");
  while (!m.stop->load()) {
    m.join(false);
    T_ASC_Association* assoc = nullptr;
    OFCondition c =
        ASC_receiveAssociation(m.net, &assoc, static_cast<long>(m.scp_cfg.getMaxReceivePDULength()),
                               nullptr, nullptr, OFFalse, DUL_NOBLOCK, 1);
    if (c == DUL_NOASSOCIATIONREQUEST) {  // one second without a caller
      ASC_destroyAssociation(&assoc);
      continue;
    }
    if (c.bad()) {
      // Network errors (garbage on the port, a peer vanishing) end that connection only.
      Impl::drop(assoc);
      if (m.stop->load()) break;
      m.say("warning", std::string("listener: ") + c.text() + "; still listening");
      continue;
    }
    if (m.stop->load()) {
      Impl::drop(assoc);
      break;
    }
    // At the limit, give an association that is just winding down (its peer already
    // released it) half a second to end before refusing the caller.
    const auto max = static_cast<std::size_t>(m.cfg.max_associations);
    for (int i = 0; i < 10 && m.join(false) >= max; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (m.join(false) >= max) {
      m.reject_busy(assoc);
      continue;
    }
    m.start(assoc);
  }
  // A stop: associations in progress get kStopGraceSeconds to finish; then their sockets
  // are shut down, which ends them at once (what was acknowledged is stored; the sender sees
  // a failed transfer and sends again later) instead of waiting for a stalled peer's DIMSE
  // timeout.
  const auto t0 = std::chrono::steady_clock::now();
  while (m.join(false) > 0 &&
         std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < Impl::kStopGraceSeconds)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  if (!m.workers.empty()) {
    m.say("info", "stop: ending " + std::to_string(m.workers.size()) +
                      " open association(s); the instances they delivered are stored");
    for (auto& w : m.workers) {
      std::lock_guard<std::mutex> lock(w.conn->m);
      if (!w.conn->closed && w.conn->fd >= 0) ::shutdown(w.conn->fd, SHUT_RDWR);
    }
  }
  m.join(true);
}

}  // namespace detail

// ------------------------------------------------------------------------------------------
// SCU

namespace {

std::string sop_class_of(const std::string& file) {
  DcmFileFormat ff;
  OFCondition c = ff.loadFile(file.c_str(), EXS_Unknown, EGL_noChange, 1024);
  if (c.bad()) core::fail<core::IoError>("send", file, std::string("not readable: ") + c.text());
  OFString v;
  if (ff.getDataset()->findAndGetOFString(DCM_SOPClassUID, v).bad() || v.empty())
    core::fail<core::IoError>("send", file, "no SOP Class UID");
  return v.c_str();
}

void setup(DcmSCU& scu, const Destination& to, const std::string& calling_aet, int acse,
           int dimse) {
  scu.setAETitle(calling_aet.c_str());
  scu.setPeerHostName(to.host.c_str());
  scu.setPeerPort(static_cast<Uint16>(to.port));
  scu.setPeerAETitle(to.aet.c_str());
  scu.setACSETimeout(static_cast<Uint32>(acse));
  scu.setDIMSEBlockingMode(DIMSE_NONBLOCKING);
  scu.setDIMSETimeout(static_cast<Uint32>(dimse));
  scu.setConnectionTimeout(acse);
}

// DcmSCU keeps the A-ASSOCIATE-RJ parameters in its private m_params and only logs them at
// debug level. The standard's rule that explicit instantiations may name private members
// gives read access to that pointer (nothing is modified).
template <typename Tag, typename Tag::type Member>
struct PrivateMember {
  friend typename Tag::type get(Tag) { return Member; }
};
struct ScuParams {
  using type = T_ASC_Parameters* DcmSCU::*;
  friend type get(ScuParams);
};
template struct PrivateMember<ScuParams, &DcmSCU::m_params>;

void connect(DcmSCU& scu, const Destination& to) {
  OFCondition c = scu.initNetwork();
  if (c.bad())
    core::fail<core::IoError>("send", to.to_string(), std::string("network: ") + c.text());
  c = scu.negotiateAssociation();
  if (c.bad()) {
    std::string why = c.text();
    if (c == DUL_ASSOCIATIONREJECTED)  // the destination's result, source and reason
      if (T_ASC_Parameters* p = scu.*get(ScuParams{})) {
        T_ASC_RejectParameters rej;
        if (ASC_getRejectParameters(p, &rej).good()) {
          OFString t;
          why += " (" + one_line(ASC_printRejectParameters(t, &rej).c_str()) + ")";
        }
      }
    core::fail<core::IoError>("send", to.to_string(), "association: " + one_line(why));
  }
}

}  // namespace

void send_files(const std::vector<std::string>& files, const Destination& to,
                const std::string& calling_aet, int acse_timeout, int dimse_timeout) {
  if (files.empty()) return;
  DcmSCU scu;
  setup(scu, to, calling_aet, acse_timeout, dimse_timeout);
  std::map<std::string, std::string> classes;
  std::set<std::string> distinct;
  for (const auto& f : files) distinct.insert(classes[f] = sop_class_of(f));
  OFList<OFString> ts;
  ts.push_back(UID_LittleEndianExplicitTransferSyntax);
  ts.push_back(UID_LittleEndianImplicitTransferSyntax);
  for (const auto& c : distinct) scu.addPresentationContext(c.c_str(), ts);
  connect(scu, to);
  for (const auto& f : files) {
    const T_ASC_PresentationContextID pc = scu.findPresentationContextID(classes[f].c_str(), "");
    if (pc == 0) {
      scu.releaseAssociation();
      core::fail<core::IoError>("send", to.to_string(),
                                "SOP class " + classes[f] + " not accepted");
    }
    Uint16 status = 0xFFFF;
    OFCondition c = scu.sendSTORERequest(pc, OFFilename(f.c_str()), nullptr, status);
    if (c.bad()) {
      scu.abortAssociation();
      core::fail<core::IoError>("send", to.to_string(), std::string("C-STORE: ") + c.text());
    }
    if (status != STATUS_Success && (status & 0xF000) != 0xB000) {
      scu.releaseAssociation();
      char buf[8];
      std::snprintf(buf, sizeof buf, "%04X", status);
      core::fail<core::IoError>("send", to.to_string(),
                                std::string("C-STORE refused with status 0x") + buf);
    }
  }
  scu.releaseAssociation();
}

void echo(const Destination& to, const std::string& calling_aet, int timeout) {
  DcmSCU scu;
  setup(scu, to, calling_aet, timeout, timeout);
  OFList<OFString> ts;
  ts.push_back(UID_LittleEndianExplicitTransferSyntax);
  ts.push_back(UID_LittleEndianImplicitTransferSyntax);
  scu.addPresentationContext(UID_VerificationSOPClass, ts);
  connect(scu, to);
  OFCondition c = scu.sendECHORequest(0);
  scu.releaseAssociation();
  if (c.bad()) core::fail<core::IoError>("echo", to.to_string(), c.text());
}

}  // namespace isoline::node
