// TraceQL lexer: a single pass over the text producing every token up front, so the
// recursive-descent parser can look ahead freely.
#include "traceql/lexer.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace tracery::traceql {
namespace {

bool IsWordStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsWordChar(char c) { return IsWordStart(c) || (c >= '0' && c <= '9'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Tempo ends an attribute name at whitespace or one of these.
bool EndsAttributeName(char c) { return IsSpace(c) || std::strchr("{}()=~!<>&|^,", c) != nullptr; }

// The intrinsic named after `scope:`; kNone when that scope has no such intrinsic.
Intrinsic ScopedIntrinsic(std::string_view scope, std::string_view name) {
  if (scope == "trace") {
    if (name == "duration") return Intrinsic::kTraceDuration;
    if (name == "rootName") return Intrinsic::kTraceRootName;
    if (name == "rootService") return Intrinsic::kTraceRootService;
    if (name == "id") return Intrinsic::kTraceId;
  } else if (scope == "span") {
    if (name == "duration") return Intrinsic::kDuration;
    if (name == "name") return Intrinsic::kName;
    if (name == "kind") return Intrinsic::kKind;
    if (name == "status") return Intrinsic::kStatus;
    if (name == "statusMessage") return Intrinsic::kStatusMessage;
    if (name == "id") return Intrinsic::kSpanId;
    if (name == "parentID") return Intrinsic::kParentId;
    if (name == "childCount") return Intrinsic::kChildCount;
  } else if (scope == "event") {
    if (name == "name") return Intrinsic::kEventName;
    if (name == "timeSinceStart") return Intrinsic::kEventTimeSinceStart;
  } else if (scope == "link") {
    if (name == "traceID") return Intrinsic::kLinkTraceId;
    if (name == "spanID") return Intrinsic::kLinkSpanId;
  } else if (scope == "instrumentation") {
    if (name == "name") return Intrinsic::kInstrumentationName;
    if (name == "version") return Intrinsic::kInstrumentationVersion;
  }
  return Intrinsic::kNone;
}

bool ScopeFromWord(std::string_view word, AttributeScope& scope) {
  if (word == "span") scope = AttributeScope::kSpan;
  else if (word == "resource") scope = AttributeScope::kResource;
  else if (word == "event") scope = AttributeScope::kEvent;
  else if (word == "link") scope = AttributeScope::kLink;
  else if (word == "instrumentation") scope = AttributeScope::kInstrumentation;
  else return false;
  return true;
}

struct Operator3 {
  const char* text;
  TokenKind kind;
};
// Longest first, so "!>>" wins over "!>" and "!".
constexpr Operator3 kOperators[] = {
    {"!>>", TokenKind::kNotDescendant}, {"!<<", TokenKind::kNotAncestor},
    {"&>>", TokenKind::kUnionDescendant}, {"&<<", TokenKind::kUnionAncestor},
    {"!=", TokenKind::kNotEqual}, {"!~", TokenKind::kNotRegex}, {"!>", TokenKind::kNotChild},
    {"!<", TokenKind::kNotParent}, {"=~", TokenKind::kRegex}, {"<=", TokenKind::kLessEqual},
    {">=", TokenKind::kGreaterEqual}, {">>", TokenKind::kDescendant}, {"<<", TokenKind::kAncestor},
    {"&&", TokenKind::kAnd}, {"||", TokenKind::kOr}, {"&>", TokenKind::kUnionChild},
    {"&<", TokenKind::kUnionParent}, {"&~", TokenKind::kUnionSibling},
    {"{", TokenKind::kOpenBrace}, {"}", TokenKind::kCloseBrace}, {"(", TokenKind::kOpenParen},
    {")", TokenKind::kCloseParen}, {",", TokenKind::kComma}, {"|", TokenKind::kPipe},
    {"=", TokenKind::kEqual}, {"<", TokenKind::kLess}, {">", TokenKind::kGreater},
    {"!", TokenKind::kNot}, {"+", TokenKind::kAdd}, {"-", TokenKind::kSub}, {"*", TokenKind::kMul},
    {"/", TokenKind::kDiv}, {"%", TokenKind::kMod}, {"^", TokenKind::kPow}, {"~", TokenKind::kSibling},
};

void AppendUtf8(std::string& out, uint32_t rune) {
  if (rune < 0x80) {
    out += static_cast<char>(rune);
  } else if (rune < 0x800) {
    out += static_cast<char>(0xC0 | (rune >> 6));
    out += static_cast<char>(0x80 | (rune & 0x3F));
  } else if (rune < 0x10000) {
    out += static_cast<char>(0xE0 | (rune >> 12));
    out += static_cast<char>(0x80 | ((rune >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (rune & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (rune >> 18));
    out += static_cast<char>(0x80 | ((rune >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((rune >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (rune & 0x3F));
  }
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class Lexer {
 public:
  explicit Lexer(std::string_view text) : text_(text) {}

  Result<std::vector<Token>> Run() {
    std::vector<Token> tokens;
    while (true) {
      SkipSpace();
      Token token;
      token.line = line_;
      token.column = column_;
      if (pos_ >= text_.size()) {
        tokens.push_back(std::move(token));
        return tokens;
      }
      Status status = Next(token);
      if (!status.ok()) return status;
      tokens.push_back(std::move(token));
    }
  }

 private:
  Status Error(uint32_t line, uint32_t column, const std::string& what) const {
    return Status::InvalidArgument("parse error at " + std::to_string(line) + ":" + std::to_string(column) +
                                   ": " + what);
  }
  char Peek(size_t ahead = 0) const { return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0'; }
  void Advance(size_t n = 1) {
    for (size_t i = 0; i < n && pos_ < text_.size(); ++i) {
      char c = text_[pos_++];
      if (c == '\n') {
        ++line_;
        column_ = 1;
      } else if ((static_cast<uint8_t>(c) & 0xC0) != 0x80) {
        ++column_;  // columns count characters, not UTF-8 continuation bytes
      }
    }
  }
  void SkipSpace() {
    while (pos_ < text_.size() && IsSpace(text_[pos_])) Advance();
  }
  std::string_view ReadWord() {
    size_t start = pos_;
    while (pos_ < text_.size() && IsWordChar(text_[pos_])) Advance();
    return text_.substr(start, pos_ - start);
  }

  Status Next(Token& token) {
    char c = Peek();
    if (c == '"') return ReadQuoted(token);
    if (c == '`') return ReadRaw(token);
    if (IsDigit(c)) return ReadNumber(token);
    if (c == '.') {
      Advance();
      token.kind = TokenKind::kAttribute;
      return ReadAttributeName(token);
    }
    if (IsWordStart(c)) return ReadWordOrReference(token);
    for (const Operator3& op : kOperators) {
      size_t n = std::strlen(op.text);
      if (text_.substr(pos_, n) == op.text) {
        token.kind = op.kind;
        token.text = op.text;
        Advance(n);
        return Status::Ok();
      }
    }
    std::string shown = (static_cast<uint8_t>(c) >= 0x20 && static_cast<uint8_t>(c) < 0x7F)
                            ? std::string(1, c)
                            : "byte 0x" + std::string(1, "0123456789abcdef"[(c >> 4) & 0xF]) +
                                  std::string(1, "0123456789abcdef"[c & 0xF]);
    return Error(token.line, token.column, "unexpected character '" + shown + "'");
  }

  Status ReadWordOrReference(Token& token) {
    std::string_view word = ReadWord();
    AttributeScope scope;
    if (Peek() == '.' && (word == "parent" || ScopeFromWord(word, scope))) {
      Advance();
      token.kind = TokenKind::kAttribute;
      if (word == "parent") {
        token.attribute.parent = true;
        // parent.span.x / parent.resource.x
        size_t save_pos = pos_;
        uint32_t save_line = line_, save_column = column_;
        std::string_view next = ReadWord();
        if ((next == "span" || next == "resource") && Peek() == '.') {
          Advance();
          token.attribute.scope = next == "span" ? AttributeScope::kSpan : AttributeScope::kResource;
        } else {
          pos_ = save_pos;
          line_ = save_line;
          column_ = save_column;
        }
      } else {
        token.attribute.scope = scope;
      }
      return ReadAttributeName(token);
    }
    if (Peek() == ':' && (word == "trace" || ScopeFromWord(word, scope))) {
      Advance();
      std::string_view name = ReadWord();
      Intrinsic intrinsic = ScopedIntrinsic(word, name);
      if (intrinsic == Intrinsic::kNone) {
        return Error(token.line, token.column, "unknown intrinsic '" + std::string(word) + ":" + std::string(name) + "'");
      }
      token.kind = TokenKind::kScopedIntrinsic;
      token.text = std::string(word) + ":" + std::string(name);
      token.attribute.intrinsic = intrinsic;
      return Status::Ok();
    }
    token.kind = TokenKind::kWord;
    token.text = std::string(word);
    return Status::Ok();
  }

  // The name after a scope prefix: up to whitespace or an operator character, with "quoted"
  // segments (only \" and \\ escapes) for names holding such characters.
  Status ReadAttributeName(Token& token) {
    std::string name;
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c == '"') {
        uint32_t line = line_, column = column_;
        Advance();
        bool closed = false;
        while (pos_ < text_.size()) {
          char q = text_[pos_];
          if (q == '\\' && (Peek(1) == '"' || Peek(1) == '\\')) {
            name += Peek(1);
            Advance(2);
          } else if (q == '"') {
            Advance();
            closed = true;
            break;
          } else {
            name += q;
            Advance();
          }
        }
        if (!closed) return Error(line, column, "unterminated quoted attribute name");
        continue;
      }
      if (EndsAttributeName(c)) break;
      name += c;
      Advance();
    }
    if (name.empty()) return Error(token.line, token.column, "expected attribute name");
    token.attribute.name = name;
    token.text = name;
    return Status::Ok();
  }

  Status ReadQuoted(Token& token) {
    Advance();  // "
    std::string value;
    while (true) {
      if (pos_ >= text_.size() || Peek() == '\n') return Error(token.line, token.column, "unterminated string");
      char c = Peek();
      if (c == '"') {
        Advance();
        break;
      }
      if (c != '\\') {
        value += c;
        Advance();
        continue;
      }
      uint32_t line = line_, column = column_;
      char e = Peek(1);
      Advance(2);
      switch (e) {
        case 'a': value += '\a'; break;
        case 'b': value += '\b'; break;
        case 'f': value += '\f'; break;
        case 'n': value += '\n'; break;
        case 'r': value += '\r'; break;
        case 't': value += '\t'; break;
        case 'v': value += '\v'; break;
        case '\\': value += '\\'; break;
        case '"': value += '"'; break;
        case 'x': case 'u': case 'U': {
          int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          uint32_t rune = 0;
          for (int i = 0; i < digits; ++i) {
            int d = HexDigit(Peek());
            if (d < 0) return Error(line, column, "invalid escape in string");
            rune = rune * 16 + static_cast<uint32_t>(d);
            Advance();
          }
          if (e == 'x') {
            value += static_cast<char>(rune);
          } else {
            if (rune > 0x10FFFF || (rune >= 0xD800 && rune < 0xE000)) return Error(line, column, "invalid escape in string");
            AppendUtf8(value, rune);
          }
          break;
        }
        default:
          if (e >= '0' && e <= '7') {  // three octal digits, the first already consumed
            uint32_t octal = static_cast<uint32_t>(e - '0');
            for (int i = 0; i < 2; ++i) {
              char d = Peek();
              if (d < '0' || d > '7') return Error(line, column, "invalid escape in string");
              octal = octal * 8 + static_cast<uint32_t>(d - '0');
              Advance();
            }
            if (octal > 255) return Error(line, column, "invalid escape in string");
            value += static_cast<char>(octal);
            break;
          }
          return Error(line, column, "invalid escape in string");
      }
    }
    token.kind = TokenKind::kString;
    token.text = std::move(value);
    return Status::Ok();
  }

  Status ReadRaw(Token& token) {
    Advance();  // `
    size_t start = pos_;
    while (pos_ < text_.size() && Peek() != '`') Advance();
    if (pos_ >= text_.size()) return Error(token.line, token.column, "unterminated raw string");
    token.kind = TokenKind::kString;
    token.text = std::string(text_.substr(start, pos_ - start));
    Advance();
    return Status::Ok();
  }

  Status ReadNumber(Token& token) {
    size_t start = pos_;
    bool is_float = false;
    while (IsDigit(Peek())) Advance();
    if (Peek() == '.' && IsDigit(Peek(1))) {
      is_float = true;
      Advance();
      while (IsDigit(Peek())) Advance();
    }
    if ((Peek() == 'e' || Peek() == 'E') &&
        (IsDigit(Peek(1)) || ((Peek(1) == '+' || Peek(1) == '-') && IsDigit(Peek(2))))) {
      is_float = true;
      Advance(2);
      while (IsDigit(Peek())) Advance();
    }
    bool unit_follows = IsWordStart(Peek()) || (Peek() == '\xC2' && Peek(1) == '\xB5');
    if (unit_follows) {
      // A duration, possibly compound ("1h30m"): take every letter, digit, '.' and 'µ'.
      while (IsWordChar(Peek()) || Peek() == '.' || (Peek() == '\xC2' && Peek(1) == '\xB5')) {
        Advance(Peek() == '\xC2' ? 2 : 1);
      }
      std::string_view literal = text_.substr(start, pos_ - start);
      if (!ParseDurationLiteral(literal, token.int_value)) {
        return Error(token.line, token.column, "invalid duration '" + std::string(literal) + "'");
      }
      token.kind = TokenKind::kDuration;
      token.text = std::string(literal);
      return Status::Ok();
    }
    token.text = std::string(text_.substr(start, pos_ - start));
    if (is_float) {
      token.kind = TokenKind::kFloat;
      token.float_value = std::strtod(token.text.c_str(), nullptr);
      if (!std::isfinite(token.float_value)) return Error(token.line, token.column, "number out of range");
      return Status::Ok();
    }
    errno = 0;
    char* end = nullptr;
    long long value = std::strtoll(token.text.c_str(), &end, 10);
    if (errno == ERANGE) return Error(token.line, token.column, "integer out of range '" + token.text + "'");
    token.kind = TokenKind::kInteger;
    token.int_value = value;
    return Status::Ok();
  }

  std::string_view text_;
  size_t pos_ = 0;
  uint32_t line_ = 1, column_ = 1;
};

}  // namespace

bool ParseDurationLiteral(std::string_view text, int64_t& nanos) {
  // Units of Go's time.ParseDuration plus Prometheus' d, w, y; a sequence of number+unit.
  struct Unit {
    const char* name;
    double nanos;
  };
  static constexpr Unit kUnits[] = {
      {"ns", 1}, {"us", 1e3}, {"\xC2\xB5s", 1e3}, {"\xCE\xBCs", 1e3}, {"ms", 1e6}, {"s", 1e9},
      {"m", 60e9}, {"h", 3600e9}, {"d", 86400e9}, {"w", 604800e9}, {"y", 31536000e9},
  };
  if (text.empty()) return false;
  long double total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && (IsDigit(text[i]) || text[i] == '.')) ++i;
    if (i == start || text[start] == '.' || text[i - 1] == '.') return false;
    std::string number(text.substr(start, i - start));
    if (std::count(number.begin(), number.end(), '.') > 1) return false;
    size_t unit_start = i;
    while (i < text.size() && !IsDigit(text[i]) && text[i] != '.') ++i;
    std::string_view unit = text.substr(unit_start, i - unit_start);
    const Unit* found = nullptr;
    for (const Unit& u : kUnits) {
      if (unit == u.name) found = &u;
    }
    if (found == nullptr) return false;
    total += std::strtold(number.c_str(), nullptr) * static_cast<long double>(found->nanos);
  }
  if (total > 9.2e18L) return false;
  nanos = static_cast<int64_t>(total + 0.5L);
  return true;
}

std::string DescribeToken(const Token& token) {
  switch (token.kind) {
    case TokenKind::kEnd: return "end of query";
    case TokenKind::kString: return "string \"" + token.text + "\"";
    case TokenKind::kAttribute: return "attribute '" + AttributeText(token.attribute) + "'";
    case TokenKind::kInteger:
    case TokenKind::kFloat:
    case TokenKind::kDuration:
    case TokenKind::kWord:
    case TokenKind::kScopedIntrinsic:
    default: return "'" + token.text + "'";
  }
}

Result<std::vector<Token>> Tokenize(std::string_view text) { return Lexer(text).Run(); }

}  // namespace tracery::traceql
