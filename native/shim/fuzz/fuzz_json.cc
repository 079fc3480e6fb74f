// Fuzz target: the control protocol's JSON reader and writer, which run inside the database
// server. Properties, besides no crash or undefined behaviour (ASan+UBSan): a document that
// parses, written out again, parses to the same value; and any byte string written by quote()
// reads back as exactly itself.
#include <cstdint>
#include <cstdio>
#include <string>

#include "json.h"

using hb::json::Value;

namespace {
void encode(const Value &v, std::string &out) {
  switch (v.type) {
    case Value::Null: out += "null"; break;
    case Value::Bool: out += v.b ? "true" : "false"; break;
    case Value::Number: {
      char buf[40];
      std::snprintf(buf, sizeof buf, "%.17g", v.num);
      out += buf;
      break;
    }
    case Value::String: hb::json::quote(out, v.str); break;
    case Value::Array:
      out += '[';
      for (size_t i = 0; i < v.arr.size(); i++) {
        if (i) out += ',';
        encode(v.arr[i], out);
      }
      out += ']';
      break;
    case Value::Object: {
      out += '{';
      bool first = true;
      for (auto &kv : v.obj) {
        if (!first) out += ',';
        first = false;
        hb::json::quote(out, kv.first);
        out += ':';
        encode(kv.second, out);
      }
      out += '}';
      break;
    }
  }
}

bool same(const Value &a, const Value &b) {
  if (a.type != b.type) return false;
  switch (a.type) {
    case Value::Null: return true;
    case Value::Bool: return a.b == b.b;
    case Value::Number: return a.num == b.num;
    case Value::String: return a.str == b.str;
    case Value::Array:
      if (a.arr.size() != b.arr.size()) return false;
      for (size_t i = 0; i < a.arr.size(); i++)
        if (!same(a.arr[i], b.arr[i])) return false;
      return true;
    case Value::Object:
      if (a.obj.size() != b.obj.size()) return false;
      for (auto ia = a.obj.begin(), ib = b.obj.begin(); ia != a.obj.end(); ++ia, ++ib)
        if (ia->first != ib->first || !same(ia->second, ib->second)) return false;
      return true;
  }
  return false;
}

[[noreturn]] void violated(const char *what, const std::string &detail) {
  std::fprintf(stderr, "fuzz_json: %s: %s\n", what, detail.c_str());
  __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  Value v;
  std::string err;
  if (hb::json::parse(text, &v, &err)) {
    std::string again;
    encode(v, again);
    Value w;
    if (!hb::json::parse(again, &w, &err)) violated("a re-encoded document does not parse", again + " (" + err + ")");
    if (!same(v, w)) violated("a re-encoded document parses to another value", again);
  }
  std::string quoted;
  hb::json::quote(quoted, text);
  Value s;
  if (!hb::json::parse(quoted, &s, &err)) violated("quote() wrote a string that does not parse", quoted + " (" + err + ")");
  if (s.type != Value::String || s.str != text) violated("quote() does not read back as itself", quoted);
  return 0;
}
