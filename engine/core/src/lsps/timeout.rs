//! HTLCs handed to lightning-liquidity that nobody answers. It keeps no timer of its own: an
//! HTLC it queued for an SCID it later forgot, or MPP parts that never add up, would wait for
//! LDK's own timeout (blocks away) while the payer's funds stay locked. The engine remembers
//! what it handed over (durably, in `jit_htlcs`: LDK never hands a handled intercept out again,
//! so after a restart that record is all there is) and, after the LSPS2 MPP timeout, gives up
//! the whole sale while it is unopened (`sold`, `expired`) or dead (`failed`):
//! lightning-liquidity counts every part in its payment queue and has no call to drop one, so
//! single parts are never failed behind its back (a retried MPP would then open the channel
//! short of a part). Once a channel is being opened, the HTLCs are lightning-liquidity's to
//! forward or fail.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lightning::ln::channelmanager::InterceptId;

use crate::error::Result;
use crate::io::{now_secs, JitChannelRecord, SqliteStore, JIT_EXPIRED, JIT_FAILED, JIT_SOLD};
use crate::parse::{hexs, parse_hex32};

/// bLIP-52's MPP timeout: the LSP fails the parts of a payment not complete within 90 s.
pub(crate) const MPP_TIMEOUT: Duration = Duration::from_secs(90);

/// The intercepted HTLCs handed to lightning-liquidity: intercept id -> (SCID, when), the
/// clock in memory, the record in the store.
#[derive(Default)]
pub(crate) struct HandedHtlcs(Mutex<HashMap<InterceptId, (u64, Instant)>>);

impl HandedHtlcs {
    /// The HTLCs recorded as handed over before a stop, their timeout starting again at `now`
    /// (the node was away for an unknown part of it; LDK still holds them). A record that does
    /// not parse (a hand edit) is dropped.
    pub(crate) fn load(store: &SqliteStore, now: Instant) -> Result<Self> {
        let mut map = HashMap::new();
        for (id, scid) in store.jit_htlcs()? {
            if let Ok(bytes) = parse_hex32(&id, "intercept id") {
                map.insert(InterceptId(bytes), (scid, now));
            }
        }
        Ok(Self(Mutex::new(map)))
    }

    /// Remember HTLC `id` for `scid` as handed over at `at`: recorded in the store first (Err:
    /// nothing remembered; do not hand it over). Remembered again (a replayed event), it keeps
    /// its first time.
    pub(crate) fn handed(&self, store: &SqliteStore, id: InterceptId, scid: u64, at: Instant) -> Result<()> {
        store.jit_htlc_handed(&hexs(&id.0), scid, now_secs())?;
        self.lock().entry(id).or_insert((scid, at));
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<InterceptId, (u64, Instant)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    /// The sales to give up at `now`: those with an HTLC handed at least `MPP_TIMEOUT` ago
    /// and still held by LDK (`still_pending`), the sale unopened or dead (any sale when
    /// `any_state`: LSPS2 is off, nobody else will answer), each with all its handed HTLCs LDK
    /// still holds. Those HTLCs are forgotten in memory; their records go once the caller gave
    /// the sale up (`resolved`), so a stop in between finds them again. The ones LDK no longer
    /// holds are forgotten, records and all; the others are kept for the next round. Err: the
    /// store cannot be read or written (nothing is forgotten).
    pub(crate) fn overdue(
        &self, store: &SqliteStore, now: Instant, any_state: bool, still_pending: impl Fn(&InterceptId) -> bool,
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
            // No row: a sale swept long ago, or none (the dispatcher found one): give up rather
            // than hold for ever.
            let dead = |j: &JitChannelRecord| [JIT_SOLD, JIT_EXPIRED, JIT_FAILED].contains(&j.state.as_str());
            if any_state || sale.as_ref().is_none_or(dead) {
                out.push(Overdue { scid, sale, htlcs: Vec::new() });
            }
        }
        store.jit_htlcs_forget(&forget.iter().map(|id| hexs(&id.0)).collect::<Vec<_>>())?;
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

    /// Forget the records of HTLCs whose sale was given up (`overdue` forgot them in memory).
    pub(crate) fn resolved(&self, store: &SqliteStore, ids: &[InterceptId]) -> Result<()> {
        store.jit_htlcs_forget(&ids.iter().map(|id| hexs(&id.0)).collect::<Vec<_>>())
    }
}

/// One sale the sweep gives up: its SCID, its row (None: none, swept since) and every HTLC
/// handed for it that LDK still held.
#[derive(Debug, PartialEq)]
pub(crate) struct Overdue {
    pub(crate) scid: u64,
    pub(crate) sale: Option<JitChannelRecord>,
    pub(crate) htlcs: Vec<InterceptId>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{JitSale, JIT_OPENING};

