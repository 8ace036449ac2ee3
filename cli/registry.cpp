// The registry table: one line per subcommand. `isoline --help` is generated from it.
// A new subcommand: write cmd_<name>.cpp defining make_<name>_command(), declare it here
// and add it to the table.
#include "command.h"

namespace isoline::cli {

Command make_info_command();
Command make_dvh_command();
Command make_register_command();

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      make_info_command(),
      make_dvh_command(),
      make_register_command(),
  };
  return table;
}

}  // namespace isoline::cli
