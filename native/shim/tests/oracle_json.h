// A small JSON reader for the oracle (test_oracle.cc): enough to read the shim's status
// replies and the manifest. Self-contained so the oracle does not depend on the shim's internals.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

namespace oracle {

struct Json {
  enum Type { Null, Bool, Num, Str, Arr, Obj } type = Null;
  bool b = false;
  double n = 0;
  std::string s;
  std::vector<Json> a;
  std::vector<std::pair<std::string, Json>> o;

  const Json *get(const std::string &key) const {
    if (type != Obj) return nullptr;
    for (const auto &kv : o)
      if (kv.first == key) return &kv.second;
    return nullptr;
  }
  bool is_num() const { return type == Num; }
  bool is_str() const { return type == Str; }
};

class JsonReader {
 public:
  explicit JsonReader(const std::string &text) : p_(text.data()), e_(text.data() + text.size()) {}

  bool parse(Json *out, std::string *err) {
    ws();
    if (!value(out, 0)) {
      if (err) *err = err_.empty() ? "invalid JSON" : err_;
      return false;
    }
    ws();
    if (p_ != e_) {
      if (err) *err = "trailing characters after JSON value";
      return false;
    }
    return true;
  }

 private:
  const char *p_, *e_;
  std::string err_;

  void ws() {
    while (p_ < e_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  bool fail(const char *m) {
    if (err_.empty()) err_ = m;
    return false;
  }
  bool lit(const char *w) {
    const char *q = p_;
    for (; *w; ++w, ++q)
      if (q >= e_ || *q != *w) return fail("bad literal");
    p_ = q;
    return true;
  }
  static void utf8(std::string *out, uint32_t cp) {
    if (cp < 0x80) {
      out->push_back(char(cp));
    } else if (cp < 0x800) {
      out->push_back(char(0xC0 | (cp >> 6)));
      out->push_back(char(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(char(0xE0 | (cp >> 12)));
      out->push_back(char(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(char(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(char(0xF0 | (cp >> 18)));
      out->push_back(char(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(char(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(char(0x80 | (cp & 0x3F)));
    }
  }
  bool hex4(uint32_t *v) {
    if (e_ - p_ < 4) return fail("short \\u escape");
    *v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = *p_++;
      *v <<= 4;
      if (c >= '0' && c <= '9') *v |= uint32_t(c - '0');
      else if (c >= 'a' && c <= 'f') *v |= uint32_t(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') *v |= uint32_t(c - 'A' + 10);
      else return fail("bad \\u escape");
    }
    return true;
  }
  bool str(std::string *out) {
    if (p_ >= e_ || *p_ != '"') return fail("expected string");
    ++p_;
    while (p_ < e_ && *p_ != '"') {
      char c = *p_++;
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (p_ >= e_) return fail("bad escape");
      char x = *p_++;
      switch (x) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          uint32_t cp;
          if (!hex4(&cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00 && e_ - p_ >= 6 && p_[0] == '\\' && p_[1] == 'u') {
            p_ += 2;
            uint32_t lo;
            if (!hex4(&lo)) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          utf8(out, cp);
          break;
        }
        default: return fail("bad escape");
      }
    }
    if (p_ >= e_) return fail("unterminated string");
    ++p_;
    return true;
  }
  bool value(Json *v, int depth) {
    if (depth > 64) return fail("too deep");
    ws();
    if (p_ >= e_) return fail("unexpected end");
    char c = *p_;
    if (c == 'n') { v->type = Json::Null; return lit("null"); }
    if (c == 't') { v->type = Json::Bool; v->b = true; return lit("true"); }
    if (c == 'f') { v->type = Json::Bool; v->b = false; return lit("false"); }
    if (c == '"') { v->type = Json::Str; return str(&v->s); }
    if (c == '[') {
      v->type = Json::Arr;
      ++p_;
      ws();
      if (p_ < e_ && *p_ == ']') { ++p_; return true; }
      for (;;) {
        v->a.emplace_back();
        if (!value(&v->a.back(), depth + 1)) return false;
        ws();
        if (p_ < e_ && *p_ == ',') { ++p_; continue; }
        if (p_ < e_ && *p_ == ']') { ++p_; return true; }
        return fail("expected , or ]");
      }
    }
    if (c == '{') {
      v->type = Json::Obj;
      ++p_;
      ws();
      if (p_ < e_ && *p_ == '}') { ++p_; return true; }
      for (;;) {
        ws();
        std::string k;
        if (!str(&k)) return false;
        ws();
        if (p_ >= e_ || *p_ != ':') return fail("expected :");
        ++p_;
        v->o.emplace_back(std::move(k), Json());
        if (!value(&v->o.back().second, depth + 1)) return false;
        ws();
        if (p_ < e_ && *p_ == ',') { ++p_; continue; }
        if (p_ < e_ && *p_ == '}') { ++p_; return true; }
        return fail("expected , or }");
      }
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      std::string num;
      while (p_ < e_ && (std::string("+-0123456789.eE").find(*p_) != std::string::npos)) num.push_back(*p_++);
      char *end = nullptr;
      v->type = Json::Num;
      v->n = strtod(num.c_str(), &end);
      if (!end || *end) return fail("bad number");
      return true;
    }
    return fail("unexpected character");
  }
};

inline bool parse_json(const std::string &text, Json *out, std::string *err = nullptr) {
  *out = Json();
  return JsonReader(text).parse(out, err);
}

inline std::string json_quote(const std::string &s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      o.push_back('\\');
      o.push_back(char(c));
    } else if (c < 0x20) {
      char buf[8];
      static const char *hx = "0123456789abcdef";
      buf[0] = '\\'; buf[1] = 'u'; buf[2] = '0'; buf[3] = '0';
      buf[4] = hx[c >> 4]; buf[5] = hx[c & 15]; buf[6] = 0;
      o += buf;
    } else {
      o.push_back(char(c));
    }
  }
  return o + "\"";
}

}  // namespace oracle
