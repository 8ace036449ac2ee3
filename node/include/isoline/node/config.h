// Configuration of the DICOM node (`isoline listen`): network identity, accepted callers,
// destinations, completion rule, job kind, retries, de-identification, logging.
#pragma once

#include <string>
#include <vector>

namespace isoline::node {

/// A C-STORE destination (the TPS, a PACS): "AET@host:port".
struct Destination {
  std::string aet;
  std::string host;
  int port = 104;
  std::string to_string() const;
};

/// Parses "AET@host:port". Throws core::InvalidInput naming the text.
Destination parse_destination(const std::string& text);

struct NodeConfig {
  /// Listening port and our AE title (the called AE title must match it).
  int port = 11112;
  std::string aet = "ISOLINE";
  /// Calling AE titles accepted; empty = any.
  std::vector<std::string> allowed_calling_aets;
  /// Where results are sent (all of them).
  std::vector<Destination> destinations;
  /// Received instances, the job queue (queue.sqlite), results and the de-identification map.
  std::string work_dir = "isoline-node";
  /// A series is complete when no instance of it arrived for this long (seconds).
  double quiet_seconds = 30.0;
  /// Also complete the series of an association when the caller releases it normally, once
  /// no instance of it arrived for release_settle_seconds after the release (a sender that
  /// opens one association per image starts the next one within that time: one job).
  bool complete_on_release = false;
  double release_settle_seconds = 2.0;
  /// A complete series with fewer instances than this (localizers aside) is held, not
  /// processed (0: no minimum).
  int min_slices = 20;
  /// Hold a series that looks partial when complete (fewer instances than its Images in
  /// Acquisition, gaps in its Instance Numbers); false: process it with a warning.
  bool hold_partial_series = true;
  /// "contour" (default): RT-STRUCT; "run": the whole main job (pipeline::run_case:
  /// contour, plan, dose, report), sending RT-STRUCT and RT-DOSE.
  std::string job_kind = "contour";
  /// Job "run": optimizer iterations (0 = the plan template's).
  int run_max_iterations = 0;
  /// De-identify the CT before processing, re-identify the results before sending.
  bool deidentify = false;
  /// Sending: attempts before a job is marked failed, and the back-off between them
  /// (doubling from retry_initial_seconds up to retry_max_seconds).
  int max_send_attempts = 10;
  double retry_initial_seconds = 10.0;
  double retry_max_seconds = 600.0;
  /// Processing attempts (a crash or error during contouring) before the job fails.
  int max_process_attempts = 2;
  /// Contouring: structures (empty = all + Body), model card (empty = shipped), device.
  std::vector<std::string> structures;
  std::string model_card;
  std::string device = "cpu";
  /// Log patient names and IDs (and DCMTK's network details). Off by default.
  bool debug = false;
  /// Log file ("" = standard error).
  std::string log_file;
  /// Associations served at once, each in its own thread (a scanner's long series does not
  /// hold up another sender); a caller beyond this is rejected as transient and may retry.
  int max_associations = 8;
  /// Network timeouts (seconds).
  int acse_timeout = 10;
  int dimse_timeout = 60;
};

/// Reads a JSON configuration (keys as in NodeConfig; "destinations": ["AET@host:port"],
/// "allowed_calling_aets": [...]) on top of `base`. Unknown keys are errors (a misspelled
/// key must not be silently ignored). Throws core::IoError / core::InvalidInput.
NodeConfig load_config(const std::string& file, NodeConfig base = {});

/// Checks the values (port range, AE title length, job kind, ...). Throws InvalidInput.
void validate(const NodeConfig& config);

/// Path of the job queue database in a work directory.
std::string queue_path(const std::string& work_dir);

}  // namespace isoline::node
