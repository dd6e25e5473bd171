//! The consumer's side of the event queue: wait for, peek at and acknowledge events.

use crate::error::{Error, Result};
use crate::event::{NodeEvent, QueuedEvent};
use crate::node::Node;

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

    /// Acknowledge an event once its side effects are committed.
    pub fn event_handled(&self, id: i64) -> Result<()> {
        if self.core.store.remove_event(id)? {
            Ok(())
        } else {
            Err(Error::InvalidArgument(format!("no pending event with id {id} (already acknowledged?)")))
        }
    }
}
