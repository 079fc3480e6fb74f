// Fuzz target: the shim's path containment and joining (paths.cc), which decide whether a
// server's file is under a source and where its copy goes. The shim only ever asks about
// normalised absolute paths (realpath'd, or refused by the request checks), so other inputs are
// skipped. Properties: when path_inside() says yes, joining the root and the relative part gives
// the path back and the relative part does not start at "/"; a path is never inside a root that
// only shares a prefix of its name.
#include <cstdint>
#include <cstdio>
#include <string>

#include "paths.h"

namespace {
bool normalised(const std::string &p) {
  if (p.empty() || p[0] != '/' || p.find('\0') != std::string::npos) return false;
  if (p == "/") return true;
  if (p.back() == '/') return false;
  return p.find("//") == std::string::npos && p.find("/./") == std::string::npos &&
         p.find("/../") == std::string::npos && p.compare(p.size() - 2, 2, "/.") != 0 &&
         (p.size() < 3 || p.compare(p.size() - 3, 3, "/..") != 0);
}

[[noreturn]] void violated(const char *what, const std::string &path, const std::string &root) {
  std::fprintf(stderr, "fuzz_paths: %s: path %s root %s\n", what, path.c_str(), root.c_str());
  __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string in(reinterpret_cast<const char *>(data), size);
  size_t cut = in.find('\n');
  std::string path = in.substr(0, cut);
  std::string root = cut == std::string::npos ? "/" : in.substr(cut + 1);
  if (!normalised(path) || !normalised(root)) return 0;
  std::string rel;
  if (hb::path_inside(path, root, &rel)) {
    if (rel.empty() ? path != root && !(root == "/" && path == "/") : hb::join_path(root, rel) != path)
      violated("root + rel is not the path", path, root);
    if (!rel.empty() && rel[0] == '/') violated("rel starts at /", path, root);
    if (root != "/" && path != root && path.compare(0, root.size() + 1, root + "/") != 0)
      violated("inside a root that is only a prefix", path, root);
  }
  if (!rel.empty()) (void)hb::base_name(rel);
  return 0;
}
