// A small dependency-free JSON reader for the engine's standalone build (machine files and the
// driver's case description). Supports objects, arrays, numbers, strings (with \" \\ \/ \n \t
// \uXXXX for ASCII), true/false/null. Errors throw EngineError(Input) with the byte offset.
#pragma once

#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "isoline/dose/engine.h"

namespace isoline::dose::json {

struct Value {
  enum Type { Null, Bool, Number, String, Array, Object } type = Null;
  bool b = false;
  double num = 0;
  std::string str;
  std::vector<Value> arr;
  std::map<std::string, Value> obj;

  bool has(const std::string& k) const { return type == Object && obj.count(k) > 0; }
  const Value& at(const std::string& k, const std::string& ctx) const {
    auto it = obj.find(k);
    if (type != Object || it == obj.end())
      throw EngineError(EngineError::Input, ctx + ": missing key \"" + k + "\"");
    return it->second;
  }
  double number(const std::string& ctx) const {
    if (type != Number) throw EngineError(EngineError::Input, ctx + ": expected a number");
    return num;
  }
  double get_number(const std::string& k, double fallback, const std::string& ctx) const {
    return has(k) ? obj.at(k).number(ctx + "." + k) : fallback;
  }
  std::vector<double> numbers(const std::string& ctx) const {
    if (type != Array) throw EngineError(EngineError::Input, ctx + ": expected an array of numbers");
    std::vector<double> out;
    for (const auto& v : arr) out.push_back(v.number(ctx));
    return out;
  }
};

class Parser {
 public:
  Parser(const std::string& text, std::string source) : s_(text), src_(std::move(source)) {}
  Value parse() {
    Value v = value();
    ws();
    if (p_ != s_.size()) error("trailing characters");
    return v;
  }

 private:
  [[noreturn]] void error(const std::string& what) {
    throw EngineError(EngineError::Input,
                      "parse JSON: " + src_ + ": " + what + " at byte " + std::to_string(p_));
  }
  void ws() {
    while (p_ < s_.size() && (s_[p_] == ' ' || s_[p_] == '\n' || s_[p_] == '\r' || s_[p_] == '\t'))
      ++p_;
  }
  bool lit(const char* w) {
    std::size_t n = std::char_traits<char>::length(w);
    if (s_.compare(p_, n, w) == 0) {
      p_ += n;
      return true;
    }
    return false;
  }
  Value value() {
    ws();
    if (p_ >= s_.size()) error("unexpected end");
    Value v;
    char c = s_[p_];
    if (c == '{') {
      v.type = Value::Object;
      ++p_;
      ws();
      if (p_ < s_.size() && s_[p_] == '}') {
        ++p_;
        return v;
      }
      for (;;) {
        ws();
        if (p_ >= s_.size() || s_[p_] != '"') error("expected a key");
        std::string k = string();
        ws();
        if (p_ >= s_.size() || s_[p_] != ':') error("expected ':'");
        ++p_;
        v.obj[k] = value();
        ws();
        if (p_ < s_.size() && s_[p_] == ',') {
          ++p_;
          continue;
        }
        if (p_ < s_.size() && s_[p_] == '}') {
          ++p_;
          return v;
        }
        error("expected ',' or '}'");
      }
    }
    if (c == '[') {
      v.type = Value::Array;
      ++p_;
      ws();
      if (p_ < s_.size() && s_[p_] == ']') {
        ++p_;
        return v;
      }
      for (;;) {
        v.arr.push_back(value());
        ws();
        if (p_ < s_.size() && s_[p_] == ',') {
          ++p_;
          continue;
        }
        if (p_ < s_.size() && s_[p_] == ']') {
          ++p_;
          return v;
        }
        error("expected ',' or ']'");
      }
    }
    if (c == '"') {
      v.type = Value::String;
      v.str = string();
      return v;
    }
    if (lit("true")) {
      v.type = Value::Bool;
      v.b = true;
      return v;
    }
    if (lit("false")) {
      v.type = Value::Bool;
      return v;
    }
    if (lit("null")) return v;
    const char* begin = s_.c_str() + p_;
    char* end = nullptr;
    v.num = std::strtod(begin, &end);
    if (end == begin) error("unexpected character");
    p_ += static_cast<std::size_t>(end - begin);
    v.type = Value::Number;
    return v;
  }
  std::string string() {
    ++p_;  // opening quote
    std::string out;
    while (p_ < s_.size() && s_[p_] != '"') {
      char c = s_[p_++];
      if (c == '\\') {
        if (p_ >= s_.size()) error("bad escape");
        char e = s_[p_++];
        switch (e) {
          case 'n': out += '\n'; break;
          case 't': out += '\t'; break;
          case 'r': out += '\r'; break;
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          case 'u': {
            if (p_ + 4 > s_.size()) error("bad \\u escape");
            unsigned code = static_cast<unsigned>(std::strtoul(s_.substr(p_, 4).c_str(), nullptr, 16));
            p_ += 4;
            out += code < 128 ? static_cast<char>(code) : '?';
            break;
          }
          default: out += e;
        }
      } else {
        out += c;
      }
    }
    if (p_ >= s_.size()) error("unterminated string");
    ++p_;
    return out;
  }
  const std::string& s_;
  std::string src_;
  std::size_t p_ = 0;
};

inline Value parse(const std::string& text, const std::string& source) {
  return Parser(text, source).parse();
}

}  // namespace isoline::dose::json
