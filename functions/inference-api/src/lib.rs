//! The inference endpoint group (seed 000 step 4): Anthropic Messages and OpenAI Chat
//! Completions in front of configured providers. In progress: the provider client and
//! the SSE reader are here; the HTTP handlers, credits and usage records come next.

pub mod gateway;
pub mod provider;
pub mod sse;
