#include "tg/edge/token_estimate.h"

// How text becomes tokens here, without a vocabulary.
//
// OpenAI's tokenizers (cl100k_base, o200k_base) first cut text with a regular
// expression into pieces: a word with the one space or punctuation mark before
// it, a group of at most 3 digits, a run of punctuation with the newlines after
// it, a run of whitespace. BPE then spends one token on most English words and
// more on rare, long or non-English ones. The rules below follow those pieces
// and charge each an average cost, in thousandths of a token, summed over the
// text and rounded once at the end (at least 1 for any non-empty text):
//
//   Latin words (ASCII and accented letters): split into segments at case
//     changes (getUserName: get|User|Name; XMLHttp: XML|Http). A segment of L
//     letters costs 1 + 0.06 per letter beyond 4 + 0.25 per letter beyond 10,
//     +0.2 when Capitalized; ALL CAPS costs max(1, 0.4 L); each non-ASCII
//     letter (é, ü, ş: rare words in the vocabulary) +1.5; the second and
//     later segments of a word cost 4/5 of that.
//   Digits: 1 per group of up to 3 (the tokenizers' own split).
//   Punctuation and ASCII symbols: a run costs 1, +0.15 per character beyond 2
//     (":", "\"}," and "();" are single tokens), +1/16 when it repeats one
//     character ("=====" is one token); a single mark before a word joins it
//     (".size", "_view": +0.3), an apostrophe inside a word is free (don't).
//   Whitespace: a single space is free (it belongs to the next word); a run of
//     newlines costs 1, free right after punctuation ("{\n" is one token); a
//     run of 2+ spaces (indentation) 1; a space before digits 1.
//   Other scripts, per code point: Cyrillic 0.6 (a word at least 1); Greek,
//     Hebrew, Arabic, Indic, Thai and the like 1; CJK ideographs and kana 1.1;
//     Hangul 1.4; other symbols 1 (emoji and other 4-byte ones 3); a byte that
//     is not UTF-8, 1.
//
// Against cl100k_base's real counts (js-tiktoken) the constants were fitted
// on this repository's docs, C++, JSON, shell and proto files (6 KB pieces:
// within ±8 %, most within ±3 %), English prose (+3 to +12 %), and sentences
// in 17 other languages (±25 %); the unit test holds a table of such pairs.
// o200k_base (gpt-4o and later) counts English, code and JSON the same, but
// other scripts at 0.3-0.7 of cl100k (Chinese and Japanese ~0.6, Russian
// 0.4-0.65, Greek, Hindi, Thai ~0.33): for those models such text is
// over-estimated up to 3x, so the limiter errs on refusing. Anthropic's and
// Gemini's tokenizers are not public; these rules were not measured on them.
//
// Requests: the text the model reads (message texts, roles, names, tool-call
// arguments, the JSON of tool definitions) plus a framing of 3 tokens per
// message and 3 to prime the reply, as OpenAI's published chat accounting
// (and +1 per `name`); the other formats are framed the same way. An image is
// a flat 85 tokens (OpenAI's low-detail price, a floor for the others); an
// audio or file part a flat 100. A part of an unknown type counts as the text
// of its JSON.

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <optional>
#include <string>

#include "tg/common/bounded_json.h"

