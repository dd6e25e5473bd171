//! The node's long-running tasks: accepting peers, periodic chain sync, reconnecting channel
//! peers, requested dials, the node announcement, the optional immediate-forward pump, and
//! LDK's background processor. Each ends when the stop signal changes.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lightning::events::Event;
use lightning::ln::msgs::SocketAddress;
use lightning::util::logger::Level;
use lightning_background_processor::{process_events_async_with_kv_store_sync, GossipSync, NO_LIQUIDITY_MANAGER};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;

use crate::connection::{DialRequest, DIALS_IN_FLIGHT};
use crate::node::Core;
use crate::types::{GossipSync as P2PGossip, SharedScorer};

type Stop = watch::Receiver<bool>;

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

/// Broadcast our node announcement with `addresses` (operator's `announce_addresses`). Peers
/// ignore it until they hold one of our channel announcements, and LDK sends a channel's
/// announcement only once it is usable with 6 confirmations; so we announce when a public
/// channel has been usable for a whole check (its channel announcement is out by then), again
/// whenever another one appears, and hourly.
pub(crate) fn announce_node(core: &Arc<Core>, addresses: Vec<SocketAddress>, mut stop: Stop) -> JoinHandle<()> {
    let core = Arc::clone(core);
    tokio::spawn(async move {
        let mut seen = 0usize;
        let mut announced = 0usize;
        let mut last: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(ANNOUNCE_CHECK) => {}
            }
            let public = core.channel_manager.list_channels().iter().filter(|c| c.is_announced && c.is_usable).count();
            let due = last.is_none_or(|t| t.elapsed() >= ANNOUNCE_EVERY);
            // `seen` is last check's count: a channel counts once it was usable then too.
            let ready = public.min(seen);
            seen = public;
            // After a channel closes, the next new one must trigger an announcement again.
            announced = announced.min(ready);
            if ready == 0 || (ready <= announced && !due) {
                continue;
            }
            core.peer_manager.broadcast_node_announcement([0; 3], [0; 32], addresses.clone());
            announced = ready;
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
        NO_LIQUIDITY_MANAGER,
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
