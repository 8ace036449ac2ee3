#include "isoline/core/error.h"

namespace isoline::core {

std::string format_error(std::string_view operation, std::string_view subject,
                         std::string_view problem) {
  std::string msg(operation);
  if (!subject.empty()) {
    msg += ": ";
    msg += subject;
  }
  msg += ": ";
  msg += problem;
  // One line: errors are shown on a terminal and in logs.
  for (char& c : msg)
    if (c == '\n' || c == '\r') c = ' ';
  return msg;
}

}  // namespace isoline::core
