#pragma once

// The request bodies of the seeds (../shared/seeds/, TrustGate's docs), kept
// byte for byte as a user would paste them: trailing commas and `#` comments
// included. The tests send them unchanged.
namespace tg::testing::seeds {

// 000, Step 1 (note the trailing comma).
inline constexpr const char* kGatewayStep1 = R"({
"name": "multi-provider-gateway",
})";

// 001, Step 1.
inline constexpr const char* kGatewayWithSubdomain = R"({
    "name": "multi-provider-gateway",
    "subdomain": "your-subdomain"
  })";

// 000, Step 2.
inline constexpr const char* kUpstreamStep2 = R"({
"name": "ai-providers-upstream",
"algorithm": "round-robin",
"targets": [
{
"path": "/v1/chat/completions",
"provider": "openai",
"weight": 50,
"default_model": "gpt-4o-mini",
"models": ["gpt-3.5-turbo", "gpt-4", "gpt-4o-mini"],
"credentials": {
"api_key": "your-openai-key"
}
},
{
"path": "/v1/messages",
"provider": "anthropic",
"weight": 50,
"default_model": "claude-3-sonnet",
"models": ["claude-3-sonnet"],
"headers": {
"anthropic-version": "2023-06-01"
},
"credentials": {
"api_key": "your-anthropic-key"
}
}
],
"health_checks": {
"passive": true,
"threshold": 3,
"interval": 60
}
})";

// 000, provider-specific examples.
inline constexpr const char* kOpenAiResponses = R"({
"name": "{{upstream_service_name}}",
"algorithm": "round-robin",
"targets": [
{
"provider": "openai",
"provider_options": {"api": "responses"},
"weight": 50,
"priority": 1,
"default_model": "gpt-4o-mini",
"models": ["gpt-3.5-turbo", "gpt-4", "gpt-4o-mini"],
"stream": false,
"credentials": {
"api_key": "sk-proj-"
}
}
],
"health_checks": {
"passive": true,
"threshold": 3,
"interval": 60
}
})";

inline constexpr const char* kAnthropic = R"({
"name": "{{upstream_service_name}}",
"algorithm": "round-robin",
"targets": [
{
"provider": "anthropic",
"weight": 50,
"default_model": "claude-3-5-sonnet-20241022",
"models": ["claude-3-5-sonnet-20241022"],
"stream": false,
"headers": {
"anthropic-version": "2023-06-01"
},
"credentials": {
"api_key": ""
}
}
],
"health_checks": {
"passive": true,
"threshold": 3,
"interval": 60
}
})";

inline constexpr const char* kGemini = R"({
"name": "{{upstream_service_name}}",
"algorithm": "round-robin",
"targets": [
{
"provider": "gemini",
"weight": 50,
"default_model": "gemini-2.0-flash-001",
"models": ["gemini-2.0-flash-001"],
"stream": false,
"credentials": {
"api_key": ""
}
}
],
"health_checks": {
"passive": true,
"threshold": 3,
"interval": 60
}
})";

inline constexpr const char* kBedrockStandalone = R"({
"name": "{{upstream_service_name}}",
"algorithm": "round-robin",
"targets": [
{
"provider": "bedrock",
"weight": 50,
"default_model": "eu.anthropic.claude-3-5-sonnet-20240620-v1:0",
"models": [
"eu.anthropic.claude-3-5-sonnet-20240620-v1:0",
"amazon.titan-text-express-v1",
"eu.meta.llama3-2-1b-instruct-v1:0",
"eu.mistral.pixtral-large-2502-v1:0",
"deepseek-llm-r1-distill-llama-8b"
],
"stream": true,
"headers": {
"anthropic-version": "2023-06-01"
},
"credentials": {
"aws_access_key_id": "",
"aws_secret_access_key": "",
"aws_session_token": "",
"aws_region": "eu-west-1"
}
}
],
"health_checks": {
"passive": true,
"threshold": 3,
"interval": 60
}
})";

