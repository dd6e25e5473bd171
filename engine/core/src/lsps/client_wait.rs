//! An LSPS2 client offline when its JIT payment arrives. Without LSPS5 the payment is failed
//! back at once (nobody to open a channel to). With LSPS5 the LSP first has the client woken
//! (a `ClientWanted` event: the application pushes its LightningRod device if it has one, else
//! its webhooks get `lsps5.payment_incoming`, with the cooldowns of both) and waits up to `lsps5_wait_for_client_secs` (at most 60, well inside the 90 s MPP timeout
//! after which the sweep gives the sale up, and far below any HTLC's CLTV) for the client to
//! connect; then it opens the channel, or fails the payment back as before. The HTLCs stay
//! queued in lightning-liquidity meanwhile. Bounded: one waiting sale per client (a second is
//! failed at once) and `MAX_WAITING` in all; a stop ends the wait (the sweep fails the HTLCs
//! after a restart).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bitcoin::secp256k1::PublicKey;
use lightning::util::logger::Level;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::event::NodeEvent;
use crate::io::JIT_SOLD;
use crate::node::Core;

/// Sales waiting for their client, all clients together.
pub(crate) const MAX_WAITING: usize = 100;
/// The longest wait an operator may set.
pub(crate) const MAX_WAIT_SECS: u32 = 60;
/// How often a waiting sale looks for its client.
const POLL: Duration = Duration::from_millis(250);

/// The clients with a sale waiting for them.
#[derive(Default)]
pub(crate) struct WaitingClients(Mutex<HashSet<PublicKey>>);

impl WaitingClients {
    /// Take a waiting place for `client`; false: it has one already, or all are taken.
    pub(crate) fn reserve(&self, client: PublicKey) -> bool {
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        set.len() < MAX_WAITING && set.insert(client)
    }

    pub(crate) fn release(&self, client: PublicKey) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&client);
    }
}

/// What the OpenChannel event asked for.
#[derive(Clone, Copy)]
pub(crate) struct OpenRequest {
    pub client: PublicKey,
    pub amt_to_forward_msat: u64,
    pub opening_fee_msat: u64,
    pub user_channel_id: u128,
    pub scid: u64,
}

impl Core {
    /// The wait for an offline client, if LSPS5 runs with one set.
    fn client_wait(&self) -> Option<Duration> {
        let secs = self.config.options.lsps5_wait_for_client_secs;
        (secs > 0 && self.liquidity.lsps5_service_handler().is_some()).then(|| Duration::from_secs(u64::from(secs)))
    }

    /// `req`'s client is offline: wake it and wait for it in a task of its own (the liquidity
    /// events go on meanwhile), then open or fail back. False: no wait (off, or no place left):
    /// the caller fails the payment back now.
    pub(crate) fn wait_for_client(self: &Arc<Self>, req: OpenRequest, stop: &watch::Receiver<bool>) -> bool {
        let Some(wait) = self.client_wait() else { return false };
        let client = req.client;
        if !self.lsps2_waiting.reserve(client) {
            self.lsps2_log(Level::Info, format!("{client} already has a payment waiting for it (or too many wait)"));
            return false;
        }
        // The application wakes it one way, as for every other event: an apprise push to its
        // LightningRod device if it has one, else `lsps5.payment_incoming` to its webhooks.
        let wanted =
            NodeEvent::ClientWanted { client_node_id: client.to_string(), push_kind: "payment_incoming".into() };
        if let Err(e) = self.events.emit(wanted, None) {
            // The wait goes on: the client may come back by itself.
            self.lsps2_log(Level::Warn, format!("cannot ask for {client} to be woken: {e}"));
        }
        self.lsps2_log(
            Level::Info,
            format!(
                "{client} is offline at its JIT payment (scid {}): asked to be woken, waiting {}s",
                req.scid,
                wait.as_secs()
            ),
        );
        let core = Arc::clone(self);
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + wait;
            while core.peer_manager.peer_by_node_id(&client).is_none() && Instant::now() < deadline {
                if *stop.borrow() {
                    // The sweep fails the HTLCs after the restart.
                    return core.lsps2_waiting.release(client);
                }
                tokio::select! {
                    _ = stop.changed() => return core.lsps2_waiting.release(client),
                    _ = tokio::time::sleep(POLL) => {}
                }
            }
            core.lsps2_waiting.release(client);
            // The sweep gives a sale up 90 s after its first HTLC (MPP parts may have taken part
            // of that before the wait began): then it is not ours to open or fail any more.
            match core.store.jit_by_scid(req.scid) {
                Ok(Some(sale)) if sale.state == JIT_SOLD => {}
                Ok(_) => return core.lsps2_log(Level::Info, format!("scid {} was given up during the wait", req.scid)),
                Err(e) => return core.lsps2_log(Level::Error, format!("cannot read JIT scid {}: {e}", req.scid)),
            }
            // Connected: opens; still away: fails back, re-arming the sale, as without a wait.
            core.lsps2_open(req).await;
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use bitcoin::secp256k1::{Secp256k1, SecretKey};

    use super::*;

    #[test]
    fn one_wait_per_client_and_a_bounded_number_in_all() {
        let key = |n: u32| {
            let mut b = [3u8; 32];
            b[28..].copy_from_slice(&n.to_be_bytes());
            PublicKey::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&b).unwrap())
        };
        let w = WaitingClients::default();
        assert!(w.reserve(key(0)));
        assert!(!w.reserve(key(0)));
        for n in 1..MAX_WAITING as u32 {
            assert!(w.reserve(key(n)));
        }
        assert!(!w.reserve(key(1_000)));
        w.release(key(0));
        assert!(w.reserve(key(1_000)));
        assert!(!w.reserve(key(0)));
    }
}
