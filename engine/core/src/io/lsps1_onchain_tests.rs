//! Orders paid on chain: the tally of an address's outputs and the store's rules, on a real
//! node.sqlite file.

use super::*;
use crate::io::lsps1::tests::{order, store};
use crate::io::lsps1::{KEEP_FAILED_UNPAID_SECS, LSPS1_BY_BOLT11};
use crate::io::{Lsps1OnchainTerms, PaymentRecord, LSPS1_CREATED, LSPS1_FAILED, STATUS_SUCCEEDED};

fn receipt(outpoint: &str, sat: u64, confirmations: u32, block_time: u64) -> OnchainReceipt {
    OnchainReceipt { outpoint: outpoint.into(), sat, confirmations, block_time }
}

/// An order of 3,000 sat offered on chain (1 confirmation), created at `t`, expiring at `t + 600`.
fn onchain_order(s: &SqliteStore, id: &str, t: u64) -> PaymentRecord {
    let (mut r, p) = order(id, "02a", t);
    r.onchain =
        Some(Lsps1OnchainTerms { address: format!("bcrt1q{id}"), min_confirmations: 1, min_fee_for_0conf_kwu: 253 });
    assert_eq!(s.lsps1_insert_order(&r, &p, 10, 10).unwrap(), None);
    p
}

fn seen(received_sat: u64, in_time_sat: u64) -> OnchainTally {
    OnchainTally { received_sat, outpoints: format!("{}:0", "ab".repeat(32)), in_time_sat }
}

fn states(s: &SqliteStore, id: &str) -> (String, String, Option<String>, u64) {
    let o = s.lsps1_order(id).unwrap().unwrap();
    (o.state, o.payment_state, o.paid_by, o.onchain_received_sat)
}

#[test]
fn the_tally_counts_each_output_with_enough_confirmations_once_and_what_came_in_time() {
    let rs = [
        receipt("b:1", 2_000, 3, 500),
        receipt("a:0", 1_000, 1, 700),
        receipt("a:0", 1_000, 1, 700),
        receipt("c:0", 9_000, 0, 0),
        receipt("d:5", 4_000, 6, 601),
    ];
    let t = tally(&rs, 1, 600);
    assert_eq!(t, OnchainTally { received_sat: 7_000, outpoints: "a:0,b:1,d:5".into(), in_time_sat: 2_000 });
    let t = tally(&rs, 3, 1_000);
    assert_eq!((t.received_sat, t.outpoints.as_str(), t.in_time_sat), (6_000, "b:1,d:5", 6_000));
    assert_eq!(tally(&[], 1, 600), OnchainTally::default());
    // Asked for 0 confirmations (never configured so): an unconfirmed output still does not count.
    assert_eq!(tally(&[receipt("e:0", 5, 0, 0)], 0, 600).received_sat, 0);
}