    pub(super) fn sale(scid: u64) -> JitChannelRecord {
        JitChannelRecord::sold(JitSale {
            scid,
            client_node_id: "02aa",
            user_channel_id: u128::from(scid),
            payment_size_msat: None,
            min_fee_msat: 1,
            proportional_ppm: 1,
            valid_until: "2030-01-01T00:00:00+00:00",
        })
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
        handed.handed(&store, id(1), 1, t0).unwrap();
        handed.handed(&store, id(2), 2, t0).unwrap();
        handed.handed(&store, id(3), 3, t0).unwrap();
        handed.handed(&store, id(4), 1, t0).unwrap();
        handed.handed(&store, id(6), 4, t0).unwrap();
        // A later part of sale 1, not yet 90 s old: it goes with the sale all the same.
        handed.handed(&store, id(5), 1, t0 + Duration::from_secs(60)).unwrap();
        let gone = id(4);
        let pending = |i: &InterceptId| *i != gone;
        // Before the timeout nothing is given up; what LDK settled is forgotten.
        assert!(handed.overdue(&store, t0 + Duration::from_secs(89), false, pending).unwrap().is_empty());
        assert_eq!(handed.len(), 5);
        let mut due = handed.overdue(&store, t0 + MPP_TIMEOUT, false, pending).unwrap();
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
        assert!(handed.overdue(&store, t0 + MPP_TIMEOUT * 2, false, pending).unwrap().is_empty());
        store.jit_update(3, JIT_FAILED, None, None).unwrap();
        let due = handed.overdue(&store, t0 + MPP_TIMEOUT * 2, false, pending).unwrap();
        assert_eq!(due.iter().map(|o| (o.scid, o.htlcs.clone())).collect::<Vec<_>>(), vec![(3, vec![id(3)])]);
        assert_eq!(handed.len(), 0);
    }
}

#[cfg(test)]
mod restart_tests {
    use super::*;
    use crate::io::JIT_OPENING;

    #[test]
    fn handed_htlcs_outlive_a_restart_and_their_timeout_starts_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("node.sqlite")).unwrap();
        for scid in 1..=2 {
            let mut sale = tests::sale(scid);
            sale.user_channel_id += 100;
            store.record_jit_sale(&sale).unwrap();
        }
        store.jit_update(2, JIT_OPENING, None, None).unwrap();
        let id = |n: u8| InterceptId([n; 32]);
        let t0 = Instant::now();
        let before = HandedHtlcs::default();
        before.handed(&store, id(1), 1, t0).unwrap();
        before.handed(&store, id(2), 2, t0).unwrap();
        before.handed(&store, id(3), 1, t0).unwrap();
        drop(before);

        // Ten minutes later the node is back: the HTLCs are known again, their 90 s from now.
        let t1 = t0 + Duration::from_secs(600);
        let after = HandedHtlcs::load(&store, t1).unwrap();
        assert_eq!(after.len(), 3);
        let settled = id(3);
        let pending = |i: &InterceptId| *i != settled;
        assert!(after.overdue(&store, t1 + Duration::from_secs(89), false, pending).unwrap().is_empty());
        // The one LDK no longer holds is forgotten, record and all.
        assert_eq!(store.jit_htlcs().unwrap().len(), 2);
        let due = after.overdue(&store, t1 + MPP_TIMEOUT, false, pending).unwrap();
        assert_eq!(due.iter().map(|o| (o.scid, o.htlcs.clone())).collect::<Vec<_>>(), vec![(1, vec![id(1)])]);
        // A given-up HTLC's record stays until the sale was given up (a stop in between finds it).
        assert_eq!(store.jit_htlcs().unwrap().len(), 2);
        after.resolved(&store, &[id(1)]).unwrap();
        assert_eq!(store.jit_htlcs().unwrap(), vec![(hexs(&[2; 32]), 2)]);
        // The opening sale's HTLC waits for lightning-liquidity, unless LSPS2 is off.
        assert!(after.overdue(&store, t1 + MPP_TIMEOUT, false, pending).unwrap().is_empty());
        let due = after.overdue(&store, t1 + MPP_TIMEOUT, true, pending).unwrap();
        assert_eq!(due.iter().map(|o| (o.scid, o.htlcs.clone())).collect::<Vec<_>>(), vec![(2, vec![id(2)])]);
    }
}