inline constexpr const char* kBedrockAnthropic = R"({
"name": "{{upstream_service_name}}",
"algorithm": "round-robin",
"targets": [
{
"provider": "bedrock",
"weight": 50,
"default_model": "eu.anthropic.claude-3-5-sonnet-20240620-v1:0",
"models": [
"eu.anthropic.claude-3-5-sonnet-20240620-v1:0",
"amazon.titan-text-express-v1",
"eu.meta.llama3-2-1b-instruct-v1:0",
"eu.mistral.pixtral-large-2502-v1:0",
"deepseek-llm-r1-distill-llama-8b"
],
"stream": true,
"headers": {
"anthropic-version": "2023-06-01"
},
"credentials": {
"aws_access_key_id": "A....",
"aws_secret_access_key": "u1H49D0GfnbtDhYF...",
"aws_session_token": "I...",
"aws_region": "eu-west-1"
}
}
],
"health_checks": {
"passive": true,
"threshold": 3,
"interval": 60
}
})";

inline constexpr const char* kAzure = R"({
"name": "{{upstream_service_name}}",
"algorithm": "round-robin",
"targets": [
{
"provider": "azure",
"weight": 50,
"default_model": "gpt-4o-mini",
"models": ["gpt-4o-mini"],
"credentials": {
"api_key": "7LQ...",
"azure_endpoint": "https://example2.cognitiveservices.azure.com",
"azure_version": "",
"azure_use_managed_identity": false
}
}
],
"health_checks": {
"passive": true,
"threshold": 3,
"interval": 60
}
})";

// 001, Step 2 (header_name / header_value credentials, priorities).
inline constexpr const char* kUpstreamHeaderCredentials = R"({
    "name": "ai-providers-upstream",
    "algorithm": "round-robin",
    "targets": [
      {
        "path": "/v1/chat/completions",
        "provider": "openai",
        "weight": 50,
        "priority": 1,
        "default_model": "gpt-4",
        "models": ["gpt-3.5-turbo", "gpt-4"],
        "credentials": {
          "header_name": "Authorization",
          "header_value": "Bearer your-openai-key"
        }
      },
      {
        "path": "/v1/messages",
        "provider": "anthropic",
        "weight": 50,
        "priority": 1,
        "default_model": "claude-3-sonnet",
        "models": ["claude-3-sonnet"],
        "headers": {
          "anthropic-version": "2023-06-01"
        },
        "credentials": {
          "header_name": "x-api-key",
          "header_value": "your-anthropic-key"
        }
      }
    ],
    "health_checks": {
      "passive": true,
      "threshold": 3,
      "interval": 60
    }
  })";

// 002, weighted round robin over host targets, with shell comments in the body.
inline constexpr const char* kWeightedHostTargets = R"({
    "name": "weighted-upstream",
    "algorithm": "weighted-round-robin",
    "targets": [
      {
        "host": "api.openai.com",
        "port": 443,
        "protocol": "https",
        "weight": 60,    # 60% of traffic
        "priority": 1,
        "default_model": "gpt-4o-mini",
        "models": ["gpt-3.5-turbo", "gpt-4", "gpt-4o-mini"],
        "credentials": {
          "header_name": "Authorization",
          "header_value": "Bearer your-openai-key"
        }
      },
      {
        "host": "api.anthropic.com",
        "port": 443,
        "protocol": "https",
        "weight": 40,    # 40% of traffic
        "priority": 1,
        "default_model": "claude-3-5-sonnet-20241022",
        "models": ["claude-3-5-sonnet-20241022"],
        "credentials": {
          "header_name": "Authorization",
          "header_value": "Bearer your-anthropic-key"
        }
      }
    ],
    "health_checks": {
      "passive": true,
      "threshold": 3,
      "interval": 60
    }
  })";

// Step 3 (000/001); {upstream_id} is replaced by the test.
inline constexpr const char* kServiceStep3 = R"({
    "name": "ai-chat-service",
    "description": "Load balanced AI chat completion service",
    "upstream_id": "{upstream_id}",
    "type": "upstream",
    "tags": ["ai", "chat"]
  })";

// Step 4.
inline constexpr const char* kRuleStep4 = R"({
    "path": "/v1",
    "service_id": "{service_id}",
    "methods": ["POST"],
    "strip_path": false,
    "active": true
  })";

// 002's rule.
inline constexpr const char* kRuleStripPath = R"({
    "path": "/ai",
    "service_id": "{service_id}",
    "methods": ["POST"],
    "strip_path": true,
    "active": true
  })";

// Step 5: this date is already past (today is later than 2026-01-01).
inline constexpr const char* kKeyStep5 = R"({
    "name": "test-key",
    "expires_at": "2026-01-01T00:00:00Z"
  })";

}  // namespace tg::testing::seeds
