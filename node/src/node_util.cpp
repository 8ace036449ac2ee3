// One-line log entries, the worker's error back-off, checked fsync.
#include "isoline/node/node_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace isoline::node {

std::string one_line(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
      if (i + 1 < s.size()) out += " | ";
      continue;
    }
    out += c;
  }
  while (!out.empty() && (out.back() == ' ' || out.back() == '|')) out.pop_back();
  return out;
}

std::string fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) return std::string("open: ") + std::strerror(errno);
  std::string err;
  if (::fsync(fd) != 0) err = std::string("fsync: ") + std::strerror(errno);
  if (::close(fd) != 0 && err.empty()) err = std::string("close: ") + std::strerror(errno);
  return err;
}

bool ErrorBackoff::on_error(const std::string& what, double now) {
  ++total_;
  if (!failing_ || what != last_) {
    const bool was = failing_;
    failing_ = true;
    last_ = what;
    delay_ = was ? std::min(max_, std::max(delay_, initial_) * 2.0) : initial_;
    last_logged_ = now;
    repeats_ = 0;
    return true;
  }
  delay_ = std::min(max_, delay_ * 2.0);
  ++repeats_;
  if (now - last_logged_ >= remind_) {
    last_logged_ = now;
    return true;
  }
  return false;
}

int ErrorBackoff::on_success() {
  const int n = total_;
  failing_ = false;
  last_.clear();
  delay_ = 0;
  repeats_ = 0;
  total_ = 0;
  return n;
}

}  // namespace isoline::node
