//! The consumer's side of the event queue: wait for, peek at and acknowledge events.

use crate::error::{Error, Result};
use crate::event::{NodeEvent, QueuedEvent};
use crate::model::OnionMessageStats;
use crate::node::Node;

use std::sync::atomic::Ordering;

fn decode(id: i64, body: &str) -> Result<QueuedEvent> {
    let event = serde_json::from_str::<NodeEvent>(body)
        .map_err(|e| Error::Storage(format!("queued event {id} cannot be decoded: {e}")))?;
    Ok(QueuedEvent { id, event })
}

impl Node {
    /// Wait for the oldest unacknowledged event. Calling again before `event_handled` returns
    /// the same event: delivery is at least once.
    pub async fn next_event(&self) -> Result<QueuedEvent> {
        let mut rx = self.core.events.seq.subscribe();
        loop {
            rx.borrow_and_update();
            if !self.is_running() {
                return Err(Error::NotRunning);
            }
            if let Some((id, _kind, body)) = self.core.store.first_event()? {
                return decode(id, &body);
            }
            if rx.changed().await.is_err() {
                return Err(Error::NotRunning);
            }
        }
    }

    /// The oldest unacknowledged event, without waiting.
    pub fn poll_event(&self) -> Result<Option<QueuedEvent>> {
        self.core.store.first_event()?.map(|(id, _kind, body)| decode(id, &body)).transpose()
    }

    /// Counters of the onion-message front door and the depth of both queue lanes.
    pub fn onion_message_stats(&self) -> Result<OnionMessageStats> {
        let c = &self.core.guard.counters;
        let (other, messages) = self.core.store.queue_depth()?;
        Ok(OnionMessageStats {
            accepted: c.accepted.load(Ordering::Relaxed),
            rate_limited: c.rate_limited.load(Ordering::Relaxed),
            forwarded: c.forwarded.load(Ordering::Relaxed),
            intercepted: c.intercepted.load(Ordering::Relaxed),
            undeliverable: c.undeliverable.load(Ordering::Relaxed),
            queue_refused: self.core.events.refused.load(Ordering::Relaxed),
            queued_messages: messages,
            queued_other: other,
        })
    }

    /// Acknowledge an event once its side effects are committed.
    pub fn event_handled(&self, id: i64) -> Result<()> {
        if self.core.store.remove_event(id)? {
            Ok(())
        } else {
            Err(Error::InvalidArgument(format!("no pending event with id {id} (already acknowledged?)")))
        }
    }
}