namespace tg::edge {
namespace {

using rapidjson::Value;
using tg::v1::ClientFormat;

// ---------------------------------------------------------------------------
// Text

enum class Cls : uint8_t {
  kSpace,
  kNewline,
  kDigit,
  kLatin,
  kCyrillic,
  kScript,  // Greek, Hebrew, Arabic, Indic, Thai …: about a token per code point
  kHangul,
  kCjk,
  kSymbol,
  kPunct,  // ASCII punctuation and symbols
  kEnd,    // the end of a text, or a break between texts
};

constexpr uint32_t kInvalid = 0xFFFFFFFF;

Cls Classify(uint32_t cp) {
  if (cp < 0x80) {
    if (cp == ' ' || cp == '\t') return Cls::kSpace;
    if (cp == '\n' || cp == '\r' || cp == '\v' || cp == '\f') return Cls::kNewline;
    if (cp >= '0' && cp <= '9') return Cls::kDigit;
    if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return Cls::kLatin;
    return Cls::kPunct;
  }
  if (cp == 0xA0) return Cls::kSpace;
  if ((cp >= 0xC0 && cp <= 0x24F && cp != 0xD7 && cp != 0xF7) || (cp >= 0x300 && cp <= 0x36F) ||
      (cp >= 0x1E00 && cp <= 0x1EFF)) {
    return Cls::kLatin;  // accented Latin, combining accents, Vietnamese
  }
  if (cp >= 0x400 && cp <= 0x52F) return Cls::kCyrillic;
  if ((cp >= 0x370 && cp <= 0x3FF) || (cp >= 0x530 && cp <= 0x8FF) ||
      (cp >= 0x900 && cp <= 0x109F) || (cp >= 0x10A0 && cp <= 0x10FF) ||
      (cp >= 0x1780 && cp <= 0x17FF)) {
    return Cls::kScript;
  }
  if ((cp >= 0x1100 && cp <= 0x11FF) || (cp >= 0x3130 && cp <= 0x318F) ||
      (cp >= 0xAC00 && cp <= 0xD7AF)) {
    return Cls::kHangul;
  }
  if ((cp >= 0x2E80 && cp <= 0x2FFF) || (cp >= 0x3040 && cp <= 0x30FF) ||
      (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x4E00 && cp <= 0x9FFF) ||
      (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x20000 && cp <= 0x3FFFF)) {
    return Cls::kCjk;
  }
  return Cls::kSymbol;  // also kInvalid
}

// The code point at s[i] and its length; a byte that does not start a valid
// sequence is kInvalid, length 1.
size_t DecodeUtf8(std::string_view s, size_t i, uint32_t* cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  size_t n;
  uint32_t v;
  uint32_t min;
  if ((b0 & 0xE0) == 0xC0) {
    n = 2, v = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 3, v = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 4, v = b0 & 0x07, min = 0x10000;
  } else {
    *cp = kInvalid;
    return 1;
  }
  if (s.size() - i < n) {
    *cp = kInvalid;
    return 1;
  }
  for (size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) {
      *cp = kInvalid;
      return 1;
    }
    v = (v << 6) | (b & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
    *cp = kInvalid;
    return 1;
  }
  *cp = v;
  return n;
}

// The rules at the top of this file as a state machine over code points, fed
// in pieces: the count of a text does not depend on how it is cut (between
// code points). Costs are in thousandths of a token.
class TextCounter {
 public:
  void Feed(std::string_view text) {
    any_ = any_ || !text.empty();
    for (size_t i = 0; i < text.size();) {
      uint32_t cp;
      i += DecodeUtf8(text, i, &cp);
      Add(cp);
    }
  }

  // Ends the current text, rounded on its own (at least 1 when not empty):
  // what follows is counted as a new one (another content block, another
  // tool call's arguments).
  void Break() {
    EndRun(Cls::kEnd);
    last_ = Run::kNone;
    if (any_) tokens_ += std::max<int64_t>(1, (milli_ + 500) / 1000);
    any_ = false;
    milli_ = 0;
  }

  // The tokens of every text fed.
  int64_t Finish() {
    Break();
    return tokens_;
  }

 private:
  enum class Run : uint8_t { kNone, kWord, kScript, kDigits, kPunct, kSpace, kGlued, kDense };

  void Add(uint32_t cp) {
    const Cls c = Classify(cp);
    switch (c) {
      case Cls::kLatin:
        if (run_ != Run::kWord) Start(c, Run::kWord);
        AddLetter(cp);
        return;
      case Cls::kCyrillic:
      case Cls::kScript:
        if (run_ != Run::kScript) Start(c, Run::kScript);
        count_ += c == Cls::kCyrillic ? 600 : 1000;
        return;
      case Cls::kDigit:
        if (run_ != Run::kDigits) Start(c, Run::kDigits);
        ++count_;
        return;
      case Cls::kPunct:
        if (run_ != Run::kPunct) {
          Start(c, Run::kPunct);
          punct_first_ = cp;
          punct_same_ = true;
        } else if (cp != punct_first_) {
          punct_same_ = false;
        }
        ++count_;
        return;
      case Cls::kSpace:
      case Cls::kNewline:
        if (run_ != Run::kSpace) {
          Start(c, Run::kSpace);
          newline_ = false;
          spaces_ = 0;
          after_punct_ = last_ == Run::kPunct;
        }
        if (c == Cls::kNewline) {
          newline_ = newline_ || !after_punct_;
          spaces_ = 0;
        } else {
          ++spaces_;
          after_punct_ = false;
        }
        return;
      case Cls::kHangul:
      case Cls::kCjk:
      case Cls::kSymbol:
        EndRun(c);
        milli_ += c == Cls::kHangul                 ? 1400
                  : c == Cls::kCjk                  ? 1100
                  : cp >= 0x10000 && cp != kInvalid ? 3000
                                                    : 1000;
        last_ = Run::kDense;
        return;
      case Cls::kEnd:
        return;  // never a code point's class
    }
  }