#[test]
fn an_order_paid_on_chain_is_paid_once_and_its_invoice_can_no_longer_be_claimed() {
    let (_d, s) = store();
    let t = now_secs();
    let p = onchain_order(&s, "a", t);
    let watched: Vec<_> = s.lsps1_onchain_watched(t).unwrap().into_iter().map(|o| o.order_id).collect();
    assert_eq!(watched, ["a"]);
    assert!(s.lsps1_onchain_watched(t + WATCH_ADDRESS_SECS + 1).unwrap().is_empty(), "watched for 30 days");
    // Short so far: nothing paid, what came recorded, nothing owed while the order runs.
    assert!(!s.lsps1_onchain_seen("a", &seen(1_000, 1_000)).unwrap());
    assert_eq!(states(&s, "a"), (LSPS1_CREATED.into(), LSPS1_EXPECT_PAYMENT.into(), None, 1_000));
    assert_eq!(s.lsps1_order("a").unwrap().unwrap().refund_owed_sat(t), 0);
    // Enough: paid on chain, with its outpoints, owed its channel.
    assert!(s.lsps1_onchain_seen("a", &seen(3_000, 3_000)).unwrap());
    assert_eq!(states(&s, "a"), (LSPS1_CREATED.into(), LSPS1_PAID.into(), Some(LSPS1_BY_ONCHAIN.into()), 3_000));
    let a = s.lsps1_order("a").unwrap().unwrap();
    assert_eq!(a.onchain_outpoints.as_deref(), Some(format!("{}:0", "ab".repeat(32)).as_str()));
    assert_eq!(a.refund_owed_sat(t), 0);
    assert_eq!(s.lsps1_committed("").unwrap(), (100_000, 1));
    assert_eq!(s.lsps1_awaiting_channel(t).unwrap().len(), 1);
    // Seen again after the next sync: not paid a second time.
    assert!(!s.lsps1_onchain_seen("a", &seen(3_000, 3_000)).unwrap());
    // Its invoice: no claim is approved, and a payment claimed anyway changes nothing.
    assert!(!s.lsps1_approve_claim("a", t).unwrap());
    s.push_event("payment_received", "{}", Some(&PaymentRecord { status: STATUS_SUCCEEDED.into(), ..p })).unwrap();
    assert_eq!(states(&s, "a").2.as_deref(), Some(LSPS1_BY_ONCHAIN));
    // Overpaid later: the surplus is owed back, even once the order completed.
    assert!(!s.lsps1_onchain_seen("a", &seen(3_500, 3_500)).unwrap());
    s.lsps1_completed("a", "cc", "tx:0", t).unwrap();
    assert_eq!(s.lsps1_order("a").unwrap().unwrap().refund_owed_sat(t), 500);
}

#[test]
fn coins_that_do_not_pay_the_order_are_recorded_and_owed_back() {
    let (_d, s) = store();
    let t = now_secs();
    // Paid by invoice first: everything on chain is owed back.
    let pb = onchain_order(&s, "bolt", t);
    s.push_event("payment_received", "{}", Some(&PaymentRecord { status: STATUS_SUCCEEDED.into(), ..pb })).unwrap();
    assert!(!s.lsps1_onchain_seen("bolt", &seen(3_000, 3_000)).unwrap());
    assert_eq!(states(&s, "bolt"), (LSPS1_CREATED.into(), LSPS1_PAID.into(), Some(LSPS1_BY_BOLT11.into()), 3_000));
    assert_eq!(s.lsps1_order("bolt").unwrap().unwrap().refund_owed_sat(t), 3_000);
    // The invoice's claim was approved (its PaymentClaimed on the way): the coins do not pay it.
    onchain_order(&s, "race", t);
    assert!(s.lsps1_approve_claim("race", t).unwrap());
    assert!(!s.lsps1_onchain_seen("race", &seen(3_000, 3_000)).unwrap());
    assert_eq!(states(&s, "race").1, LSPS1_EXPECT_PAYMENT);
    // Confirmed in a block after the expiry: late, not paid; owed once the order is over.
    onchain_order(&s, "late", t);
    assert!(!s.lsps1_onchain_seen("late", &seen(3_000, 0)).unwrap());
    assert_eq!(s.lsps1_order("late").unwrap().unwrap().refund_owed_sat(t + 600), 3_000);
    // Short, and the order expired: owed back.
    onchain_order(&s, "short", t);
    assert!(!s.lsps1_onchain_seen("short", &seen(2_999, 2_999)).unwrap());
    assert_eq!(s.lsps1_order("short").unwrap().unwrap().refund_owed_sat(t + 599), 0);
    assert_eq!(s.lsps1_order("short").unwrap().unwrap().refund_owed_sat(t + 600), 2_999);
    // Paid in time but seen after the sweep failed the order: created again, paid.
    onchain_order(&s, "slow", t);
    onchain_order(&s, "none", t);
    assert_eq!(s.lsps1_sweep(t + 600).unwrap().0, 5, "race, late, short, slow and none expire");
    assert!(s.lsps1_onchain_seen("slow", &seen(3_000, 3_000)).unwrap());
    assert_eq!(states(&s, "slow").0, LSPS1_CREATED);
    // A day on: expired orders that received coins are kept (owed); the empty one too while its
    // address is watched (a payment made in time may still reach its confirmations), then it goes.
    s.lsps1_sweep(t + 600 + KEEP_FAILED_UNPAID_SECS).unwrap();
    assert!(s.lsps1_order("none").unwrap().is_some());
    s.lsps1_sweep(t + WATCH_ADDRESS_SECS).unwrap();
    assert!(s.lsps1_order("none").unwrap().is_none());
    for id in ["late", "short", "race"] {
        let o = s.lsps1_order(id).unwrap().unwrap();
        assert_eq!(o.state, LSPS1_FAILED, "{id}");
        assert!(o.refund_owed_sat(t + 600 + KEEP_FAILED_UNPAID_SECS) > 0, "{id}");
    }
    // Given up after it was paid on chain: all of it is owed.
    s.lsps1_failed("slow", "stored params unreadable").unwrap();
    assert_eq!(s.lsps1_order("slow").unwrap().unwrap().refund_owed_sat(t), 3_000);
}

