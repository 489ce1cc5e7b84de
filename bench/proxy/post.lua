-- wrk: the seeds' chat body, POSTed with a gateway key (TG_KEY) or, direct
-- to the fake, with the fake's OpenAI key.
wrk.method = "POST"
wrk.body = '{"model": "gpt-4", "messages": [{"role": "user", "content": "Hello!"}], ' ..
           '"max_tokens": 1020, "system": "You are an assistant"}'
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("TG_KEY")
if key ~= nil and key ~= "" then
  wrk.headers["X-TG-API-Key"] = key
else
  wrk.headers["Authorization"] = "Bearer sk-fake-openai"
end