  void Start(Cls c, Run run) {
    EndRun(c);
    run_ = run;
    count_ = 0;
  }

  // Ends the run in progress; `next` is the class of what follows (the
  // whitespace and punctuation rules look one character ahead).
  void EndRun(Cls next) {
    switch (run_) {
      case Run::kNone:
      case Run::kGlued:
      case Run::kDense:
        return;
      case Run::kWord:
        EndSegment();
        milli_ += word_;
        word_ = 0;
        segments_ = 0;
        break;
      case Run::kScript:
        milli_ += std::max<int64_t>(1000, count_);
        break;
      case Run::kDigits:
        milli_ += 1000 * ((count_ + 2) / 3);
        break;
      case Run::kPunct:
        if (count_ == 1 && next == Cls::kLatin) {
          // "_view", ".size": one piece with the word; "don't": free.
          if (!(punct_first_ == '\'' && last_ == Run::kWord)) milli_ += 300;
          last_ = Run::kGlued;
          run_ = Run::kNone;
          return;
        }
        milli_ += 1000 + std::max<int64_t>(0, count_ - 2) * (punct_same_ ? 62 : 150);
        break;
      case Run::kSpace: {
        int64_t cost = newline_ ? 1000 : 0;
        if (spaces_ > 0) {
          if (next == Cls::kEnd) {
            cost += 1000;
          } else if (next == Cls::kDigit) {
            cost += spaces_ >= 2 ? 2000 : 1000;
          } else if (spaces_ >= 2) {
            cost += 1000;
          }
        }
        milli_ += cost;
        break;
      }
    }
    last_ = run_;
    run_ = Run::kNone;
  }

  void AddLetter(uint32_t cp) {
    const bool upper = cp >= 'A' && cp <= 'Z';
    const bool lower = cp >= 'a' && cp <= 'z';
    if (seg_len_ > 0 && upper && seg_upper_ != seg_len_) {
      EndSegment();  // camelCase: a new segment at a capital after a small letter
    } else if (seg_len_ >= 2 && lower && seg_upper_ == seg_len_) {
      // XMLHttp: the last capital starts the next segment.
      --seg_len_;
      --seg_upper_;
      EndSegment();
      seg_len_ = 1;
      seg_upper_ = 1;
      seg_capital_ = true;
    }
    if (seg_len_ == 0) seg_capital_ = upper;
    ++seg_len_;
    if (upper) ++seg_upper_;
    if (cp >= 0x80) ++seg_accents_;
  }

  void EndSegment() {
    if (seg_len_ == 0) return;
    const int64_t len = seg_len_;
    int64_t cost;
    if (len >= 2 && seg_upper_ == len) {
      cost = std::max<int64_t>(1000, 400 * len);
    } else {
      cost = 1000 + 60 * std::max<int64_t>(0, len - 4) + 250 * std::max<int64_t>(0, len - 10);
      if (seg_capital_ && len >= 2) cost += 200;
    }
    cost += 1500 * seg_accents_;
    word_ += segments_ == 0 ? cost : cost * 4 / 5;
    ++segments_;
    seg_len_ = seg_upper_ = seg_accents_ = 0;
    seg_capital_ = false;
  }

