//! The node's long-running tasks: accepting peers, periodic chain sync, reconnecting channel
//! peers, requested dials, the node announcement, the optional immediate-forward pump, and
//! LDK's background processor. Each ends when the stop signal changes.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lightning::events::Event;
use lightning::ln::msgs::SocketAddress;
use lightning::util::logger::Level;
use lightning_background_processor::{process_events_async_with_kv_store_sync, GossipSync};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;

use crate::connection::{DialRequest, DIALS_IN_FLIGHT};
use crate::node::Core;
use crate::types::{GossipSync as P2PGossip, SharedScorer};

pub(crate) type Stop = watch::Receiver<bool>;

/// Inbound Lightning connections.
pub(crate) fn accept_peers(core: &Arc<Core>, listener: tokio::net::TcpListener, mut stop: Stop) -> JoinHandle<()> {
    let pm = Arc::clone(&core.peer_manager);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                accepted = listener.accept() => {
                    if let Ok((stream, _)) = accepted {
                        if let Ok(std_stream) = crate::connection::no_delay(stream).into_std() {
                            tokio::spawn(lightning_net_tokio::setup_inbound(Arc::clone(&pm), std_stream));
                        }
                    }
                }
            }
        }
    })
}

/// Chain sync every `sync_interval_secs`; a failure is logged and retried on the next round.
pub(crate) fn sync_periodically(core: &Arc<Core>, mut stop: Stop) -> JoinHandle<()> {
    let core = Arc::clone(core);
    let every = Duration::from_secs(core.config.options.sync_interval_secs.max(1));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(every) => {
                    if let Err(e) = core.sync().await {
                        core.logger.engine(Level::Warn, format!("background sync failed: {e}"));
                    }
                }
            }
        }
    })
}

/// Redial channel peers whose address we know; a channel is useless while its peer is away.
pub(crate) fn reconnect_channel_peers(core: &Arc<Core>, mut stop: Stop) -> JoinHandle<()> {
    let core = Arc::clone(core);
    tokio::spawn(async move {
        loop {
            core.reconnect_channel_peers().await;
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    })
}

/// The liquidity manager's events (LSPS2 `get_info`, `buy`, open a channel), one at a time:
/// lightning-liquidity keeps them in its persisted queue until taken.
pub(crate) fn liquidity_events(core: &Arc<Core>, mut stop: Stop) -> JoinHandle<()> {
    let core = Arc::clone(core);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                event = core.liquidity.next_event_async() => core.handle_liquidity_event(event, &stop).await,
            }
        }
    })
}

/// The LSPS2 housekeeping every 10 s (see `Core::lsps2_sweep`); while LSPS2 is off, only
/// HTLCs handed to it before a restart are failed once overdue.
pub(crate) fn lsps2_sweep(core: &Arc<Core>, mut stop: Stop) -> JoinHandle<()> {
    let core = Arc::clone(core);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(Duration::from_secs(10)) => {
                    core.lsps2_sweep().await;
                    core.lsps1_sweep();
                }
            }
        }
    })
}

/// Dials LDK asked for (`ConnectionNeeded`), a few at a time, each with a deadline; a slow or
/// hostile address delays only its own dial, never event handling.
pub(crate) fn dial_requested(
    core: &Arc<Core>, mut requests: mpsc::Receiver<DialRequest>, mut stop: Stop,
) -> JoinHandle<()> {
    let core = Arc::clone(core);
    let slots = Arc::new(Semaphore::new(DIALS_IN_FLIGHT));
    tokio::spawn(async move {
        loop {
            let (node_id, addresses) = tokio::select! {
                _ = stop.changed() => return,
                r = requests.recv() => match r { Some(r) => r, None => return },
            };
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else { return };
            let core = Arc::clone(&core);
            tokio::spawn(async move {
                core.dial_requested(node_id, addresses).await;
                drop(slot);
            });
        }
    })
}

/// How often the announcer looks for a newly usable public channel.
const ANNOUNCE_CHECK: Duration = Duration::from_secs(5);
/// Re-announcement period once announced, as ldk-node does: peers prune node announcements
/// older than two weeks, and an hourly one costs nothing.
const ANNOUNCE_EVERY: Duration = Duration::from_secs(3600);
/// LDK re-broadcasts a public channel's announcement every this many blocks, at the heights
/// congruent to its funding confirmation height (channelmanager.rs, `rebroadcast_announcement`)...
const REBROADCAST_EVERY: u32 = 6;
/// ...meaning to do so during the channel's first week (LDK's test of this bound as written,
/// `funding_conf_height < height + 1008`, always holds: it re-broadcasts for ever). We follow
/// only during the first week: after it, the hourly announcement is enough.
const REBROADCAST_WINDOW: u32 = 1008;

