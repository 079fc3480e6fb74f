#include "json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace hb::json {

const Value *Value::get(const std::string &key) const {
  if (type != Object) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &it->second;
}

namespace {

class Parser {
 public:
  explicit Parser(const std::string &s) : s_(s) {}

  bool document(Value *out, std::string *error) {
    skip_ws();
    if (!value(out, 0)) {
      *error = error_.empty() ? "malformed JSON" : error_;
      return false;
    }
    skip_ws();
    if (i_ != s_.size()) {
      *error = "trailing characters after the JSON value";
      return false;
    }
    return true;
  }

 private:
  static constexpr int kMaxDepth = 32;

  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) i_++;
  }
  bool fail(const char *why) {
    if (error_.empty()) error_ = why;
    return false;
  }
  bool literal(const char *word) {
    size_t n = std::char_traits<char>::length(word);
    if (s_.compare(i_, n, word) != 0) return fail("malformed JSON literal");
    i_ += n;
    return true;
  }

  bool value(Value *v, int depth) {
    if (depth > kMaxDepth) return fail("JSON nested too deeply");
    skip_ws();
    if (i_ >= s_.size()) return fail("unexpected end of JSON");
    char c = s_[i_];
    if (c == '{') return object(v, depth);
    if (c == '[') return array(v, depth);
    if (c == '"') {
      v->type = Value::String;
      return string(&v->str);
    }
    if (c == 't') { v->type = Value::Bool; v->b = true; return literal("true"); }
    if (c == 'f') { v->type = Value::Bool; v->b = false; return literal("false"); }
    if (c == 'n') { v->type = Value::Null; return literal("null"); }
    return number(v);
  }

  bool number(Value *v) {
    const char *start = s_.c_str() + i_;
    if (!(*start == '-' || (*start >= '0' && *start <= '9'))) return fail("unexpected character in JSON");
    char *end = nullptr;
    double d = std::strtod(start, &end);
    if (end == start || !std::isfinite(d)) return fail("malformed JSON number");
    i_ += static_cast<size_t>(end - start);
    v->type = Value::Number;
    v->num = d;
    return true;
  }

  static void put_utf8(std::string *out, unsigned cp) {
    if (cp < 0x80) out->push_back(static_cast<char>(cp));
    else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  bool hex4(unsigned *out) {
    if (i_ + 4 > s_.size()) return fail("malformed \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
      char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<unsigned>(c - 'A' + 10);
      else return fail("malformed \\u escape");
    }
    *out = v;
    return true;
  }

  bool string(std::string *out) {
    i_++;  // opening quote
    while (i_ < s_.size()) {
      char c = s_[i_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return fail("control character in JSON string");
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (i_ >= s_.size()) break;
      char e = s_[i_++];
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          unsigned cp;
          if (!hex4(&cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00 && s_.compare(i_, 2, "\\u") == 0) {
            i_ += 2;
            unsigned lo;
            if (!hex4(&lo)) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          put_utf8(out, cp);
          break;
        }
        default: return fail("malformed escape in JSON string");
      }
    }
    return fail("unterminated JSON string");
  }

  bool array(Value *v, int depth) {
    v->type = Value::Array;
    i_++;
    skip_ws();
    if (i_ < s_.size() && s_[i_] == ']') { i_++; return true; }
    for (;;) {
      v->arr.emplace_back();
      if (!value(&v->arr.back(), depth + 1)) return false;
      skip_ws();
      if (i_ < s_.size() && s_[i_] == ',') { i_++; continue; }
      if (i_ < s_.size() && s_[i_] == ']') { i_++; return true; }
      return fail("expected , or ] in JSON array");
    }
  }

  bool object(Value *v, int depth) {
    v->type = Value::Object;
    i_++;
    skip_ws();
    if (i_ < s_.size() && s_[i_] == '}') { i_++; return true; }
    for (;;) {
      skip_ws();
      if (i_ >= s_.size() || s_[i_] != '"') return fail("expected a string key in JSON object");
      std::string key;
      if (!string(&key)) return false;
      skip_ws();
      if (i_ >= s_.size() || s_[i_] != ':') return fail("expected : in JSON object");
      i_++;
      Value member;
      if (!value(&member, depth + 1)) return false;
      v->obj[key] = std::move(member);
      skip_ws();
      if (i_ < s_.size() && s_[i_] == ',') { i_++; continue; }
      if (i_ < s_.size() && s_[i_] == '}') { i_++; return true; }
      return fail("expected , or } in JSON object");
    }
  }

  const std::string &s_;
  size_t i_ = 0;
  std::string error_;
};

}  // namespace

bool parse(const std::string &text, Value *out, std::string *error) {
  *out = Value();
  return Parser(text).document(out, error);
}

void quote(std::string &out, const std::string &s) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

void ObjectWriter::key(const char *k) {
  if (out_.size() > 1) out_.push_back(',');
  quote(out_, k);
  out_.push_back(':');
}
ObjectWriter &ObjectWriter::field(const char *k, const std::string &v) { key(k); quote(out_, v); return *this; }
ObjectWriter &ObjectWriter::field(const char *k, const char *v) {
  if (!v) return null(k);
  key(k);
  quote(out_, v);
  return *this;
}
ObjectWriter &ObjectWriter::field(const char *k, int64_t v) { key(k); out_ += std::to_string(v); return *this; }
ObjectWriter &ObjectWriter::field(const char *k, uint64_t v) { key(k); out_ += std::to_string(v); return *this; }
ObjectWriter &ObjectWriter::field(const char *k, double v) {
  key(k);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", std::isfinite(v) ? v : 0.0);
  out_ += buf;
  return *this;
}
ObjectWriter &ObjectWriter::field(const char *k, bool v) { key(k); out_ += v ? "true" : "false"; return *this; }
ObjectWriter &ObjectWriter::null(const char *k) { key(k); out_ += "null"; return *this; }
ObjectWriter &ObjectWriter::raw(const char *k, const std::string &json) { key(k); out_ += json; return *this; }

std::string string_array(const std::vector<std::string> &items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); i++) {
    if (i) out.push_back(',');
    quote(out, items[i]);
  }
  return out + "]";
}

}  // namespace hb::json