  int64_t tokens_ = 0;  // of the texts before the last Break
  int64_t milli_ = 0;   // of the current text
  bool any_ = false;    // the current text is not empty
  Run run_ = Run::kNone;
  Run last_ = Run::kNone;  // the run before the current one
  int64_t count_ = 0;      // digits, punctuation marks, or a script run's cost
  uint32_t punct_first_ = 0;
  bool punct_same_ = true;
  bool newline_ = false;      // the whitespace run holds a newline that costs
  bool after_punct_ = false;  // … its newlines so far follow punctuation
  int64_t spaces_ = 0;        // spaces after the run's last newline
  int64_t word_ = 0;          // the word's finished segments
  int64_t segments_ = 0;
  int64_t seg_len_ = 0;
  int64_t seg_upper_ = 0;
  int64_t seg_accents_ = 0;
  bool seg_capital_ = false;
};

// ---------------------------------------------------------------------------
// JSON helpers

constexpr int64_t kImageTokens = 85;
constexpr int64_t kMediaTokens = 100;  // audio, file, document
constexpr int64_t kPerMessage = 3;
constexpr int64_t kReplyPriming = 3;
constexpr int64_t kMaxCap = 1'000'000'000;
// The largest event (or whole answer) the output counter holds.
constexpr size_t kMaxEventBytes = 1024 * 1024;

const Value* Member(const Value* v, std::string_view key) {
  if (v == nullptr || !v->IsObject()) return nullptr;
  auto it = v->FindMember(rapidjson::StringRef(key.data(), key.size()));
  return it == v->MemberEnd() ? nullptr : &it->value;
}

std::string_view Str(const Value* v) {
  if (v == nullptr || !v->IsString()) return {};
  return {v->GetString(), v->GetStringLength()};
}

std::string_view Str(const Value* v, std::string_view key) { return Str(Member(v, key)); }

int64_t IntOr(const Value* v, int64_t fallback) {
  return v != nullptr && v->IsInt64() ? v->GetInt64() : fallback;
}

std::string Serialize(const Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buf);
  v.Accept(writer);  // recursive, but the parser bounded the depth
  return {buf.GetString(), buf.GetSize()};
}

int64_t JsonTokens(const Value& v) { return EstimateTextTokens(Serialize(v)); }

// A token cap: an integral JSON number, clamped to [0, 10^9]; anything else
// (a string, a fraction, null) is not a cap.
std::optional<int64_t> Cap(const Value* v) {
  if (v == nullptr || !v->IsNumber()) return std::nullopt;
  if (v->IsInt64()) return std::clamp<int64_t>(v->GetInt64(), 0, kMaxCap);
  if (v->IsUint64()) return kMaxCap;
  const double d = v->GetDouble();
  if (d != std::floor(d)) return std::nullopt;
  if (d <= 0) return 0;
  return d >= static_cast<double>(kMaxCap) ? kMaxCap : static_cast<int64_t>(d);
}

// ---------------------------------------------------------------------------
// Requests

int64_t Content(const Value* v, int depth);

// One content part or block of any of the formats (they share most names),
// or a Responses input item that is not a message.
int64_t Part(const Value& part, int depth) {
  if (part.IsString()) return EstimateTextTokens(Str(&part));
  if (!part.IsObject()) return JsonTokens(part);
  const std::string_view type = Str(&part, "type");
  if (type == "text" || type == "input_text" || type == "output_text") {
    return EstimateTextTokens(Str(&part, "text"));
  }
  if (type == "refusal") return EstimateTextTokens(Str(&part, "refusal"));
  if (type == "thinking") return EstimateTextTokens(Str(&part, "thinking"));
  if (type == "image_url" || type == "image" || type == "input_image") return kImageTokens;
  if (type == "input_audio" || type == "audio" || type == "file" || type == "input_file" ||
      type == "document") {
    return kMediaTokens;
  }
  if (type == "tool_use" || type == "function_call") {
    int64_t n =
        EstimateTextTokens(Str(&part, "name")) + EstimateTextTokens(Str(&part, "arguments"));
    if (const Value* input = Member(&part, "input")) n += JsonTokens(*input);
    return n;
  }
  if (type == "tool_result") return Content(Member(&part, "content"), depth + 1);
  if (type == "function_call_output") return Content(Member(&part, "output"), depth + 1);
  return JsonTokens(part);
}

// A content: a string, an array of parts, or nothing.
int64_t Content(const Value* v, int depth) {
  if (v == nullptr || v->IsNull()) return 0;
  if (v->IsString()) return EstimateTextTokens(Str(v));
  if (!v->IsArray() || depth > 2) return JsonTokens(*v);
  int64_t n = 0;
  for (const Value& part : v->GetArray()) n += Part(part, depth);
  return n;
}

int64_t ToolDefinitions(const Value& body, std::string_view key) {
  const Value* tools = Member(&body, key);
  return tools == nullptr || tools->IsNull() ? 0 : JsonTokens(*tools);
}

int64_t ToolCall(const Value* call) {
  const Value* f = Member(call, "function");
  if (f == nullptr) f = call;  // legacy function_call: {name, arguments}
  return EstimateTextTokens(Str(f, "name")) + EstimateTextTokens(Str(f, "arguments"));
}

RequestTokens Chat(const Value& body) {
  RequestTokens t;
  t.prompt = kReplyPriming;
  if (const Value* messages = Member(&body, "messages"); messages && messages->IsArray()) {
    for (const Value& m : messages->GetArray()) {
      t.prompt += kPerMessage;
      if (!m.IsObject()) {
        t.prompt += JsonTokens(m);
        continue;
      }
      t.prompt += EstimateTextTokens(Str(&m, "role"));
      if (const Value* name = Member(&m, "name"); name && name->IsString()) {
        t.prompt += 1 + EstimateTextTokens(Str(name));
      }
      t.prompt += Content(Member(&m, "content"), 0);
      if (const Value* calls = Member(&m, "tool_calls"); calls && calls->IsArray()) {
        for (const Value& call : calls->GetArray()) t.prompt += ToolCall(&call);
      }
      if (const Value* call = Member(&m, "function_call"); call && call->IsObject()) {
        t.prompt += ToolCall(call);
      }
    }
  }
  t.prompt += ToolDefinitions(body, "tools") + ToolDefinitions(body, "functions");
  auto cap = Cap(Member(&body, "max_completion_tokens"));
  if (!cap) cap = Cap(Member(&body, "max_tokens"));
  t.max_output = cap.value_or(0);
  return t;
}

RequestTokens Anthropic(const Value& body) {
  RequestTokens t;
  t.prompt = kReplyPriming + Content(Member(&body, "system"), 0);
  if (const Value* messages = Member(&body, "messages"); messages && messages->IsArray()) {
    for (const Value& m : messages->GetArray()) {
      t.prompt += kPerMessage;
      if (!m.IsObject()) {
        t.prompt += JsonTokens(m);
        continue;
      }
      t.prompt += EstimateTextTokens(Str(&m, "role")) + Content(Member(&m, "content"), 0);
    }
  }
  t.prompt += ToolDefinitions(body, "tools");
  t.max_output = Cap(Member(&body, "max_tokens")).value_or(0);
  return t;
}

RequestTokens Responses(const Value& body) {
  RequestTokens t;
  t.prompt = kReplyPriming + EstimateTextTokens(Str(&body, "instructions"));
  const Value* input = Member(&body, "input");
  if (input != nullptr && input->IsString()) {
    t.prompt += kPerMessage + EstimateTextTokens(Str(input));
  } else if (input != nullptr && input->IsArray()) {
    for (const Value& item : input->GetArray()) {
      t.prompt += kPerMessage;
      if (Member(&item, "role") != nullptr) {
        t.prompt += EstimateTextTokens(Str(&item, "role")) + Content(Member(&item, "content"), 0);
      } else {
        t.prompt += Part(item, 0);
      }
    }
  } else if (input != nullptr && !input->IsNull()) {
    t.prompt += JsonTokens(*input);
  }
  t.prompt += ToolDefinitions(body, "tools");
  t.max_output = Cap(Member(&body, "max_output_tokens")).value_or(0);
  return t;
}

RequestTokens Embeddings(const Value& body) {
  RequestTokens t;
  const Value* input = Member(&body, "input");
  if (input == nullptr || input->IsNull()) return t;
  if (!input->IsArray()) {
    t.prompt = input->IsString() ? EstimateTextTokens(Str(input)) : JsonTokens(*input);
    return t;
  }
  for (const Value& v : input->GetArray()) {
    if (v.IsString()) {
      t.prompt += EstimateTextTokens(Str(&v));
    } else if (v.IsNumber()) {
      t.prompt += 1;  // a token id
    } else if (v.IsArray()) {
      t.prompt += v.Size();  // a list of token ids
    } else {
      t.prompt += JsonTokens(v);
    }
  }
  return t;
}

}  // namespace