/// What the announcer knows at one check.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AnnounceCheck {
    /// Public channels usable now that were usable at the previous check too.
    pub(crate) ready: usize,
    /// How many of those there were at our last broadcast.
    pub(crate) announced: usize,
    /// Time since our last broadcast; None if we have not broadcast since the start.
    pub(crate) since_last: Option<Duration>,
    /// Best block height now, and at our last broadcast.
    pub(crate) height: u32,
    pub(crate) last_height: u32,
    /// Funding confirmation height of our youngest ready public channel, if it is younger
    /// than `REBROADCAST_WINDOW` blocks.
    pub(crate) young_since: Option<u32>,
}

/// Heights in `..=height` at which LDK re-broadcast the announcement of a channel confirmed at
/// `conf` (counting `conf` itself), within the window we follow.
fn rebroadcasts_up_to(conf: u32, height: u32) -> u32 {
    if height < conf {
        return 0;
    }
    (height.min(conf + REBROADCAST_WINDOW - 1) - conf) / REBROADCAST_EVERY + 1
}

/// Whether to broadcast our node announcement at this check.
///
/// A peer drops a node announcement from a node none of whose channels it knows, and a
/// channel's announcement may reach a peer only with LDK's re-broadcast (the first one goes out
/// when the announcement signatures are exchanged, and only from one side). So on top of the
/// first announcement and the hourly one, we announce after each of LDK's re-broadcasts of our
/// youngest public channel: on the same blocks, so ours follows the channel's on every peer
/// connection. Once per 6 blocks for a week after a channel opens: a few hundred bytes per peer.
pub(crate) fn announce_due(c: &AnnounceCheck) -> bool {
    if c.ready == 0 {
        return false;
    }
    let Some(since_last) = c.since_last else { return true };
    if c.ready > c.announced || since_last >= ANNOUNCE_EVERY {
        return true;
    }
    c.young_since.is_some_and(|conf| rebroadcasts_up_to(conf, c.height) > rebroadcasts_up_to(conf, c.last_height))
}

/// Broadcast our node announcement with `addresses` (operator's `announce_addresses`). Peers
/// ignore it until they hold one of our channel announcements, and LDK sends a channel's
/// announcement only once it is usable with 6 confirmations; so we announce when a public
/// channel has been usable for a whole check (its channel announcement is out by then), again
/// whenever another one appears, after LDK's re-broadcasts of a young channel's announcement
/// (`announce_due`), and hourly.
pub(crate) fn announce_node(core: &Arc<Core>, addresses: Vec<SocketAddress>, mut stop: Stop) -> JoinHandle<()> {
    let core = Arc::clone(core);
    tokio::spawn(async move {
        let mut seen = 0usize;
        let mut check = AnnounceCheck::default();
        let mut last: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(ANNOUNCE_CHECK) => {}
            }
            let height = core.channel_manager.current_best_block().height;
            let channels = core.channel_manager.list_channels();
            let public: Vec<_> = channels.iter().filter(|c| c.is_announced && c.is_usable).collect();
            // `seen` is last check's count: a channel counts once it was usable then too.
            check.ready = public.len().min(seen);
            seen = public.len();
            // After a channel closes, the next new one must trigger an announcement again.
            check.announced = check.announced.min(check.ready);
            check.since_last = last.map(|t| t.elapsed());
            check.height = height;
            check.young_since = public
                .iter()
                .filter_map(|c| c.confirmations)
                .filter(|n| (1..REBROADCAST_WINDOW).contains(n))
                .min()
                .map(|n| height + 1 - n);
            if !announce_due(&check) {
                continue;
            }
            core.peer_manager.broadcast_node_announcement([0; 3], [0; 32], addresses.clone());
            check.announced = check.ready;
            check.last_height = height;
            last = Some(tokio::time::Instant::now());
            core.logger
                .engine(Level::Info, format!("node announcement broadcast with {} address(es)", addresses.len()));
        }
    })
}

