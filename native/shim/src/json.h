// A small JSON reader and writer for the control protocol: requests are one flat object.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace hb::json {

struct Value {
  enum Type { Null, Bool, Number, String, Array, Object } type = Null;
  bool b = false;
  double num = 0;
  std::string str;
  std::vector<Value> arr;
  std::map<std::string, Value> obj;

  const Value *get(const std::string &key) const;  // object member or nullptr
};

// Parses a whole document; on failure returns false and says why in *error.
bool parse(const std::string &text, Value *out, std::string *error);

// Appends a JSON string literal for s (escaped) to out.
void quote(std::string &out, const std::string &s);

// Builds an object: w.field("a", 1).field("b", "x").done() → {"a":1,"b":"x"}.
class ObjectWriter {
 public:
  ObjectWriter &field(const char *key, const std::string &v);
  ObjectWriter &field(const char *key, const char *v);  // nullptr → null
  ObjectWriter &field(const char *key, int64_t v);
  ObjectWriter &field(const char *key, uint64_t v);
  ObjectWriter &field(const char *key, int v) { return field(key, static_cast<int64_t>(v)); }
  ObjectWriter &field(const char *key, double v);
  ObjectWriter &field(const char *key, bool v);
  ObjectWriter &null(const char *key);
  ObjectWriter &raw(const char *key, const std::string &json);  // an already-encoded value
  std::string done() const { return out_ + "}"; }

 private:
  void key(const char *k);
  std::string out_ = "{";
};

std::string string_array(const std::vector<std::string> &items);

}  // namespace hb::json
