//! The order store's rules, on a real node.sqlite file.

use super::*;
use crate::io::{STATUS_PENDING, STATUS_SUCCEEDED};

pub(crate) fn order(id: &str, client: &str, created_at: u64) -> (Lsps1OrderRecord, PaymentRecord) {
    let hash = format!("{id}-hash");
    let r = Lsps1OrderRecord {
        order_id: id.into(),
        client_node_id: client.into(),
        params: "{}".into(),
        lsp_balance_sat: 100_000,
        client_balance_sat: 0,
        user_channel_id: id.bytes().fold(u128::from(created_at), |a, b| a * 257 + u128::from(b)),
        state: LSPS1_CREATED.into(),
        payment_state: LSPS1_EXPECT_PAYMENT.into(),
        invoice: "lnbcrt1".into(),
        payment_hash: hash.clone(),
        fee_sat: 3_000,
        total_sat: 3_000,
        channel_id: None,
        funding_outpoint: None,
        funded_at: None,
        created_at,
        expires_at: created_at + 600,
        updated_at: created_at,
        refund_onchain_address: None,
        open_attempts: 0,
        last_error: None,
        next_attempt_at: 0,
        claim_approved_at: None,
        funding_made: None,
        onchain: None,
        onchain_received_sat: 0,
        onchain_outpoints: None,
        paid_by: None,
    };
    let p = PaymentRecord {
        payment_id: hash.clone(),
        payment_hash: hash,
        direction: "inbound".into(),
        status: STATUS_PENDING.into(),
        amount_msat: Some(3_000_000),
        fee_msat: None,
        preimage: None,
        bolt11: Some("lnbcrt1".into()),
        failure: None,
        created_at,
        updated_at: created_at,
    };
    (r, p)
}

pub(crate) fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("node.sqlite")).unwrap();
    (dir, store)
}

#[test]
fn orders_waiting_for_payment_are_bounded_per_client_and_in_total() {
    let (_d, s) = store();
    let now = now_secs();
    for (i, client) in ["02a", "02a", "02b"].iter().enumerate() {
        let (r, p) = order(&format!("o{i}"), client, now + i as u64);
        assert_eq!(s.lsps1_insert_order(&r, &p, 2, 3).unwrap(), None);
    }
    let (r, p) = order("o3", "02a", now + 3);
    assert!(s.lsps1_insert_order(&r, &p, 2, 10).unwrap().unwrap().contains("this client"));
    let (r, p) = order("o4", "02c", now + 4);
    assert!(s.lsps1_insert_order(&r, &p, 2, 3).unwrap().unwrap().contains("at most 3"));
    assert!(s.lsps1_order("o4").unwrap().is_none());
    assert!(s.payment("o4-hash").unwrap().is_none(), "a refused order writes no payment row");
    // A paid order no longer waits: its client may order again.
    let paid = PaymentRecord { status: STATUS_SUCCEEDED.into(), ..order("o0", "02a", now).1 };
    s.push_event("payment_received", "{}", Some(&paid)).unwrap();
    let o0 = s.lsps1_order("o0").unwrap().unwrap();
    assert_eq!((o0.state.as_str(), o0.payment_state.as_str()), (LSPS1_CREATED, LSPS1_PAID));
    let (r, p) = order("o5", "02a", now + 5);
    assert_eq!(s.lsps1_insert_order(&r, &p, 2, 10).unwrap(), None);
    let newest: Vec<_> = s.lsps1_orders(10, 0).unwrap().into_iter().map(|o| o.order_id).collect();
    assert_eq!(newest, ["o5", "o2", "o1", "o0"]);
    assert_eq!(s.lsps1_awaiting_channel(now).unwrap().len(), 1);
    s.lsps1_completed("o0", "cc", "tx:0", now).unwrap();
    assert!(s.lsps1_awaiting_channel(now).unwrap().is_empty());
    assert_eq!(s.lsps1_order_by_user_channel_id(r.user_channel_id).unwrap().unwrap().order_id, "o5");
}