#[test]
fn unpaid_on_chain_offers_are_counted_apart_from_what_paid_orders_are_owed() {
    let (_dir, s) = store();
    let t = now_secs();
    let (invoice_only, p) = order("bolt", "02a", t);
    assert_eq!(s.lsps1_insert_order(&invoice_only, &p, 10, 10).unwrap(), None);
    assert_eq!(s.lsps1_onchain_offered(t).unwrap(), (0, 0), "an invoice-only order is no on-chain offer");
    onchain_order(&s, "chain", t);
    let channel = invoice_only.lsp_balance_sat + invoice_only.client_balance_sat;
    assert_eq!(s.lsps1_onchain_offered(t).unwrap(), (channel, 1));
    // Unpaid, it holds nothing back from the operator, LSPS2 or invoice orders.
    assert_eq!(s.lsps1_committed("").unwrap(), (0, 0));
    // Paid on chain: owed, no longer an offer.
    assert!(s.lsps1_onchain_seen("chain", &seen(3_000, 3_000)).unwrap());
    assert_eq!(s.lsps1_onchain_offered(t).unwrap(), (0, 0));
    assert_eq!(s.lsps1_committed("").unwrap(), (channel, 1));
    // Failed at its expiry, unpaid: still an offer while a payment confirmed in time may reach
    // its confirmation (it would then be marked paid), and no more after.
    onchain_order(&s, "lapsed", t);
    assert_eq!(s.lsps1_sweep(t + 600).unwrap().0, 2, "it and the invoice-only order");
    assert_eq!(s.lsps1_onchain_offered(t + 600).unwrap(), (channel, 1));
    let payable_until = t + 600 + 1_200 + PAYABLE_AFTER_EXPIRY_SECS;
    assert_eq!(s.lsps1_onchain_offered(payable_until - 1).unwrap(), (channel, 1));
    assert_eq!(s.lsps1_onchain_offered(payable_until).unwrap(), (0, 0));
}

#[test]
fn addresses_lent_to_orders_are_kept_for_good_with_when_they_were_lent() {
    let (_dir, s) = store();
    assert_eq!(s.lsps1_max_lent().unwrap(), None);
    s.lsps1_lend_address(30, 1_000).unwrap();
    s.lsps1_lend_address(7, 2_000).unwrap();
    s.lsps1_lend_address(7, 9_000).unwrap(); // the same index again: the first lending stands
    assert_eq!(s.lsps1_max_lent().unwrap(), Some(30));
    assert_eq!(s.lsps1_lent_before(999).unwrap(), Vec::<u32>::new());
    assert_eq!(s.lsps1_lent_before(1_000).unwrap(), vec![30]);
    assert_eq!(s.lsps1_lent_before(2_000).unwrap(), vec![7, 30]);
}

#[test]
fn the_daily_cap_counts_the_addresses_lent_in_the_last_24_hours() {
    let (_dir, s) = store();
    let t = 1_000_000;
    s.lsps1_lend_address(1, t - 86_400).unwrap();
    s.lsps1_lend_address(2, t - 86_399).unwrap();
    s.lsps1_lend_address(3, t).unwrap();
    assert_eq!(s.lsps1_onchain_offers_since(t - 86_400).unwrap(), 2, "lent more than 24 h ago: not counted");
    assert_eq!(s.lsps1_onchain_offers_since(t).unwrap(), 0);
}
