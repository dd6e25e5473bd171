//! HTLCs handed to lightning-liquidity that nobody answers. It keeps no timer of its own: an
//! HTLC it queued for an SCID it later forgot, or MPP parts that never add up, would wait for
//! LDK's own timeout (blocks away) while the payer's funds stay locked. The engine remembers
//! what it handed over and, after the LSPS2 MPP timeout, gives up the whole sale while it is
//! unopened (`sold`, `expired`) or dead (`failed`): lightning-liquidity counts every part in
//! its payment queue and has no call to drop one, so single parts are never failed behind its
//! back (a retried MPP would then open the channel short of a part). Once a channel is being
//! opened, the HTLCs are lightning-liquidity's to forward or fail.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lightning::ln::channelmanager::InterceptId;

use crate::error::Result;
use crate::io::{JitChannelRecord, SqliteStore, JIT_EXPIRED, JIT_FAILED, JIT_SOLD};

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

    /// The sales to give up at `now`: those with an HTLC handed at least `MPP_TIMEOUT` ago
    /// and still held by LDK (`still_pending`), the sale unopened or dead, each with all its
    /// handed HTLCs LDK still holds. Those HTLCs, and the ones LDK no longer holds, are
    /// forgotten; the others are kept for the next round. Err: the store cannot be read
    /// (nothing is forgotten).
    pub(crate) fn overdue(
        &self, store: &SqliteStore, now: Instant, still_pending: impl Fn(&InterceptId) -> bool,
    ) -> Result<Vec<Overdue>> {
        let (mut due_scids, mut forget) = (Vec::new(), Vec::new());
        for (id, (scid, at)) in self.lock().iter() {
            if !still_pending(id) {
                forget.push(*id);
            } else if now.saturating_duration_since(*at) >= MPP_TIMEOUT && !due_scids.contains(scid) {
                due_scids.push(*scid);
            }
        }
        let mut out = Vec::new();
        for scid in due_scids {
            let sale = store.jit_by_scid(scid)?;
            // No row cannot happen (the dispatcher found one); give up rather than hold for ever.
            if sale.as_ref().is_none_or(|j| [JIT_SOLD, JIT_EXPIRED, JIT_FAILED].contains(&j.state.as_str())) {
                out.push(Overdue { scid, sale, htlcs: Vec::new() });
            }
        }
        let mut map = self.lock();
        for id in &forget {
            map.remove(id);
        }
        for o in &mut out {
            o.htlcs = map.iter().filter(|(_, (scid, _))| *scid == o.scid).map(|(id, _)| *id).collect();
            o.htlcs.sort_by_key(|id| id.0);
            for id in &o.htlcs {
                map.remove(id);
            }
        }
        Ok(out)
    }
}

/// One sale the sweep gives up: its SCID, its row (None: none, which cannot happen) and every
/// HTLC handed for it that LDK still held.
#[derive(Debug, PartialEq)]
pub(crate) struct Overdue {
    pub(crate) scid: u64,
    pub(crate) sale: Option<JitChannelRecord>,
    pub(crate) htlcs: Vec<InterceptId>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::JIT_OPENING;

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
            channel_sat: None,
            skimmed_msat: 0,
        }
    }

    #[test]
    fn an_unopened_or_dead_sale_is_given_up_whole_after_the_mpp_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("node.sqlite")).unwrap();
        for scid in 1..=4 {
            store.record_jit_sale(&sale(scid)).unwrap();
        }
        store.jit_update(2, JIT_FAILED, None, None).unwrap();
        store.jit_update(3, JIT_OPENING, None, None).unwrap();
        store.jit_update(4, JIT_EXPIRED, None, None).unwrap();
        let handed = HandedHtlcs::default();
        let t0 = Instant::now();
        let id = |n: u8| InterceptId([n; 32]);
        handed.handed(id(1), 1, t0);
        handed.handed(id(2), 2, t0);
        handed.handed(id(3), 3, t0);
        handed.handed(id(4), 1, t0);
        handed.handed(id(6), 4, t0);
        // A later part of sale 1, not yet 90 s old: it goes with the sale all the same.
        handed.handed(id(5), 1, t0 + Duration::from_secs(60));
        let gone = id(4);
        let pending = |i: &InterceptId| *i != gone;
        // Before the timeout nothing is given up; what LDK settled is forgotten.
        assert!(handed.overdue(&store, t0 + Duration::from_secs(89), pending).unwrap().is_empty());
        assert_eq!(handed.len(), 5);
        let mut due = handed.overdue(&store, t0 + MPP_TIMEOUT, pending).unwrap();
        due.sort_by_key(|o| o.scid);
        let got: Vec<(u64, Option<String>, Vec<InterceptId>)> =
            due.into_iter().map(|o| (o.scid, o.sale.map(|s| s.state), o.htlcs)).collect();
        assert_eq!(
            got,
            vec![
                (1, Some(JIT_SOLD.into()), vec![id(1), id(5)]),
                (2, Some(JIT_FAILED.into()), vec![id(2)]),
                (4, Some(JIT_EXPIRED.into()), vec![id(6)]),
            ]
        );
        // The opening one waits for lightning-liquidity.
        assert_eq!(handed.len(), 1);
        assert!(handed.overdue(&store, t0 + MPP_TIMEOUT * 2, pending).unwrap().is_empty());
        store.jit_update(3, JIT_FAILED, None, None).unwrap();
        let due = handed.overdue(&store, t0 + MPP_TIMEOUT * 2, pending).unwrap();
        assert_eq!(due.iter().map(|o| (o.scid, o.htlcs.clone())).collect::<Vec<_>>(), vec![(3, vec![id(3)])]);
        assert_eq!(handed.len(), 0);
    }
}