int64_t EstimateTextTokens(std::string_view text) {
  TextCounter counter;
  counter.Feed(text);
  return counter.Finish();
}

RequestTokens EstimateRequestTokens(std::string_view body, ClientFormat format) {
  const bool known = format == tg::v1::CLIENT_FORMAT_OPENAI_CHAT ||
                     format == tg::v1::CLIENT_FORMAT_ANTHROPIC_MESSAGES ||
                     format == tg::v1::CLIENT_FORMAT_OPENAI_RESPONSES ||
                     format == tg::v1::CLIENT_FORMAT_OPENAI_EMBEDDINGS;
  RequestTokens fallback;
  if (!known) {
    fallback.prompt = EstimateTextTokens(body);
    return fallback;
  }
  rapidjson::Document doc;
  if (!json::Parse(body, &doc).ok() || !doc.IsObject()) {
    fallback.prompt = EstimateTextTokens(body);
    return fallback;
  }
  switch (format) {
    case tg::v1::CLIENT_FORMAT_OPENAI_CHAT:
      return Chat(doc);
    case tg::v1::CLIENT_FORMAT_ANTHROPIC_MESSAGES:
      return Anthropic(doc);
    case tg::v1::CLIENT_FORMAT_OPENAI_RESPONSES:
      return Responses(doc);
    default:
      return Embeddings(doc);
  }
}

