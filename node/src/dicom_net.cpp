// DICOM networking of the node (DCMTK dcmnet): the C-STORE SCP that stores CT instances
// durably and records them in the queue, and the C-STORE / C-ECHO SCU used to send results.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcfilefo.h"
#include "dcmtk/dcmdata/dcuid.h"
#include "dcmtk/dcmdata/dcxfer.h"
#include "dcmtk/dcmnet/diutil.h"
#include "dcmtk/dcmnet/scp.h"
#include "dcmtk/dcmnet/scu.h"
#include "dcmtk/oflog/oflog.h"
#include "internal.h"
#include "isoline/core/error.h"
#include "isoline/node/node.h"

namespace fs = std::filesystem;

namespace isoline::node {

namespace detail {

void configure_dcmtk_logging(bool debug) {
  OFLog::configure(debug ? OFLogger::INFO_LOG_LEVEL : OFLogger::ERROR_LOG_LEVEL);
}

namespace {

bool is_uid(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!(c == '.' || (c >= '0' && c <= '9'))) return false;
  return s.front() != '.' && s.back() != '.';
}

std::string get(DcmItem& ds, const DcmTagKey& tag) {
  OFString v;
  if (ds.findAndGetOFString(tag, v).bad()) return {};
  std::string s = v.c_str();
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

/// Transfer syntaxes accepted for CT: the uncompressed ones first, then what the CT reader
/// decodes (deflate, RLE, JPEG, JPEG-LS, JPEG 2000).
const OFList<OFString>& ct_transfer_syntaxes() {
  static const OFList<OFString> l = [] {
    OFList<OFString> x;
    for (const char* u :
         {UID_LittleEndianExplicitTransferSyntax, UID_LittleEndianImplicitTransferSyntax,
          UID_BigEndianExplicitTransferSyntax, UID_DeflatedExplicitVRLittleEndianTransferSyntax,
          UID_RLELosslessTransferSyntax, UID_JPEGProcess14SV1TransferSyntax, UID_JPEGProcess14TransferSyntax,
          UID_JPEGProcess1TransferSyntax, UID_JPEGProcess2_4TransferSyntax, UID_JPEGLSLosslessTransferSyntax,
          UID_JPEGLSLossyTransferSyntax, UID_JPEG2000LosslessOnlyTransferSyntax, UID_JPEG2000TransferSyntax})
      x.push_back(u);
    return x;
  }();
  return l;
}

class StoreScp : public DcmSCP {
 public:
  StoreScp(const NodeConfig& cfg, JobQueue& queue, std::atomic<bool>& stop, Say say,
           std::function<void()> wake)
      : cfg_(cfg), queue_(queue), stop_(stop), say_(std::move(say)), wake_(std::move(wake)) {
    DcmSCPConfig& c = getConfig();
    c.setAETitle(cfg.aet.c_str());
    c.setPort(static_cast<Uint16>(cfg.port));
    c.setConnectionBlockingMode(DUL_NOBLOCK);
    c.setConnectionTimeout(1);  // wake up every second to check the stop flag
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
  }

 protected:
  void notifyAssociationRequest(const T_ASC_Parameters& params, DcmSCPActionType& action) override {
    calling_ = params.DULparams.callingAPTitle;
    peer_ = params.DULparams.callingPresentationAddress;
    series_.clear();
    received_ = 0;
    released_ = false;
    say_("info", "association request from '" + calling_ + "' (" + peer_ + ")");
    DcmSCP::notifyAssociationRequest(params, action);
  }

  OFBool checkCalledAETitleAccepted(const OFString& called) override {
    if (called.c_str() == cfg_.aet) return OFTrue;
    say_("warning", "association from '" + calling_ + "' (" + peer_ + ") refused: called AE title '" +
                        called.c_str() + "' is not " + cfg_.aet);
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
                     " instances stored)");
    if (cfg_.complete_on_release) {
      for (const auto& s : series_) {
        const long long id = queue_.complete_series(s, cfg_.job_kind, now_seconds());
        if (id) say_("info", "job " + std::to_string(id) + ": series " + s + " complete (association released)");
      }
      if (!series_.empty()) wake_();
    }
    series_.clear();
  }

  void notifyAbortRequest() override {
    say_("warning", "association from '" + calling_ + "' aborted by the peer (" + std::to_string(received_) +
                        " instances stored; the series completes after the quiet time)");
    series_.clear();
  }

  void notifyDIMSEError(const OFCondition& cond) override {
    say_("warning", std::string("DIMSE error on association from '") + calling_ + "': " + cond.text());
  }

  OFBool stopAfterConnectionTimeout() override { return stop_.load(); }
  OFBool stopAfterCurrentAssociation() override { return stop_.load(); }

  OFCondition handleIncomingCommand(T_DIMSE_Message* msg, const DcmPresentationContextInfo& info) override {
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
  Uint16 refuse(Uint16 status, const std::string& why) {
    say_("warning", "C-STORE from '" + calling_ + "' refused: " + why);
    return status;
  }

  Uint16 store(const T_DIMSE_C_StoreRQ& req, DcmDataset& ds, const DcmPresentationContextInfo& info) {
    const std::string sop_class = req.AffectedSOPClassUID;
    const std::string sop_uid = req.AffectedSOPInstanceUID;
    if (sop_class != UID_CTImageStorage)
      return refuse(STATUS_STORE_Refused_SOPClassNotSupported, "SOP class " + sop_class + " is not CT Image Storage");
    if (get(ds, DCM_SOPClassUID) != sop_class || get(ds, DCM_SOPInstanceUID) != sop_uid)
      return refuse(STATUS_STORE_Error_DataSetDoesNotMatchSOPClass,
                    "the dataset's SOP Class/Instance UID differ from the request's");
    const std::string series = get(ds, DCM_SeriesInstanceUID);
    const std::string study = get(ds, DCM_StudyInstanceUID);
    if (!is_uid(sop_uid) || !is_uid(series) || !is_uid(study))
      return refuse(STATUS_STORE_Error_CannotUnderstand, "missing or malformed Study/Series/SOP Instance UID");

    const fs::path dir = fs::path(cfg_.work_dir) / "incoming" / series;
    const std::string file = (dir / (sop_uid + ".dcm")).string();
    const std::string tmp = (dir / ("." + sop_uid + ".part")).string();
    std::error_code ec;
    fs::create_directories(dir, ec);
    const E_TransferSyntax xfer = DcmXfer(info.acceptedTransferSyntax.c_str()).getXfer();
    DcmFileFormat ff(&ds);
    OFCondition c = ff.saveFile(tmp.c_str(), xfer, EET_ExplicitLength, EGL_recalcGL, EPD_noChange, 0, 0,
                                EWM_createNewMeta);
    if (c.bad()) {
      fs::remove(tmp, ec);
      return refuse(STATUS_STORE_Refused_OutOfResources, std::string("cannot write: ") + c.text());
    }
    fsync_path(tmp, false);
    fs::rename(tmp, file, ec);
    if (ec) return refuse(STATUS_STORE_Refused_OutOfResources, "cannot rename: " + ec.message());
    fsync_path(dir.string(), true);

    InstanceRecord r{sop_uid, series, study, sop_class, file, calling_};
    try {
      const bool fresh = queue_.record_instance(r, now_seconds());
      if (!fresh)
        say_("warning", "instance of series " + series +
                            " arrived after the series was processed: stored, not processed again "
                            "(isoline jobs --rerun ID to process it again)");
    } catch (const core::Error& e) {
      return refuse(STATUS_STORE_Refused_OutOfResources, e.what());
    }
    if (series_.insert(series).second) {
      std::string who;
      if (cfg_.debug)
        who = " patient '" + get(ds, DCM_PatientName) + "' ID '" + get(ds, DCM_PatientID) + "'";
      say_("info", "receiving series " + series + " from '" + calling_ + "'" + who);
    }
    ++received_;
    return STATUS_Success;
  }

  const NodeConfig& cfg_;
  JobQueue& queue_;
  std::atomic<bool>& stop_;
  Say say_;
  std::function<void()> wake_;
  std::string calling_, peer_;
  std::set<std::string> series_;
  int received_ = 0;
  bool released_ = false;
};

}  // namespace

struct Listener::Impl {
  std::unique_ptr<StoreScp> scp;
  std::atomic<bool>* stop;
  Say say;
};

Listener::Listener(const NodeConfig& config, JobQueue& queue, std::atomic<bool>& stop, Say say,
                   std::function<void()> wake_worker)
    : impl_(std::make_unique<Impl>()) {
  impl_->scp = std::make_unique<StoreScp>(config, queue, stop, say, std::move(wake_worker));
  impl_->stop = &stop;
  impl_->say = std::move(say);
}

Listener::~Listener() = default;

void Listener::open() {
  OFCondition c = impl_->scp->openListenPort();
  if (c.bad())
    core::fail<core::IoError>("listen", "port " + std::to_string(impl_->scp->getConfig().getPort()),
                              std::string("cannot open: ") + c.text());
}

void Listener::serve() {
  while (!impl_->stop->load()) {
    OFCondition c = impl_->scp->acceptAssociations();
    if (impl_->stop->load()) break;
    // Network errors (garbage on the port, a peer vanishing) end one association only.
    impl_->say("warning", std::string("listener: ") + c.text() + "; still listening");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
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

void setup(DcmSCU& scu, const Destination& to, const std::string& calling_aet, int acse, int dimse) {
  scu.setAETitle(calling_aet.c_str());
  scu.setPeerHostName(to.host.c_str());
  scu.setPeerPort(static_cast<Uint16>(to.port));
  scu.setPeerAETitle(to.aet.c_str());
  scu.setACSETimeout(static_cast<Uint32>(acse));
  scu.setDIMSEBlockingMode(DIMSE_NONBLOCKING);
  scu.setDIMSETimeout(static_cast<Uint32>(dimse));
  scu.setConnectionTimeout(acse);
}

void connect(DcmSCU& scu, const Destination& to) {
  OFCondition c = scu.initNetwork();
  if (c.bad()) core::fail<core::IoError>("send", to.to_string(), std::string("network: ") + c.text());
  c = scu.negotiateAssociation();
  if (c.bad()) core::fail<core::IoError>("send", to.to_string(), std::string("association: ") + c.text());
}

}  // namespace

void send_files(const std::vector<std::string>& files, const Destination& to, const std::string& calling_aet,
                int acse_timeout, int dimse_timeout) {
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
      core::fail<core::IoError>("send", to.to_string(), "SOP class " + classes[f] + " not accepted");
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
      core::fail<core::IoError>("send", to.to_string(), std::string("C-STORE refused with status 0x") + buf);
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
