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
//!
//! lightning-liquidity answers Ok and does nothing for an SCID it no longer knows (a sale it
//! pruned after the offer expired or across a restart, an SCID it retired after an error), so
//! such an HTLC would hang until LDK's own timeout: the dispatcher fails at once what it can
//! tell is dead, and `lsps2_sweep` fails what stays unanswered past the MPP timeout.

use std::str::FromStr;
use std::time::Duration;

use lightning_liquidity::lsps0::ser::LSPSDateTime;

use crate::error::Result;
use crate::io::{SqliteStore, JIT_EXPIRED, JIT_FAILED, JIT_SOLD};

/// Who decides an intercepted HTLC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InterceptOwner {
    /// A JIT channel sold over LSPS2: lightning-liquidity opens the channel and forwards.
    Lsps2,
    /// Nobody will forward it; failed back at once (the reason is for the log).
    Fail(&'static str),
    /// Anything else while the LightningRod role runs: queued for the application (it
    /// forwards its holds and fails unknown SCIDs).
    Application,
}

/// Whether an offer's `valid_until` (RFC 3339, as recorded at the sale) is past at `now`
/// (since the Unix epoch). A text that does not parse counts as past: nothing can honour it.
pub(crate) fn offer_expired(valid_until: &str, now: Duration) -> bool {
    match LSPSDateTime::from_str(valid_until) {
        Ok(t) => t.0.timestamp() < i64::try_from(now.as_secs()).unwrap_or(i64::MAX),
        Err(()) => true,
    }
}

/// The owner of an HTLC naming `scid` at `now`. `lsps2_on` says whether the LSPS2 service
/// runs, `application_on` whether the LightningRod role does (without it the application
/// only acknowledges intercepts, so they would hang). Err (the store cannot be read) means:
/// have LDK replay the event, guess nothing.
pub(crate) fn owner(
    store: &SqliteStore, scid: u64, lsps2_on: bool, application_on: bool, now: Duration,
) -> Result<InterceptOwner> {
    let Some(jit) = store.jit_by_scid(scid)? else {
        return Ok(if application_on {
            InterceptOwner::Application
        } else {
            InterceptOwner::Fail("not a JIT SCID and the LightningRod role is off")
        });
    };
    Ok(if !lsps2_on {
        InterceptOwner::Fail("LSPS2 is off")
    } else if jit.state == JIT_FAILED {
        // lightning-liquidity retired the SCID (or the open failed): it would ignore the HTLC.
        InterceptOwner::Fail("the JIT channel failed")
    } else if jit.state == JIT_EXPIRED || (jit.state == JIT_SOLD && offer_expired(&jit.valid_until, now)) {
        // An unpaid sale past its offer is pruned by lightning-liquidity, or refused by it.
        InterceptOwner::Fail("the JIT offer expired")
    } else {
        InterceptOwner::Lsps2
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{JitChannelRecord, JitSale, JIT_OPENING};

    fn sale(scid: u64, valid_until: &str) -> JitChannelRecord {
        JitChannelRecord::sold(JitSale {
            scid,
            client_node_id: "02aa",
            user_channel_id: u128::from(scid) + 1000,
            payment_size_msat: Some(50_000_000),
            min_fee_msat: 1,
            proportional_ppm: 1,
            valid_until,
        })
    }

    /// 2029-01-01T00:00:00Z: before the test offers' 2030 expiry.
    const NOW: Duration = Duration::from_secs(1_861_920_000);

    #[test]
    fn a_jit_scid_goes_to_lsps2_only_while_the_service_runs_and_the_rest_to_the_application() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("node.sqlite")).unwrap();
        store.record_jit_sale(&sale(7, "2030-01-01T00:00:00+00:00")).unwrap();
        assert_eq!(owner(&store, 7, true, true, NOW).unwrap(), InterceptOwner::Lsps2);
        assert_eq!(owner(&store, 7, false, true, NOW).unwrap(), InterceptOwner::Fail("LSPS2 is off"));
        // A hold's SCID (or one nobody issued) is the application's, whatever LSPS2 does.
        assert_eq!(owner(&store, 8, true, true, NOW).unwrap(), InterceptOwner::Application);
        assert_eq!(owner(&store, 8, false, true, NOW).unwrap(), InterceptOwner::Application);
    }

    #[test]
    fn without_the_lightningrod_role_a_non_jit_intercept_is_failed_not_queued() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("node.sqlite")).unwrap();
        assert!(matches!(owner(&store, 8, true, false, NOW).unwrap(), InterceptOwner::Fail(_)));
    }

    #[test]
    fn an_expired_unpaid_sale_or_a_failed_one_is_failed_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("node.sqlite")).unwrap();
        store.record_jit_sale(&sale(1, "2028-12-31T23:59:59+00:00")).unwrap();
        store.record_jit_sale(&sale(2, "2030-01-01T00:00:00+00:00")).unwrap();
        store.record_jit_sale(&sale(3, "not a date")).unwrap();
        store.record_jit_sale(&sale(4, "2028-12-31T23:59:59+00:00")).unwrap();
        store.jit_update(2, JIT_FAILED, None, None).unwrap();
        // Past its offer but already opening: lightning-liquidity still owns the flow.
        store.jit_update(4, JIT_OPENING, None, None).unwrap();
        // Marked expired by the sweep: failed at once whatever the clock says.
        store.record_jit_sale(&sale(5, "2030-01-01T00:00:00+00:00")).unwrap();
        store.jit_update(5, JIT_EXPIRED, None, None).unwrap();
        assert_eq!(owner(&store, 5, true, true, NOW).unwrap(), InterceptOwner::Fail("the JIT offer expired"));
        assert_eq!(owner(&store, 1, true, true, NOW).unwrap(), InterceptOwner::Fail("the JIT offer expired"));
        assert_eq!(owner(&store, 2, true, true, NOW).unwrap(), InterceptOwner::Fail("the JIT channel failed"));
        assert_eq!(owner(&store, 3, true, true, NOW).unwrap(), InterceptOwner::Fail("the JIT offer expired"));
        assert_eq!(owner(&store, 4, true, true, NOW).unwrap(), InterceptOwner::Lsps2);
        // The same sale one second before its expiry is still served.
        let before = Duration::from_secs(1_861_919_999 - 1);
        assert_eq!(owner(&store, 1, true, true, before).unwrap(), InterceptOwner::Lsps2);
    }
}
