// Tokenizers and chat templates (browser and Node). Node-only helpers live in llama3-node.ts and
// qwen-node.ts, the browser's static-asset URLs of the tokenizer files in llama3-asset.ts and
// qwen-asset.ts.
export * from './tokenizer';
export { renderChatTemplate, strftime } from './chat-template';
export { LLAMA_3_2_CHAT_TEMPLATE } from './llama3-chat-template';
export { QWEN_2_5_CHAT_TEMPLATE, SMOLLM2_CHAT_TEMPLATE } from './chatml-templates';
export * from './llama3';
export * from './qwen';
