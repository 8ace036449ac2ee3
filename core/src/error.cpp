#include "isoline/core/error.h"

namespace isoline::core {

namespace detail {
std::string name_targets_not_temporaries(std::string message);  // atomic_file.cpp
}

std::string format_error(std::string_view operation, std::string_view subject,
                         std::string_view problem) {
  std::string msg(operation);
  if (!subject.empty()) {
    msg += ": ";
    msg += subject;
  }
  msg += ": ";
  msg += problem;
  msg = detail::name_targets_not_temporaries(std::move(msg));
  // One line: errors are shown on a terminal and in logs.
  for (char& c : msg)
    if (c == '\n' || c == '\r') c = ' ';
  return msg;
}

const std::vector<std::string>& Error::warnings() const noexcept {
  static const std::vector<std::string> none;
  return warnings_ ? *warnings_ : none;
}

void Error::add_warnings(const std::vector<std::string>& warnings) {
  if (warnings.empty()) return;
  auto all = std::make_shared<std::vector<std::string>>(this->warnings());
  all->insert(all->end(), warnings.begin(), warnings.end());
  warnings_ = std::move(all);
}

}  // namespace isoline::core
