//! The agent's side of the context window: the budget, when and how the compaction ladder
//! (`crate::compaction`) runs, the server's token counts and their calibration kept in the
//! session. The loop (`super`) calls [`Agent::fit`] before every request.

use nanna_model::{ChatMessage, ChatRequest, Usage};
use tokio_util::sync::CancellationToken;

use super::{Agent, OnEvent};
use crate::compaction::{self, Budget, Compacted, Ladder, Mode, Outcome};
use crate::error::AgentError;
use crate::event::AgentEvent;
use crate::session::StoredUsage;
use crate::tokens;

impl Agent {
    /// The room the prompt has: the window, the reply's share, the compaction trigger.
    pub(super) fn budget(&self) -> Budget {
        Budget::new(
            self.context_window,
            self.config.options.max_tokens,
            self.config.compaction_threshold,
        )
    }

    /// Compacts the history now (`/compact`): one summary of everything before the user's
    /// latest request (the previous summary included); `instruction` says what to keep in
    /// particular. Returns whether the history changed (a warning says why not).
    pub async fn compact(
        &mut self,
        instruction: Option<&str>,
        cancel: CancellationToken,
        on_event: &mut OnEvent<'_>,
    ) -> Result<bool, AgentError> {
        if self.request.messages.len() < 3 {
            on_event(AgentEvent::Warning {
                message: "nothing to compact yet".into(),
            });
            return Ok(false);
        }
        let outcome = self
            .ladder()
            .run(Mode::Requested { instruction }, &cancel, on_event)
            .await;
        match outcome {
            Outcome::Compacted(compacted) => {
                self.apply_compaction(compacted, true, on_event).await;
                Ok(true)
            }
            Outcome::Unchanged | Outcome::Cancelled => Ok(false),
            Outcome::Overflow(detail) => Err(AgentError::ContextOverflow { detail }),
        }
    }

