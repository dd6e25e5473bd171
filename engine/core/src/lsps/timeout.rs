//! HTLCs handed to lightning-liquidity that nobody answers. It keeps no timer of its own: an
//! HTLC it queued for an SCID it later forgot, or MPP parts that never add up, would wait for
//! LDK's own timeout (blocks away) while the payer's funds stay locked. The engine remembers
//! what it handed over and fails, after the LSPS2 MPP timeout, what LDK still holds while the
//! sale is still unpaid (`sold`) or dead (`failed`); once a channel is being opened, the HTLC
//! is lightning-liquidity's to forward or fail.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lightning::ln::channelmanager::InterceptId;

use crate::error::Result;
use crate::io::{SqliteStore, JIT_FAILED, JIT_SOLD};

/// bLIP-52's MPP timeout: the LSP fails the parts of a payment not complete within 90 s.
pub(crate) const MPP_TIMEOUT: Duration = Duration::from_secs(90);

/// The intercepted HTLCs handed to lightning-liquidity: intercept id -> (SCID, when).
#[derive(Default)]
pub(crate) struct HandedHtlcs(Mutex<HashMap<InterceptId, (u64, Instant)>>);

impl HandedHtlcs {
    pub(crate) fn handed(&self, id: InterceptId, scid: u64, at: Instant) {
        self.lock().entry(id).or_insert((scid, at));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<InterceptId, (u64, Instant)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    /// The HTLCs to fail at `now`: handed at least `MPP_TIMEOUT` ago, still held by LDK
    /// (`still_pending`), their sale `sold` or `failed`. They, and those LDK no longer holds,
    /// are forgotten; the others are kept for the next round. Err: the store cannot be read
    /// (nothing is forgotten).
    pub(crate) fn overdue(
        &self, store: &SqliteStore, now: Instant, still_pending: impl Fn(&InterceptId) -> bool,
    ) -> Result<Vec<InterceptId>> {
        let due: Vec<(InterceptId, u64)> = self
            .lock()
            .iter()
            .filter(|(_, (_, at))| now.saturating_duration_since(*at) >= MPP_TIMEOUT)
            .map(|(id, (scid, _))| (*id, *scid))
            .collect();
        let (mut fail, mut forget) = (Vec::new(), Vec::new());
        for (id, scid) in due {
            if !still_pending(&id) {
                forget.push(id);
                continue;
            }
            let state = store.jit_by_scid(scid)?.map(|j| j.state);
            // No row cannot happen (the dispatcher found one); fail rather than hold for ever.
            if state.as_deref().is_none_or(|s| s == JIT_SOLD || s == JIT_FAILED) {
                fail.push(id);
            }
        }
        let mut map = self.lock();
        for id in forget.iter().chain(&fail) {
            map.remove(id);
        }
        Ok(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{JitChannelRecord, JIT_OPENING};

    fn sale(scid: u64) -> JitChannelRecord {
        JitChannelRecord {
            scid,
            client_node_id: "02aa".into(),
            user_channel_id: u128::from(scid),
            payment_size_msat: None,
            min_fee_msat: 1,
            proportional_ppm: 1,
            valid_until: "2030-01-01T00:00:00+00:00".into(),
            state: JIT_SOLD.into(),
            channel_id: None,
            opening_fee_msat: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn unanswered_htlcs_of_unpaid_or_failed_sales_are_failed_after_the_mpp_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("node.sqlite")).unwrap();
        for scid in 1..=3 {
            store.record_jit_sale(&sale(scid)).unwrap();
        }
        store.jit_update(2, JIT_FAILED, None, None).unwrap();
        store.jit_update(3, JIT_OPENING, None, None).unwrap();
        let handed = HandedHtlcs::default();
        let t0 = Instant::now();
        let (sold, failed, opening, gone) =
            (InterceptId([1; 32]), InterceptId([2; 32]), InterceptId([3; 32]), InterceptId([4; 32]));
        handed.handed(sold, 1, t0);
        handed.handed(failed, 2, t0);
        handed.handed(opening, 3, t0);
        handed.handed(gone, 1, t0);
        let pending = |id: &InterceptId| *id != gone;
        // Before the timeout nothing is failed, nothing forgotten.
        assert!(handed.overdue(&store, t0 + Duration::from_secs(89), pending).unwrap().is_empty());
        assert_eq!(handed.len(), 4);
        let mut due = handed.overdue(&store, t0 + MPP_TIMEOUT, pending).unwrap();
        due.sort_by_key(|id| id.0);
        assert_eq!(due, vec![sold, failed]);
        // The one LDK settled is forgotten; the opening one waits for lightning-liquidity.
        assert_eq!(handed.len(), 1);
        assert!(handed.overdue(&store, t0 + MPP_TIMEOUT * 2, pending).unwrap().is_empty());
        store.jit_update(3, JIT_FAILED, None, None).unwrap();
        assert_eq!(handed.overdue(&store, t0 + MPP_TIMEOUT * 2, pending).unwrap(), vec![opening]);
        assert_eq!(handed.len(), 0);
    }
}