// ---------------------------------------------------------------------------
// Output

class OutputTokenCounter::State {
 public:
  State(ClientFormat format, bool stream) : format_(format) {
    switch (format) {
      case tg::v1::CLIENT_FORMAT_OPENAI_CHAT:
      case tg::v1::CLIENT_FORMAT_ANTHROPIC_MESSAGES:
      case tg::v1::CLIENT_FORMAT_OPENAI_RESPONSES:
        mode_ = stream ? Mode::kEvents : Mode::kWhole;
        break;
      case tg::v1::CLIENT_FORMAT_OPENAI_EMBEDDINGS:
        mode_ = Mode::kNothing;
        break;
      default:
        mode_ = Mode::kBytes;
        break;
    }
  }

  void Feed(std::string_view bytes) {
    if (finished_) return;
    switch (mode_) {
      case Mode::kEvents:
        FeedEvents(bytes);
        return;
      case Mode::kWhole:
        bytes_ += bytes.size();
        if (bytes_ > kMaxEventBytes) {
          std::string().swap(body_);
        } else {
          body_.append(bytes);
        }
        return;
      case Mode::kBytes:
        bytes_ += bytes.size();
        return;
      case Mode::kNothing:
        return;
    }
  }

  int64_t Finish() {
    if (finished_) return result_;
    finished_ = true;
    switch (mode_) {
      case Mode::kEvents:
        if (line_bytes_ > 0) EndLine();
        EndEvent();
        break;
      case Mode::kWhole:
        if (bytes_ > kMaxEventBytes) {
          skipped_ += Quarter(bytes_);
        } else {
          Whole(body_);
        }
        std::string().swap(body_);
        break;
      case Mode::kBytes:
        skipped_ += Quarter(bytes_);
        break;
      case Mode::kNothing:
        break;
    }
    result_ = text_.Finish() + skipped_;
    return result_;
  }

 private:
  enum class Mode : uint8_t { kEvents, kWhole, kBytes, kNothing };

  // Which text a piece belongs to: a delta continues the text of the same
  // channel (a word cut between two deltas is one word); a new channel breaks.
  struct Channel {
    int kind = 0;
    int64_t a = 0;
    int64_t b = 0;
    bool operator==(const Channel&) const = default;
  };

  static int64_t Quarter(uint64_t bytes) { return static_cast<int64_t>((bytes + 3) / 4); }

  void Emit(Channel channel, std::string_view text) {
    if (text.empty()) return;
    if (!channel_ || !(*channel_ == channel)) {
      text_.Break();
      channel_ = channel;
    }
    text_.Feed(text);
  }

  // SSE: lines end at LF, CRLF or CR; a blank line ends an event; its data
  // lines are joined with "\n". The CR of a CRLF may end one Feed and its LF
  // start the next.
  void FeedEvents(std::string_view b) {
    size_t i = 0;
    while (i < b.size()) {
      if (pending_cr_) {
        pending_cr_ = false;
        if (b[i] == '\n') {
          ++i;
          continue;
        }
      }
      const size_t eol = b.find_first_of("\r\n", i);
      const size_t end = eol == std::string_view::npos ? b.size() : eol;
      AppendLine(b.substr(i, end - i));
      if (eol == std::string_view::npos) return;
      pending_cr_ = b[eol] == '\r';
      EndLine();
      i = eol + 1;
    }
  }