/// Process pending forwards every 2 ms instead of waiting for LDK's randomised batch delay.
pub(crate) fn forward_immediately(core: &Arc<Core>, mut stop: Stop) -> JoinHandle<()> {
    let cm = Arc::clone(&core.channel_manager);
    let pm = Arc::clone(&core.peer_manager);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(2));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = tick.tick() => {
                    if cm.needs_pending_htlc_processing() {
                        cm.process_pending_htlc_forwards();
                        pm.process_events();
                    }
                }
            }
        }
    })
}

/// LDK's background processor: events, persistence of manager/graph/scorer, timers.
pub(crate) fn background_processor(
    core: &Arc<Core>, gossip_sync: Arc<P2PGossip>, scorer: SharedScorer, stop: Stop,
) -> JoinHandle<Result<(), lightning::io::Error>> {
    let core_ev = Arc::clone(core);
    let handler = move |event: Event| {
        let core = Arc::clone(&core_ev);
        async move { core.handle_ldk_event(event).await }
    };
    tokio::spawn(process_events_async_with_kv_store_sync(
        Arc::clone(&core.store),
        handler,
        Arc::clone(&core.chain_monitor),
        Arc::clone(&core.channel_manager),
        Some(Arc::clone(&core.onion_messenger)),
        GossipSync::p2p(gossip_sync),
        Arc::clone(&core.peer_manager),
        // Sends its queued LSPS messages and persists its state, like the other managers.
        Some(Arc::clone(&core.liquidity)),
        Some(Arc::clone(&core.sweeper)),
        Arc::clone(&core.logger),
        Some(scorer),
        move |d| {
            let mut rx = stop.clone();
            Box::pin(async move {
                tokio::select! {
                    _ = tokio::time::sleep(d) => false,
                    _ = rx.changed() => true,
                }
            })
        },
        false,
        || SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).ok(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Announced once at height 100 with one ready channel confirmed at 95.
    fn after_first(height: u32, since_last: Duration) -> AnnounceCheck {
        AnnounceCheck {
            ready: 1,
            announced: 1,
            since_last: Some(since_last),
            height,
            last_height: 100,
            young_since: Some(95),
        }
    }

    #[test]
    fn nothing_to_announce_without_a_ready_public_channel() {
        let c = AnnounceCheck { ready: 0, height: 500, young_since: Some(95), ..Default::default() };
        assert!(!announce_due(&c));
        assert!(!announce_due(&AnnounceCheck { ready: 0, since_last: Some(ANNOUNCE_EVERY * 2), ..c }));
    }

    #[test]
    fn first_ready_channel_and_each_new_one_announce() {
        assert!(announce_due(&AnnounceCheck { ready: 1, height: 100, ..Default::default() }));
        assert!(announce_due(&AnnounceCheck { ready: 2, ..after_first(100, Duration::from_secs(5)) }));
    }

    #[test]
    fn follows_ldk_rebroadcasts_of_a_young_channel() {
        let soon = Duration::from_secs(5);
        // LDK re-broadcasts the channel confirmed at 95 at 101, 107, ... (95 + 6k).
        assert!(!announce_due(&after_first(100, soon)), "same height: nothing new");
        assert!(announce_due(&after_first(101, soon)), "LDK re-broadcast at 101");
        assert!(announce_due(&after_first(106 + 1, soon)), "several blocks at once: once");
        let c = AnnounceCheck { last_height: 101, ..after_first(106, soon) };
        assert!(!announce_due(&c), "102..=106 hold no re-broadcast");
        assert!(announce_due(&AnnounceCheck { height: 107, ..c }));
    }

    #[test]
    fn stops_following_after_a_week_then_hourly_only() {
        let soon = Duration::from_secs(5);
        // The last re-broadcast we follow is at 95 + 1002 = 1097 (the window is 1008 blocks).
        let old = |height, last_height| AnnounceCheck { last_height, ..after_first(height, soon) };
        assert!(announce_due(&old(1097, 1096)));
        assert!(!announce_due(&old(1103, 1097)));
        assert!(!announce_due(&old(5000, 1097)));
        let old_channel = AnnounceCheck { young_since: None, ..old(5000, 4000) };
        assert!(!announce_due(&old_channel));
        assert!(announce_due(&AnnounceCheck { since_last: Some(ANNOUNCE_EVERY), ..old_channel }));
    }

    #[test]
    fn a_channel_confirmed_after_the_last_announcement_counts_from_its_confirmation() {
        let c = AnnounceCheck { last_height: 100, young_since: Some(103), ..after_first(102, Duration::from_secs(5)) };
        assert!(!announce_due(&c));
        assert!(announce_due(&AnnounceCheck { height: 103, ..c }));
    }
}
