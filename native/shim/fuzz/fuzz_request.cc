// Fuzz target: the whole request handler (what the control socket and hotbackup_request() run
// inside the server), linked with every part of the shim but its interposition, so backups are
// real: `start` validates, creates DEST, starts the copier thread; `throttle`, `status` and
// `cancel` act on it. Every path a request names is confined by construction to a scratch
// directory made at start-up (the fuzzer's bytes become the tail of the path, so NUL, "..", "//"
// and friends still reach the validation); a raw input that would start a backup elsewhere is
// not sent. Properties, besides no crash, leak or undefined behaviour: every reply is one JSON
// object with a boolean "ok", and "ok":false carries an error code and message; a start that is
// accepted reports as its destination the directory the shim really made, inside the scratch
// directory (a NUL byte or a ".." in the request must not make them differ).
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include "control.h"
#include "json.h"

namespace hb {
bool served() { return true; }  // interpose.cc, left out here, decides it in the server
}  // namespace hb

namespace {
std::string g_root;

void remove_tree(const std::string &p);

void make_scratch() {
  char tmpl[] = "/tmp/hb-fuzz-request-XXXXXX";
  if (!mkdtemp(tmpl)) std::abort();
  g_root = tmpl;
  std::atexit([] { remove_tree(g_root); });
  std::string src = g_root + "/src";
  mkdir(src.c_str(), 0755);
  mkdir((src + "/sub").c_str(), 0755);
  for (const char *name : {"/a", "/sub/b"}) {
    FILE *f = std::fopen((src + name).c_str(), "w");
    if (!f) std::abort();
    for (int i = 0; i < 2000; i++) std::fputs("some bytes of a table file\n", f);
    std::fclose(f);
  }
  mkdir((g_root + "/d").c_str(), 0755);
  if (chdir(src.c_str()) != 0) std::abort();  // the default source is the working directory
}

std::string quoted(const std::string &s) {
  std::string out;
  hb::json::quote(out, s);
  return out;
}

hb::json::Value check_reply(const std::string &reply) {
  hb::json::Value v;
  std::string err;
  const hb::json::Value *ok = nullptr;
  if (!hb::json::parse(reply, &v, &err) || v.type != hb::json::Value::Object || !(ok = v.get("ok")) ||
      ok->type != hb::json::Value::Bool) {
    std::fprintf(stderr, "fuzz_request: not a reply: %s\n", reply.c_str());
    __builtin_trap();
  }
  if (!ok->b) {
    const hb::json::Value *e = v.get("error");
    if (!e || !e->get("code") || !e->get("message")) {
      std::fprintf(stderr, "fuzz_request: an error without code and message: %s\n", reply.c_str());
      __builtin_trap();
    }
  }
  return v;
}

// A number as the fuzzer likes it: integers of any size and sign, fractions, exponents.
std::string number(FuzzedDataProvider &p) {
  switch (p.ConsumeIntegralInRange(0, 3)) {
    case 0: return std::to_string(p.ConsumeIntegral<int64_t>());
    case 1: return std::to_string(p.ConsumeIntegral<uint32_t>());
    case 2: return std::to_string(p.ConsumeFloatingPoint<double>());
    default: return p.ConsumeRandomLengthString(24);
  }
}

std::string start_request(FuzzedDataProvider &p) {
  std::string q = "{\"op\":\"start\",\"dest\":" + quoted(g_root + "/d/" + p.ConsumeRandomLengthString(48));
  switch (p.ConsumeIntegralInRange(0, 3)) {
    case 0: break;  // the working directory
    case 1: q += ",\"sources\":[" + quoted(g_root + "/src") + "]"; break;
    case 2: q += ",\"sources\":[" + quoted(g_root + "/src/" + p.ConsumeRandomLengthString(24)) + "," +
                 quoted(g_root + "/src" + p.ConsumeRandomLengthString(24)) + "]"; break;
    default: {  // "sources" of the wrong shape; never a path the fuzzer picks whole
      static const char *const shapes[] = {"[]", "42", "\"src\"", "[7]", "[null]", "{}", "[[]]"};
      q += std::string(",\"sources\":") + shapes[p.ConsumeIntegralInRange<size_t>(0, 6)];
      break;
    }
  }
  if (p.ConsumeBool()) q += ",\"throttle_bytes_per_sec\":" + number(p);
  return q + "}";
}

// A raw line is sent as it is unless it asks for a start (whose paths the fuzzer would choose).
bool safe_raw(const std::string &line) {
  hb::json::Value v;
  std::string err;
  if (!hb::json::parse(line, &v, &err)) return true;
  const hb::json::Value *op = v.type == hb::json::Value::Object ? v.get("op") : nullptr;
  return !op || op->type != hb::json::Value::String || op->str != "start";
}

void remove_tree(const std::string &p) {
  struct stat st;
  if (lstat(p.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    std::string cmd = "rm -rf -- '" + p + "'";  // p is under g_root, made of no quote
    if (p.find('\'') == std::string::npos && std::system(cmd.c_str()) != 0) std::abort();
  } else {
    unlink(p.c_str());
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (g_root.empty()) make_scratch();
  FuzzedDataProvider p(data, size);
  int requests = p.ConsumeIntegralInRange(1, 4);
  for (int i = 0; i < requests && p.remaining_bytes(); i++) {
    std::string line;
    switch (p.ConsumeIntegralInRange(0, 5)) {
      case 0: line = start_request(p); break;
      case 1: line = "{\"op\":\"throttle\",\"bytes_per_sec\":" + number(p) + "}"; break;
      case 2: line = "{\"op\":\"status\"}"; break;
      case 3: line = "{\"op\":\"cancel\"}"; break;
      default: line = p.ConsumeRandomLengthString(256); if (!safe_raw(line)) continue;
    }
    hb::json::Value reply = check_reply(hb::handle_request(line));
    const hb::json::Value *ok = reply.get("ok"), *st = reply.get("status");
    const hb::json::Value *dest = st ? st->get("dest") : nullptr;
    if (line.compare(0, 15, "{\"op\":\"start\"") == 0 && ok->b && dest && dest->type == hb::json::Value::String) {
      struct stat ds;
      if (dest->str.find('\0') != std::string::npos || dest->str.compare(0, g_root.size() + 2, g_root + "/d") != 0 ||
          lstat(dest->str.c_str(), &ds) != 0 || !S_ISDIR(ds.st_mode)) {
        std::fprintf(stderr, "fuzz_request: an accepted start reports a destination it did not make: %s\n", line.c_str());
        __builtin_trap();
      }
    }
  }
  // Leave nothing running for the next input: cancel (which waits for the copier), or let a
  // finished backup be; then empty the destinations.
  hb::json::Value st = check_reply(hb::handle_request("{\"op\":\"status\"}"));
  const hb::json::Value *s = st.get("status");
  const hb::json::Value *state = s ? s->get("state") : nullptr;
  if (state && state->type == hb::json::Value::String && (state->str == "copying" || state->str == "finishing")) {
    hb::json::Value r = check_reply(hb::handle_request("{\"op\":\"cancel\"}"));
    (void)r;
    for (int k = 0; k < 2000; k++) {  // a backup that was sealing when cancel came ends by itself
      st = check_reply(hb::handle_request("{\"op\":\"status\"}"));
      s = st.get("status");
      state = s ? s->get("state") : nullptr;
      if (!state || (state->str != "copying" && state->str != "finishing")) break;
      usleep(1000);
    }
  }
  remove_tree(g_root + "/d");
  mkdir((g_root + "/d").c_str(), 0755);
  return 0;
}
