#include "tg/adapter/translate/embeddings.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cstring>

#include "tg/adapter/translate/providers/provider_util.h"
#include "tg/adapter/translate/providers/providers.h"
#include "tg/adapter/translate/target_url.h"
#include "tg/common/base64.h"

namespace tg::adapter::translate {
namespace {

using json::Value;

constexpr std::string_view kOpenAiBaseUrl = "https://api.openai.com";
// OpenAI's own limit on inputs per request.
constexpr size_t kMaxInputs = 2048;
// Cohere's limit on texts per call.
constexpr size_t kMaxCohereTexts = 96;

// A request this target cannot express (no embeddings API, or not this
// shape of input): 400, but retryable, so that the edge fails over to a
// target that can (an upstream may mix chat-only providers with embedding
// ones). No provider is called; health counts it as the request's, not the
// target's, fault.
AdapterError TargetCannot(std::string message) {
  AdapterError e = InvalidRequest(std::move(message));
  e.retryable = true;
  return e;
}

bool IsTokenArray(const Value& v) {
  if (!v.IsArray() || v.Empty()) return false;
  return std::all_of(v.Begin(), v.End(), [](const Value& t) { return t.IsInt64(); });
}

enum class Api { kOpenAi, kAzure, kGemini, kTitan, kCohere, kNone };

Api ApiFor(const TargetInfo& target) {
  std::string provider = target.provider;
  std::transform(provider.begin(), provider.end(), provider.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (provider == "openai") return Api::kOpenAi;
  if (provider == "azure") return Api::kAzure;
  if (provider == "gemini" || provider == "google") return Api::kGemini;
  if (provider == "bedrock") {
    // Bedrock model ids may carry a cross-region prefix ("us.cohere.embed-…").
    if (target.model.find("amazon.titan-embed-text") != std::string::npos) return Api::kTitan;
    if (target.model.find("cohere.embed") != std::string::npos) return Api::kCohere;
  }
  return Api::kNone;
}

// The client's body with `model` set to the effective model.
std::string WithModel(const json::Document& doc, std::string_view model) {
  json::Document copy;
  copy.CopyFrom(doc, copy.GetAllocator());
  json::Set(copy, "model", json::Str(model, copy.GetAllocator()), copy.GetAllocator());
  return json::Write(copy);
}

// One embedding as OpenAI writes it: floats, or base64 of float32 LE.
void WriteEmbedding(rapidjson::Writer<rapidjson::StringBuffer>& w, const Value& values,
                    bool base64) {
  if (!base64) {
    w.StartArray();
    for (const auto& v : values.GetArray()) w.Double(v.GetDouble());
    w.EndArray();
    return;
  }
  std::string bytes;
  bytes.reserve(values.Size() * 4);
  for (const auto& v : values.GetArray()) {
    const float f = static_cast<float>(v.GetDouble());
    uint32_t u;
    std::memcpy(&u, &f, 4);
    for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<char>((u >> (8 * i)) & 0xff));
  }
  const std::string encoded = base64::Encode(bytes);
  w.String(encoded.data(), static_cast<rapidjson::SizeType>(encoded.size()));
}

bool IsVector(const Value* v) {
  return v != nullptr && v->IsArray() &&
         std::all_of(v->Begin(), v->End(), [](const Value& x) { return x.IsNumber(); });
}

// OpenAI's answer from a list of vectors (each a JSON array of numbers).
std::string OpenAiAnswer(const std::vector<const Value*>& vectors, std::string_view model,
                         int64_t prompt_tokens, bool base64) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("object");
  w.String("list");
  w.Key("data");
  w.StartArray();
  for (size_t i = 0; i < vectors.size(); ++i) {
    w.StartObject();
    w.Key("object");
    w.String("embedding");
    w.Key("index");
    w.Int64(static_cast<int64_t>(i));
    w.Key("embedding");
    WriteEmbedding(w, *vectors[i], base64);
    w.EndObject();
  }
  w.EndArray();
  w.Key("model");
  json::WriteString(w, model);
  w.Key("usage");
  w.StartObject();
  w.Key("prompt_tokens");
  w.Int64(std::max<int64_t>(prompt_tokens, 0));
  w.Key("total_tokens");
  w.Int64(std::max<int64_t>(prompt_tokens, 0));
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Value TextContent(std::string_view text, json::Allocator& a) {
  Value part(rapidjson::kObjectType);
  part.AddMember("text", json::Str(text, a), a);
  Value parts(rapidjson::kArrayType);
  parts.PushBack(part, a);
  Value content(rapidjson::kObjectType);
  content.AddMember("parts", parts, a);
  return content;
}

Result<HttpRequestSpec> BuildGemini(const EmbeddingsRequest& request, const TargetInfo& target) {
  const std::string model_path = GeminiModelPath(target.model);
  json::Document out(rapidjson::kObjectType);
  auto& a = out.GetAllocator();
  std::string path;
  if (request.texts.size() == 1) {
    path = model_path + ":embedContent";
    out.AddMember("content", TextContent(request.texts[0], a), a);
    if (request.dimensions) out.AddMember("outputDimensionality", *request.dimensions, a);
  } else {
    path = model_path + ":batchEmbedContents";
    // Each request names the model as Google does: "models/x" (the path's
    // segment after /v1beta/).
    const std::string name = model_path.substr(std::strlen("/v1beta/"));
    Value requests(rapidjson::kArrayType);
    for (const auto& text : request.texts) {
      Value r(rapidjson::kObjectType);
      r.AddMember("model", json::Str(name, a), a);
      r.AddMember("content", TextContent(text, a), a);
      if (request.dimensions) r.AddMember("outputDimensionality", *request.dimensions, a);
      requests.PushBack(r, a);
    }
    out.AddMember("requests", requests, a);
  }
  CallShape shape{.base_url = std::string(kGeminiBaseUrl), .path = std::move(path)};
  shape.auth = AuthScheme::kGoogleApiKey;
  return AssembleCall(std::move(shape), target, json::Write(out));
}

Result<HttpRequestSpec> BuildBedrock(const EmbeddingsRequest& request, const TargetInfo& target,
                                     Api api) {
  json::Document out(rapidjson::kObjectType);
  auto& a = out.GetAllocator();
  if (api == Api::kTitan) {
    if (request.texts.size() != 1) {
      return TargetCannot(target.model +
                          " embeds one input per call: send `input` as one string (or use a "
                          "cohere.embed model for several)");
    }
    out.AddMember("inputText", json::Str(request.texts[0], a), a);
    if (request.dimensions) out.AddMember("dimensions", *request.dimensions, a);
  } else {
    if (request.texts.size() > kMaxCohereTexts) {
      return TargetCannot(target.model + " takes at most 96 inputs per call");
    }
    if (request.dimensions) {
      return TargetCannot("`dimensions` is not supported by " + target.model);
    }
    Value texts(rapidjson::kArrayType);
    for (const auto& t : request.texts) texts.PushBack(json::Str(t, a), a);
    out.AddMember("texts", texts, a);
    // OpenAI's API has no input type; documents are what embeddings are
    // mostly made of (a search query embeds the same way in practice).
    out.AddMember("input_type", "search_document", a);
    Value types(rapidjson::kArrayType);
    types.PushBack("float", a);
    out.AddMember("embedding_types", types, a);
  }
  auto shape = BedrockCallShape(target);
  if (!shape.ok()) return shape.error();
  shape.value().path = "/model/" + PathEncode(target.model) + "/invoke";
  return AssembleCall(std::move(shape.value()), target, json::Write(out));
}

}  // namespace

Result<EmbeddingsRequest> DecodeEmbeddingsRequest(std::string_view body) {
  EmbeddingsRequest r;
  ::tg::json::ParseResult parsed;
  if (!json::ParseStrict(body, &r.doc, &parsed) || !r.doc.IsObject()) {
    std::string why = json::RefusedBeyondSyntax(parsed);
    return InvalidRequest(why.empty() ? "request body must be a JSON object" : why);
  }
  const Value* model = json::Find(r.doc, "model");
  if (model == nullptr || !model->IsString() || model->GetStringLength() == 0) {
    return InvalidRequest("`model` is required (a string)");
  }
  r.model = json::AsString(model);
  const Value* input = json::Find(r.doc, "input");
  if (input == nullptr) return InvalidRequest("`input` is required");
  if (input->IsString()) {
    if (input->GetStringLength() == 0) return InvalidRequest("`input` must not be empty");
    r.texts.emplace_back(json::AsString(input));
  } else if (input->IsArray() && !input->Empty()) {
    if (input->Size() > kMaxInputs) return InvalidRequest("`input` holds more than 2048 items");
    if (IsTokenArray(*input) ||
        std::all_of(input->Begin(), input->End(), [](const Value& v) { return IsTokenArray(v); })) {
      r.token_input = true;
    } else {
      for (const auto& v : input->GetArray()) {
        if (!v.IsString() || v.GetStringLength() == 0) {
          return InvalidRequest(
              "`input` must be a string, an array of non-empty strings, or token ids");
        }
        r.texts.emplace_back(json::AsString(&v));
      }
    }
  } else {
    return InvalidRequest("`input` must be a string, an array of non-empty strings, or token ids");
  }
  if (const Value* d = json::Find(r.doc, "dimensions"); json::IsNonNull(d)) {
    if (!d->IsInt64() || d->GetInt64() < 1) {
      return InvalidRequest("`dimensions` must be a positive integer");
    }
    r.dimensions = d->GetInt64();
  }
  if (const Value* f = json::Find(r.doc, "encoding_format"); json::IsNonNull(f)) {
    const std::string_view format = json::AsString(f);
    if (!f->IsString() || (format != "float" && format != "base64")) {
      return InvalidRequest("`encoding_format` must be \"float\" or \"base64\"");
    }
    r.base64 = format == "base64";
  }
  return r;
}

Result<HttpRequestSpec> BuildEmbeddingsCall(const EmbeddingsRequest& request,
                                            const TargetInfo& target) {
  const Api api = ApiFor(target);
  if (api == Api::kNone) {
    return TargetCannot(
        target.provider == "bedrock"
            ? "bedrock embeddings are served by amazon.titan-embed-text and cohere.embed models, "
              "not " +
                  target.model
            : "provider " + target.provider + " has no embeddings API");
  }
  if (request.token_input && api != Api::kOpenAi && api != Api::kAzure) {
    return TargetCannot("token-id `input` is only understood by openai and azure targets");
  }
  const std::string encoded = PathEncode(target.model);
  switch (api) {
    case Api::kOpenAi:
      return AssembleCall({.base_url = std::string(kOpenAiBaseUrl),
                           .path = "/v1/embeddings",
                           .auth = AuthScheme::kBearer},
                          target, WithModel(request.doc, target.model));
    case Api::kAzure: {
      auto shape = AzureCallShape(target, "/openai/deployments/" + encoded + "/embeddings");
      if (!shape.ok()) return shape.error();
      return AssembleCall(std::move(shape.value()), target, WithModel(request.doc, target.model));
    }
    case Api::kGemini:
      return BuildGemini(request, target);
    case Api::kTitan:
    case Api::kCohere:
      return BuildBedrock(request, target, api);
    case Api::kNone:
      break;
  }
  return TargetCannot("no embeddings API");
}

Result<EmbeddingsAnswer> ParseEmbeddingsAnswer(const TargetInfo& target,
                                               const EmbeddingsRequest& request,
                                               std::string_view body, int64_t header_tokens) {
  json::Document doc;
  if (auto error = ReadAnswerBody(200, body, &doc)) return *error;
  EmbeddingsAnswer answer;
  std::vector<const Value*> vectors;
  switch (ApiFor(target)) {
    case Api::kOpenAi:
    case Api::kAzure: {
      // Already OpenAI's: passed on as written (base64 was asked of the
      // provider itself when the client wanted it).
      const Value* data = json::GetArray(doc, "data");
      if (data == nullptr) return ProtocolError("embeddings answer without `data`");
      if (const Value* usage = json::GetObject(doc, "usage")) {
        answer.prompt_tokens = json::GetInt(*usage, "prompt_tokens", -1);
      }
      answer.body = std::string(body);
      return answer;
    }
    case Api::kGemini: {
      if (const Value* one = json::GetObject(doc, "embedding")) {
        vectors.push_back(json::Find(*one, "values"));
      } else if (const Value* many = json::GetArray(doc, "embeddings")) {
        for (const auto& e : many->GetArray()) {
          vectors.push_back(e.IsObject() ? json::Find(e, "values") : nullptr);
        }
      }
      break;
    }
    case Api::kTitan:
      vectors.push_back(json::Find(doc, "embedding"));
      answer.prompt_tokens = json::GetInt(doc, "inputTextTokenCount", -1);
      break;
    case Api::kCohere: {
      const Value* e = json::Find(doc, "embeddings");
      if (e != nullptr && e->IsObject()) e = json::Find(*e, "float");  // embeddings_by_type
      if (e != nullptr && e->IsArray()) {
        for (const auto& v : e->GetArray()) vectors.push_back(&v);
      }
      if (const Value* meta = json::GetObject(doc, "meta")) {
        if (const Value* billed = json::GetObject(*meta, "billed_units")) {
          answer.prompt_tokens = json::GetInt(*billed, "input_tokens", -1);
        }
      }
      break;
    }
    case Api::kNone:
      break;
  }
  if (vectors.empty() || !std::all_of(vectors.begin(), vectors.end(), IsVector)) {
    return ProtocolError("the provider's embeddings answer holds no vectors");
  }
  if (answer.prompt_tokens < 0) answer.prompt_tokens = header_tokens;
  if (vectors.size() != request.texts.size()) {
    return ProtocolError("the provider answered " + std::to_string(vectors.size()) +
                         " embeddings for " + std::to_string(request.texts.size()) + " inputs");
  }
  answer.body = OpenAiAnswer(vectors, target.model, answer.prompt_tokens, request.base64);
  return answer;
}

}  // namespace tg::adapter::translate
