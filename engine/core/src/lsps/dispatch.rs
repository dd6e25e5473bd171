//! The one place an intercepted HTLC is assigned an owner.
//!
//! Intercept SCIDs all come from `ChannelManager::get_intercept_scid`, for two users: the
//! LightningRod role (Python) asks for one per hold, the LSPS2 service (here, in Rust) asks for
//! one per `lsps2.buy`. LDK reports every HTLC naming any of them as `HTLCIntercepted` and
//! cannot tell them apart, so the engine does: an SCID it sold as a JIT channel (recorded in
//! `jit_channels` before the client heard of it) belongs to LSPS2 and is handled in Rust,
//! never queued, so the Python role never sees it (and never fails it as unknown at start-up
//! reconciliation); everything else is queued to the application, whose role forwards its
//! holds and fails the rest, as before.

use crate::error::Result;
use crate::io::SqliteStore;

/// Who decides an intercepted HTLC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InterceptOwner {
    /// A JIT channel sold over LSPS2: lightning-liquidity opens the channel and forwards.
    Lsps2,
    /// A JIT SCID while the LSPS2 service is off (the operator turned it off after selling):
    /// nobody can open the channel, so the HTLC is failed back at once.
    FailJit,
    /// Anything else: queued for the application (LightningRod holds; unknown SCIDs are failed
    /// there).
    Application,
}

/// The owner of an HTLC naming `scid`; `lsps2_on` says whether the LSPS2 service runs. Err
/// (the store cannot be read) means: have LDK replay the event, guess nothing.
pub(crate) fn owner(store: &SqliteStore, scid: u64, lsps2_on: bool) -> Result<InterceptOwner> {
    let sold_as_jit = store.jit_by_scid(scid)?.is_some();
    Ok(match (sold_as_jit, lsps2_on) {
        (true, true) => InterceptOwner::Lsps2,
        (true, false) => InterceptOwner::FailJit,
        (false, _) => InterceptOwner::Application,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{JitChannelRecord, JIT_SOLD};

    #[test]
    fn a_jit_scid_goes_to_lsps2_only_while_the_service_runs_and_the_rest_to_the_application() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("node.sqlite")).unwrap();
        store
            .record_jit_sale(&JitChannelRecord {
                scid: 7,
                client_node_id: "02aa".into(),
                user_channel_id: 99,
                payment_size_msat: Some(50_000_000),
                min_fee_msat: 1,
                proportional_ppm: 1,
                valid_until: "2030-01-01T00:00:00+00:00".into(),
                state: JIT_SOLD.into(),
                channel_id: None,
                opening_fee_msat: None,
                created_at: 0,
                updated_at: 0,
            })
            .unwrap();
        assert_eq!(owner(&store, 7, true).unwrap(), InterceptOwner::Lsps2);
        assert_eq!(owner(&store, 7, false).unwrap(), InterceptOwner::FailJit);
        // A hold's SCID (or one nobody issued) is the application's, whatever LSPS2 does.
        assert_eq!(owner(&store, 8, true).unwrap(), InterceptOwner::Application);
        assert_eq!(owner(&store, 8, false).unwrap(), InterceptOwner::Application);
    }
}