#[test]
fn expired_unpaid_orders_fail_then_go_and_a_late_payment_revives_its_order() {
    let (_d, s) = store();
    let t = 1_000_000;
    let (a, pa) = order("a", "02a", t);
    let (b, pb) = order("b", "02a", t);
    s.lsps1_insert_order(&a, &pa, 5, 5).unwrap();
    s.lsps1_insert_order(&b, &pb, 5, 5).unwrap();
    assert_eq!(s.lsps1_sweep(t + 600).unwrap(), (2, 0));
    // The payment of `b` was being claimed when the sweep ran: the order is owed its channel.
    s.push_event("payment_received", "{}", Some(&PaymentRecord { status: STATUS_SUCCEEDED.into(), ..pb })).unwrap();
    let b = s.lsps1_order("b").unwrap().unwrap();
    assert_eq!((b.state.as_str(), b.payment_state.as_str()), (LSPS1_CREATED, LSPS1_PAID));
    assert_eq!(s.lsps1_sweep(t + 600 + KEEP_FAILED_UNPAID_SECS).unwrap(), (0, 1));
    assert!(s.lsps1_order("a").unwrap().is_none());
    assert!(s.lsps1_order("b").unwrap().is_some(), "a paid order is never deleted");
    s.lsps1_failed("b", "test").unwrap();
    assert_eq!(s.lsps1_order("b").unwrap().unwrap().state, LSPS1_FAILED);
}

#[test]
fn a_failed_open_keeps_the_order_paid_and_is_retried_later_until_given_up() {
    let (_d, s) = store();
    let t = now_secs();
    let (a, pa) = order("a", "02a", t);
    let (b, pb) = order("b", "02b", t);
    s.lsps1_insert_order(&a, &pa, 5, 5).unwrap();
    s.lsps1_insert_order(&b, &pb, 5, 5).unwrap();
    assert_eq!(s.lsps1_committed("").unwrap().0, 0, "unpaid orders owe nothing");
    for p in [pa, pb] {
        s.push_event("payment_received", "{}", Some(&PaymentRecord { status: STATUS_SUCCEEDED.into(), ..p })).unwrap();
    }
    assert_eq!(s.lsps1_committed("").unwrap().0, 200_000);
    assert_eq!(s.lsps1_committed("a").unwrap().0, 100_000);
    // A transient failure: still owed, not due again for a minute.
    assert!(!s.lsps1_open_failed("a", "peer not connected", t).unwrap());
    let a1 = s.lsps1_order("a").unwrap().unwrap();
    assert_eq!((a1.state.as_str(), a1.payment_state.as_str(), a1.open_attempts), (LSPS1_CREATED, LSPS1_PAID, 1));
    assert_eq!(a1.last_error.as_deref(), Some("peer not connected"));
    let due =
        |now: u64| -> Vec<String> { s.lsps1_awaiting_channel(now).unwrap().into_iter().map(|o| o.order_id).collect() };
    assert_eq!(due(t), ["b"]);
    assert_eq!(due(t + 60), ["a", "b"]);
    assert_eq!(s.lsps1_committed("").unwrap().0, 200_000, "a retried order still owes its channel");
    // The delay doubles up to an hour; the twelfth failure gives the order up, still paid.
    assert_eq!((retry_delay_secs(2), retry_delay_secs(6), retry_delay_secs(30)), (120, 1920, 3600));
    for n in 2..MAX_OPEN_ATTEMPTS {
        assert!(!s.lsps1_open_failed("a", "wallet short", t + u64::from(n)).unwrap());
    }
    assert!(s.lsps1_open_failed("a", "wallet short", t + 100).unwrap());
    let gone = s.lsps1_order("a").unwrap().unwrap();
    assert_eq!((gone.state.as_str(), gone.payment_state.as_str()), (LSPS1_FAILED, LSPS1_PAID));
    assert_eq!(gone.open_attempts, MAX_OPEN_ATTEMPTS);
    assert!(gone.last_error.unwrap().starts_with("given up after 12 failed opens"));
    assert_eq!(due(t + 100_000), ["b"]);
    assert_eq!(s.lsps1_committed("").unwrap().0, 100_000);
    // A given-up (or completed) order counts no more failures.
    assert!(!s.lsps1_open_failed("a", "late close", t + 200).unwrap());
    assert_eq!(s.lsps1_order("a").unwrap().unwrap().open_attempts, MAX_OPEN_ATTEMPTS);
}

