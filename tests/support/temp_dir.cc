#include "support/temp_dir.h"

#include <cstdlib>
#include <stdexcept>

namespace aloft::testing {

TempDir::TempDir() {
  std::string base = std::filesystem::temp_directory_path().string() + "/aloft-test-XXXXXX";
  if (::mkdtemp(base.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = base;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace aloft::testing
