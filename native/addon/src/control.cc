#include "control.h"

#include <dlfcn.h>

namespace hb {
namespace control {

Shim find_shim() {
  Shim s;
  s.request = reinterpret_cast<char *(*)(const char *)>(::dlsym(RTLD_DEFAULT, "hotbackup_request"));
  s.free_reply = reinterpret_cast<void (*)(char *)>(::dlsym(RTLD_DEFAULT, "hotbackup_free"));
  s.is_served = reinterpret_cast<int (*)()>(::dlsym(RTLD_DEFAULT, "hotbackup_is_served"));
  if (s.request) {
    Dl_info info;
    if (::dladdr(reinterpret_cast<void *>(s.request), &info) && info.dli_fname) s.path = info.dli_fname;
  }
  return s;
}

bool request(const Shim &shim, const std::string &json, std::string &reply) {
  char *r = shim.request(json.c_str());
  if (!r) return false;
  reply.assign(r);
  shim.free_reply(r);
  return true;
}

}  // namespace control
}  // namespace hb