    pub(super) fn ladder(&self) -> Ladder<'_> {
        Ladder {
            provider: self.provider.as_ref(),
            request: &self.request,
            ledger: &self.ledger,
            budget: self.budget(),
            max_tokens: self.config.options.max_tokens,
        }
    }

    /// Makes the next request fit the window minus the reply's share, through the compaction
    /// ladder (`compaction.rs`) when it passed the trigger; never lets a prompt through that
    /// does not fit. Returns `true` if cancelled meanwhile.
    pub(super) async fn fit(
        &mut self,
        cancel: &CancellationToken,
        on_event: &mut OnEvent<'_>,
    ) -> Result<bool, AgentError> {
        let budget = self.budget();
        if !self.ledger.is_anchored() {
            // Nothing reported yet: the server's own count where it has a tokenizer endpoint
            // (once; a server without one is not asked again), else the heuristic.
            self.count_with_server().await;
        }
        // A count made after a compaction may show it did not go far enough: a second pass.
        for _ in 0..2 {
            match self.ladder().run(Mode::Auto, cancel, on_event).await {
                Outcome::Unchanged => break,
                Outcome::Cancelled => return Ok(true),
                Outcome::Overflow(detail) => return Err(AgentError::ContextOverflow { detail }),
                Outcome::Compacted(compacted) => {
                    self.apply_compaction(compacted, false, on_event).await;
                }
            }
        }
        if self.ledger.total() > budget.limit() {
            return Err(AgentError::ContextOverflow {
                detail: compaction::overflow_detail(
                    &self.request.messages,
                    &self.ledger,
                    budget,
                    "the conversation",
                ),
            });
        }
        Ok(false)
    }

    /// Refuses a message that could not fit even alone with the system prompt, before it
    /// enters the history (the session stays usable).
    pub(super) async fn check_fits_alone(
        &mut self,
        message: &ChatMessage,
    ) -> Result<(), AgentError> {
        let budget = self.budget();
        let system = self.request.messages.first().cloned();
        let alone: Vec<ChatMessage> = system.into_iter().chain([message.clone()]).collect();
        if self.ledger.prompt_cost(&alone) <= budget.limit() {
            return Ok(());
        }
        let mut request = ChatRequest::new(self.request.model.clone(), alone.clone());
        request.tools = self.request.tools.clone();
        if let Ok(Some(counted)) = self.provider.count_prompt_tokens(&request).await
            && counted <= budget.limit()
        {
            return Ok(());
        }
        Err(AgentError::ContextOverflow {
            detail: compaction::overflow_detail(&alone, &self.ledger, budget, "your message"),
        })
    }

    /// Asks the server to count the request as it stands (llama.cpp); anchors the ledger.
    /// Returns the count, if the server has a tokenizer endpoint.
    pub(super) async fn count_with_server(&mut self) -> Option<u32> {
        match self.provider.count_prompt_tokens(&self.request).await {
            Ok(Some(counted)) => {
                self.ledger.observe(self.request.messages.len(), counted);
                Some(counted)
            }
            Ok(None) => None,
            Err(error) => {
                tracing::debug!(%error, "could not count the prompt's tokens");
                None
            }
        }
    }

    /// Replaces the history by the ladder's result, records it and reports it.
    pub(super) async fn apply_compaction(
        &mut self,
        compacted: Compacted,
        requested: bool,
        on_event: &mut OnEvent<'_>,
    ) {
        let Compacted {
            messages,
            step,
            messages_compacted,
            tokens_before,
            tokens_after,
        } = compacted;
        self.request.messages = messages;
        self.ledger.rebuild(&self.request.messages);
        let counted = self.count_with_server().await;
        let tokens_after = counted.unwrap_or(tokens_after);
        let saved = self.session.append_compaction(
            step,
            &self.request.messages[1..],
            tokens_before,
            tokens_after,
        );
        self.note_session_error(saved, on_event);
        on_event(AgentEvent::ContextCompacted {
            step,
            requested,
            tokens_before,
            tokens_after,
            after_counted: counted.is_some(),
            messages_compacted,
        });
    }

    /// Why a reply ended with `length`: the output limit or a full context window, told
    /// apart by the server's counts where it gave them (both servers report `length` alike).
    pub(super) fn cut_reply_message(&self, usage: Option<&Usage>) -> String {
        let window = self.context_window;
        match (usage, self.config.options.max_tokens) {
            (Some(u), Some(max)) if u.completion_tokens >= max => format!(
                "the model's reply was cut at the output limit (max_tokens = {max}); raise it \
                 with --max-tokens or `max_tokens` in the config"
            ),
            (Some(u), _) if u.prompt_tokens.saturating_add(u.completion_tokens) >= window => {
                format!(
                    "the model's reply was cut: the context window ({window} tokens) is full; \
                     /compact or a larger context_window makes room"
                )
            }
            _ => format!(
                "the model's reply was cut: it reached the output limit (max_tokens) or the \
                 context window ({window} tokens)"
            ),
        }
    }

    /// Learns from the server's count of the request made of the first `sent` messages, and
    /// keeps it in the session for a later resume.
    pub(super) fn observe_usage(
        &mut self,
        sent: usize,
        prompt_tokens: u32,
        on_event: &mut OnEvent<'_>,
    ) {
        self.ledger.observe(sent, prompt_tokens);
        let stored = StoredUsage {
            messages: sent.saturating_sub(1),
            prompt_tokens,
            fingerprint: self.fingerprint(),
            model: self.config.model.clone(),
            calibration: self.ledger.calibration(),
            stale: false,
        };
        let saved = self.session.append_usage(&stored);
        self.note_session_error(saved, on_event);
    }

    /// Starts the ledger from the session's last server count, when it was made by the same
    /// model with the same system prompt and tools.
    pub(super) fn restore_calibration(&mut self) {
        let Some(stored) = self.session.stored_usage().cloned() else {
            return;
        };
        if stored.model != self.config.model {
            return;
        }
        self.ledger.restore(stored.calibration);
        if !stored.stale
            && stored.fingerprint == self.fingerprint()
            && stored.messages < self.request.messages.len()
        {
            self.ledger
                .observe(stored.messages + 1, stored.prompt_tokens);
        }
    }

    /// What a server count depends on besides the conversation.
    pub(super) fn fingerprint(&self) -> String {
        let system = self
            .request
            .messages
            .first()
            .map_or("", |m| m.content.as_str());
        let tools = serde_json::to_string(&self.request.tools).unwrap_or_default();
        tokens::fingerprint(&[&self.config.model, system, &tools])
    }
}
