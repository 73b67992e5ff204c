//! Turning a streamed HTTP body into reply events, and events into a whole reply.
//!
//! Each provider supplies a [`FrameParser`] for its wire format; [`event_stream`] drives it
//! over a response body with the idle timeout, and [`collect`] folds events into a
//! [`ChatResponse`].

use std::collections::VecDeque;

use futures::StreamExt;

use crate::provider::{ChatStream, ModelError, Result};
use crate::transport::Body;
use crate::types::{ChatMessage, ChatResponse, StreamEvent};

/// Turns the bytes of one reply into items, incrementally.
pub(crate) trait FrameParser: Send + 'static {
    /// What the stream yields.
    type Item: Send + 'static;

    /// Consumes a chunk of the body, appending the items it completes to `out`.
    fn feed(&mut self, bytes: &[u8], out: &mut VecDeque<Self::Item>) -> Result<()>;

    /// The body ended: flushes what is buffered; an error if the reply was incomplete.
    fn finish(&mut self, out: &mut VecDeque<Self::Item>) -> Result<()>;

    /// Whether the reply is complete (no more bytes need to be read).
    fn is_done(&self) -> bool;
}

struct Driver<P: FrameParser> {
    body: Body,
    parser: P,
    queue: VecDeque<P::Item>,
    /// An error to report once the items before it have been delivered.
    error: Option<ModelError>,
    finished: bool,
}

impl<P: FrameParser> Driver<P> {
    async fn next(&mut self) -> Option<Result<P::Item>> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Some(Ok(item));
            }
            if let Some(error) = self.error.take() {
                self.finished = true;
                return Some(Err(error));
            }
            if self.finished {
                return None;
            }
            if self.parser.is_done() {
                self.finished = true;
                continue;
            }
            match self.body.chunk().await {
                Ok(Some(bytes)) => {
                    if let Err(error) = self.parser.feed(&bytes, &mut self.queue) {
                        self.error = Some(error);
                    }
                }
                Ok(None) => {
                    if let Err(error) = self.parser.finish(&mut self.queue) {
                        self.error = Some(error);
                    }
                    // Queued items go out first, then any error, then the end.
                    self.finished = true;
                }
                Err(error) => self.error = Some(error),
            }
        }
    }
}

/// Streams the items `parser` makes of `body`, reading each chunk within the idle timeout.
pub(crate) fn item_stream<P: FrameParser>(
    body: Body,
    parser: P,
) -> std::pin::Pin<Box<dyn futures::Stream<Item = Result<P::Item>> + Send>> {
    let driver = Driver {
        body,
        parser,
        queue: VecDeque::new(),
        error: None,
        finished: false,
    };
    Box::pin(futures::stream::unfold(driver, |mut driver| async move {
        let item = driver.next().await?;
        Some((item, driver))
    }))
}

/// Streams the reply events `parser` makes of `body`.
pub(crate) fn event_stream<P: FrameParser<Item = StreamEvent>>(
    body: Body,
    parser: P,
) -> ChatStream {
    item_stream(body, parser)
}

/// Reads a whole body through `parser`, returning every item (used for non-streamed
/// replies, which share the streamed format's parser).
pub(crate) async fn parse_all<P: FrameParser>(
    mut body: Body,
    mut parser: P,
) -> Result<Vec<P::Item>> {
    let mut items = VecDeque::new();
    while let Some(bytes) = body.chunk().await? {
        parser.feed(&bytes, &mut items)?;
    }
    parser.finish(&mut items)?;
    Ok(items.into())
}

/// Folds a stream of reply events into one [`ChatResponse`] for `model`.
///
/// Text and thinking deltas are concatenated (the thinking into
/// [`ChatMessage::thinking`](crate::types::ChatMessage::thinking)), tool calls kept in order.
/// The stream must end with [`StreamEvent::Done`], else the reply counts as interrupted.
pub async fn collect(model: &str, mut stream: ChatStream) -> Result<ChatResponse> {
    let mut collector = Collector::default();
    while let Some(event) = stream.next().await {
        collector.push(event?);
    }
    collector.finish(model)
}

/// Accumulates events into a response.
#[derive(Default)]
pub(crate) struct Collector {
    text: String,
    thinking: String,
    calls: Vec<crate::types::ToolCall>,
    done: Option<(crate::types::FinishReason, Option<crate::types::Usage>)>,
}

impl Collector {
    pub(crate) fn push(&mut self, event: StreamEvent) {
        match event {
            StreamEvent::TextDelta { text } => self.text.push_str(&text),
            StreamEvent::ThinkingDelta { text } => self.thinking.push_str(&text),
            StreamEvent::ToolCall { call } => self.calls.push(call),
            StreamEvent::Done {
                finish_reason,
                usage,
            } => self.done = Some((finish_reason, usage)),
        }
    }

    pub(crate) fn finish(self, model: &str) -> Result<ChatResponse> {
        let Some((finish_reason, usage)) = self.done else {
            return Err(ModelError::Interrupted {
                detail: "the reply ended without its final message".into(),
            });
        };
        Ok(ChatResponse {
            model: model.to_owned(),
            message: ChatMessage::assistant_with_tool_calls(self.text, self.calls)
                .with_thinking(self.thinking),
            finish_reason,
            usage,
        })
    }
}