#[test]
fn an_order_whose_claim_was_approved_owes_its_coins_before_it_is_paid() {
    let (_d, s) = store();
    let t = now_secs();
    let (a, pa) = order("a", "02a", t);
    let (b, pb) = order("b", "02b", t);
    s.lsps1_insert_order(&a, &pa, 5, 5).unwrap();
    s.lsps1_insert_order(&b, &pb, 5, 5).unwrap();
    assert_eq!(s.lsps1_committed("").unwrap(), (0, 0));
    // Both payments judged in one batch: the first approval is owed while the second is judged.
    assert!(s.lsps1_approve_claim("a", t).unwrap());
    assert_eq!(s.lsps1_committed("b").unwrap(), (100_000, 1));
    assert_eq!(s.lsps1_committed("a").unwrap(), (0, 0), "the order judged is not counted twice");
    assert!(s.lsps1_approve_claim("a", t + 5).unwrap(), "a replayed claim is approved again");
    assert_eq!(s.lsps1_order("a").unwrap().unwrap().claim_approved_at, Some(t), "the first approval stays");
    s.push_event("payment_received", "{}", Some(&PaymentRecord { status: STATUS_SUCCEEDED.into(), ..pa })).unwrap();
    assert_eq!(s.lsps1_committed("").unwrap(), (100_000, 1), "paid: still owed, counted once");
    assert!(!s.lsps1_approve_claim("a", t).unwrap(), "a paid order is not waiting for payment");
    // An approved claim that never completed owes nothing once its order expired.
    assert!(s.lsps1_approve_claim("b", t).unwrap());
    assert_eq!(s.lsps1_committed("").unwrap(), (200_000, 2));
    s.lsps1_sweep(t + 600).unwrap();
    assert_eq!(s.lsps1_committed("").unwrap(), (100_000, 1));
    s.lsps1_completed("a", "cc", "tx:0", t).unwrap();
    assert_eq!(s.lsps1_committed("").unwrap(), (0, 0));
}

#[test]
fn a_funding_made_for_an_order_is_kept_until_ldk_discards_it() {
    let (_d, s) = store();
    let t = now_secs();
    let (a, pa) = order("a", "02a", t);
    let (b, pb) = order("b", "02b", t);
    s.lsps1_insert_order(&a, &pa, 5, 5).unwrap();
    s.lsps1_insert_order(&b, &pb, 5, 5).unwrap();
    let (txa, txb) = ("aa".repeat(32), "ab".repeat(32));
    s.lsps1_funding_made("a", &format!("{txa}:1")).unwrap();
    s.lsps1_funding_made("b", &format!("{txb}:0")).unwrap();
    assert_eq!(s.lsps1_order("a").unwrap().unwrap().funding_made, Some(format!("{txa}:1")));
    // A prefix of a txid, or another's, clears nothing.
    assert_eq!(s.lsps1_funding_discarded(&txa[..10]).unwrap(), 0);
    assert_eq!(s.lsps1_funding_discarded(&"cc".repeat(32)).unwrap(), 0);
    assert_eq!(s.lsps1_funding_discarded(&txa).unwrap(), 1);
    assert_eq!(s.lsps1_order("a").unwrap().unwrap().funding_made, None);
    assert_eq!(s.lsps1_order("b").unwrap().unwrap().funding_made, Some(format!("{txb}:0")));
    assert_eq!(s.lsps1_awaiting_channel(t).unwrap().len(), 0, "unpaid orders are owed nothing");
}

#[test]
fn tombstones_are_capped_the_oldest_going_first() {
    let (_d, s) = store();
    let t = 1_000_000;
    for (i, id) in ["a", "b", "c"].iter().enumerate() {
        let (r, p) = order(id, "02a", t + i as u64 * 100);
        s.lsps1_insert_order(&r, &p, 5, 5).unwrap();
        // Each order expires and is deleted at its own sweep, one tombstone at a time.
        s.lsps1_sweep_capped(t + i as u64 * 100 + 600, 2).unwrap();
        s.lsps1_sweep_capped(t + i as u64 * 100 + 600 + KEEP_FAILED_UNPAID_SECS, 2).unwrap();
    }
    assert!(!s.lsps1_tombstoned("a-hash").unwrap(), "the oldest went");
    assert!(s.lsps1_tombstoned("b-hash").unwrap());
    assert!(s.lsps1_tombstoned("c-hash").unwrap());
}
