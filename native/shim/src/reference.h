// Test hook (HOTBACKUP_TEST_HOOKS=1 and HOTBACKUP_TEST_REFERENCE=DIR in the served process):
// a byte-exact copy of the sources taken while the cut holds the barrier exclusively, when no
// captured call can run. The sealed backup must then equal it file for file; a difference is
// a torn page, a missed write path or a stale read, found where it happens.
#pragma once
#include <string>
#include <vector>

namespace hb {

// The reference directory asked for by the environment, or "" (also when test hooks are off).
std::string reference_dir_requested();

// Copies sources[i] to ref/roots[i] ("" = ref itself), reading around the page cache where the
// file system allows it, as the copier does. Returns "" or what went wrong. Call with the
// barrier held exclusively, from a shim thread (its calls are not captured).
std::string copy_reference(const std::vector<std::string> &sources, const std::vector<std::string> &roots,
                           const std::string &ref);

}  // namespace hb
