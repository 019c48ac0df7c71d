// The one argument check of the native modules: a failed check throws
// std::invalid_argument, which pybind11 turns into a Python ValueError whose
// message names the argument and what was expected.
#pragma once
#include <stdexcept>
#include <string>

namespace slimops {

inline void check(bool cond, const std::string& msg) {
  if (!cond) throw std::invalid_argument(msg);
}

}  // namespace slimops
