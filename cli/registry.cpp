// The registry table: one line per subcommand. `isoline --help` is generated from it.
// A new subcommand: write cmd_<name>.cpp defining make_<name>_command(), declare it here
// and add it to the table.
#include "command.h"

namespace isoline::cli {

Command make_info_command();
Command make_convert_command();
Command make_phantom_command();
Command make_contour_command();
Command make_eval_command();
Command make_dose_command();
Command make_dvh_command();
Command make_plan_command();
Command make_run_command();
Command make_register_command();
Command make_adapt_command();
Command make_serve_command();
Command make_listen_command();
Command make_jobs_command();
Command make_deidentify_command();

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      make_info_command(),      // inspect files
      make_convert_command(),   // DICOM <-> NIfTI
      make_phantom_command(),   // generated cases
      make_contour_command(),   // auto-contouring
      make_eval_command(),      // contour accuracy
      make_dose_command(),      // dose calculation
      make_dvh_command(),       // DVH and criteria
      make_plan_command(),      // achievable dose
      make_run_command(),       // the main job
      make_register_command(),  // registration
      make_adapt_command(),     // adaptive replanning
      make_serve_command(),     // review UI
      make_listen_command(),    // DICOM node
      make_jobs_command(),      // DICOM node job queue
      make_deidentify_command(),  // PS3.15 de-identification
  };
  return table;
}

}  // namespace isoline::cli
