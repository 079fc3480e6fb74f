// In-process control of the shim: when libhotbackup.so is loaded into this process
// (LD_PRELOAD), its hotbackup_request() is the same request handler the control socket uses
// (native/shim/include/hotbackup.h, docs/protocol.md). Found at run time with
// dlsym(RTLD_DEFAULT): the addon has no link-time dependency on the shim.
#pragma once
#include <string>

namespace hb {
namespace control {

struct Shim {
  char *(*request)(const char *) = nullptr;
  void (*free_reply)(char *) = nullptr;
  int (*is_served)() = nullptr;
  std::string path;  // the shared object that defines hotbackup_request (dladdr), or ""
  bool loaded() const { return request && free_reply; }
};

// Looks the shim's entry points up in the process's global scope.
Shim find_shim();

// Sends one request (a JSON object) and returns the reply text. Requires shim.loaded().
// Returns false only when the shim returned NULL (memory exhausted).
bool request(const Shim &shim, const std::string &json, std::string &reply);

}  // namespace control
}  // namespace hb