  void AppendLine(std::string_view piece) {
    if (piece.empty()) return;
    line_bytes_ += piece.size();
    event_bytes_ += piece.size();
    if (skipping_) return;
    if (event_bytes_ > kMaxEventBytes) {
      skipping_ = true;  // counted by its size at its end
      std::string().swap(line_);
      std::string().swap(data_);
      return;
    }
    line_.append(piece);
  }

  void EndLine() {
    if (line_bytes_ == 0) {
      EndEvent();
      return;
    }
    ++event_bytes_;  // the line's end
    line_bytes_ = 0;
    if (skipping_) return;
    std::string_view line = line_;
    if (line.starts_with("data:")) {
      line.remove_prefix(5);
      if (line.starts_with(' ')) line.remove_prefix(1);
      if (has_data_) data_.push_back('\n');
      data_.append(line);
      has_data_ = true;
    }
    line_.clear();
  }

  void EndEvent() {
    if (skipping_) {
      skipped_ += Quarter(event_bytes_);
    } else if (has_data_ && data_ != "[DONE]") {
      rapidjson::Document doc;
      if (json::Parse(data_, &doc).ok() && doc.IsObject()) Event(doc);
    }
    skipping_ = false;
    has_data_ = false;
    event_bytes_ = 0;
    line_.clear();
    data_.clear();
  }

  void Event(const Value& e) {
    switch (format_) {
      case tg::v1::CLIENT_FORMAT_OPENAI_CHAT:
        ChatChoices(e, "delta");
        return;
      case tg::v1::CLIENT_FORMAT_ANTHROPIC_MESSAGES:
        AnthropicEvent(e);
        return;
      default:
        ResponsesEvent(e);
        return;
    }
  }

  void Whole(std::string_view body) {
    rapidjson::Document doc;
    if (!json::Parse(body, &doc).ok() || !doc.IsObject()) return;  // no answer, no output
    switch (format_) {
      case tg::v1::CLIENT_FORMAT_OPENAI_CHAT:
        ChatChoices(doc, "message");
        return;
      case tg::v1::CLIENT_FORMAT_ANTHROPIC_MESSAGES:
        if (const Value* content = Member(&doc, "content"); content && content->IsArray()) {
          int64_t i = 0;
          for (const Value& block : content->GetArray()) AnthropicBlock(i++, &block);
        }
        return;
      default:
        ResponsesOutput(doc);
        return;
    }
  }

  // choices[].delta (a chunk) or choices[].message (a whole answer).
  void ChatChoices(const Value& e, std::string_view key) {
    const Value* choices = Member(&e, "choices");
    if (choices == nullptr || !choices->IsArray()) return;
    int64_t position = 0;
    for (const Value& choice : choices->GetArray()) {
      const int64_t c = IntOr(Member(&choice, "index"), position++);
      const Value* m = Member(&choice, key);
      if (m == nullptr || !m->IsObject()) continue;
      if (const Value* content = Member(m, "content"); content && content->IsArray()) {
        for (const Value& part : content->GetArray()) Emit({1, c, 0}, Str(&part, "text"));
      } else {
        Emit({1, c, 0}, Str(content));
      }
      Emit({2, c, 0}, Str(m, "reasoning_content"));
      Emit({3, c, 0}, Str(m, "refusal"));
      if (const Value* calls = Member(m, "tool_calls"); calls && calls->IsArray()) {
        int64_t j = 0;
        for (const Value& call : calls->GetArray()) {
          const int64_t t = IntOr(Member(&call, "index"), j++);
          const Value* f = Member(&call, "function");
          Emit({4, c, t}, Str(f, "name"));
          Emit({5, c, t}, Str(f, "arguments"));
        }
      }
      if (const Value* f = Member(m, "function_call")) {
        Emit({4, c, -1}, Str(f, "name"));
        Emit({5, c, -1}, Str(f, "arguments"));
      }
    }
  }

  void AnthropicEvent(const Value& e) {
    const std::string_view type = Str(&e, "type");
    const int64_t index = IntOr(Member(&e, "index"), 0);
    if (type == "content_block_delta") {
      const Value* delta = Member(&e, "delta");
      const std::string_view kind = Str(delta, "type");
      if (kind == "text_delta") {
        Emit({1, index, 0}, Str(delta, "text"));
      } else if (kind == "input_json_delta") {
        Emit({1, index, 0}, Str(delta, "partial_json"));
      } else if (kind == "thinking_delta") {
        Emit({1, index, 0}, Str(delta, "thinking"));
      }
    } else if (type == "content_block_start") {
      AnthropicBlock(index, Member(&e, "content_block"));
    }
  }

  // A block of a whole answer, or the start of a streamed one (whose text,
  // thinking and input are empty there and come as deltas).
  void AnthropicBlock(int64_t index, const Value* block) {
    Emit({2, index, 0}, Str(block, "name"));
    Emit({1, index, 0}, Str(block, "text"));
    Emit({1, index, 0}, Str(block, "thinking"));
    const Value* input = Member(block, "input");
    if (input != nullptr && !(input->IsObject() && input->MemberCount() == 0)) {
      Emit({1, index, 0}, Serialize(*input));
    }
  }

  void ResponsesEvent(const Value& e) {
    static constexpr std::string_view kDeltas[] = {
        "response.output_text.delta", "response.refusal.delta",
        "response.function_call_arguments.delta", "response.reasoning_text.delta",
        "response.reasoning_summary_text.delta"};
    const std::string_view type = Str(&e, "type");
    const int64_t item = IntOr(Member(&e, "output_index"), 0);
    for (int k = 0; k < static_cast<int>(std::size(kDeltas)); ++k) {
      if (type != kDeltas[k]) continue;
      const int64_t part =
          IntOr(Member(&e, "content_index"), IntOr(Member(&e, "summary_index"), 0));
      Emit({1 + k, item, part}, Str(&e, "delta"));
      return;
    }
    if (type == "response.output_item.added") {
      const Value* added = Member(&e, "item");
      if (Str(added, "type") == "function_call") Emit({10, item, 0}, Str(added, "name"));
    }
  }

  void ResponsesOutput(const Value& answer) {
    const Value* output = Member(&answer, "output");
    if (output == nullptr || !output->IsArray()) return;
    int64_t i = 0;
    for (const Value& item : output->GetArray()) {
      const int64_t n = i++;
      const std::string_view type = Str(&item, "type");
      if (type == "function_call") {
        Emit({10, n, 0}, Str(&item, "name"));
        Emit({3, n, 0}, Str(&item, "arguments"));
        continue;
      }
      int64_t p = 0;
      for (const char* key : {"content", "summary"}) {
        const Value* parts = Member(&item, key);
        if (parts == nullptr || !parts->IsArray()) continue;
        for (const Value& part : parts->GetArray()) {
          const int64_t k = p++;
          Emit({1, n, k}, Str(&part, "text"));
          Emit({2, n, k}, Str(&part, "refusal"));
        }
      }
    }
  }

  ClientFormat format_;
  Mode mode_;
  bool finished_ = false;
  int64_t result_ = 0;
  TextCounter text_;
  std::optional<Channel> channel_;
  int64_t skipped_ = 0;  // tokens of oversized events and of formats counted by size
  uint64_t bytes_ = 0;   // kWhole, kBytes: everything fed
  std::string body_;     // kWhole
  // kEvents
  std::string line_;  // the line so far
  std::string data_;  // the event's data lines so far
  bool has_data_ = false;
  bool pending_cr_ = false;
  bool skipping_ = false;
  uint64_t line_bytes_ = 0;
  uint64_t event_bytes_ = 0;
};

OutputTokenCounter::OutputTokenCounter(ClientFormat format, bool stream)
    : state_(std::make_unique<State>(format, stream)) {}
OutputTokenCounter::~OutputTokenCounter() = default;
OutputTokenCounter::OutputTokenCounter(OutputTokenCounter&&) noexcept = default;
OutputTokenCounter& OutputTokenCounter::operator=(OutputTokenCounter&&) noexcept = default;

void OutputTokenCounter::Feed(std::string_view bytes) { state_->Feed(bytes); }

int64_t OutputTokenCounter::Finish() { return state_->Finish(); }

}  // namespace tg::edge
