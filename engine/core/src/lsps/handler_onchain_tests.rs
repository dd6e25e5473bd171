//! The handler's LSPS1 orders offered payment on chain: the offer, the daily cap on fresh
//! addresses, and the funds every outstanding offer needs.

use serde_json::{json, Value};

use super::*;

#[test]
fn on_chain_payment_is_offered_when_enabled_above_its_minimum_and_paying_so_closes_the_invoice() {
    let a = peer(1);
    let onchain = |r: &Value| r["result"]["payment"]["onchain"].clone();
    // Off by default: BOLT11 only.
    let l = lsp(Lsps1Options::default(), false, PLENTY);
    assert_eq!(onchain(&ask(&l, a, create_order("c1", 400_000, json!({})))), Value::Null);
    let o = Lsps1Options {
        onchain_payment: true,
        min_onchain_payment_confirmations: 2,
        min_onchain_payment_size_sat: 5_000,
        ..Default::default()
    };
    let l = lsp(o, false, PLENTY);
    // 2,000 + 1% of 200,000 = 4,000 sat: below the on-chain minimum.
    assert_eq!(onchain(&ask(&l, a, create_order("c1", 200_000, json!({})))), Value::Null);
    let r = ask(&l, a, create_order("c2", 400_000, json!({})));
    let (first, second) = (onchain(&r), onchain(&ask(&l, a, create_order("c3", 400_000, json!({})))));
    assert_eq!((&first["order_total_sat"], &first["fee_total_sat"]), (&json!("6000"), &json!("6000")));
    assert_eq!((&first["min_onchain_payment_confirmations"], &first["min_fee_for_0conf"]), (&json!(2), &json!(2_500)));
    assert_eq!(first["state"], "EXPECT_PAYMENT");
    let address = first["address"].as_str().unwrap();
    assert!(address.starts_with("bcrt1q"), "{address}");
    assert_ne!(first["address"], second["address"], "each order its own address");
    // Both lent for good.
    assert_eq!(l.store.lsps1_lent_before(u64::MAX / 2).unwrap().len(), 2);
    let order_id = r["result"]["order_id"].as_str().unwrap();
    let got =
        ask(&l, a, json!({"jsonrpc": "2.0", "id": "g", "method": "lsps1.get_order", "params": {"order_id": order_id}}));
    assert_eq!(onchain(&got), first);
    let stored = l.store.lsps1_order(order_id).unwrap().unwrap();
    assert_eq!(stored.onchain.as_ref().unwrap().address, address);
    // Paid on chain: its invoice is failed back, and the order reads PAID both ways.
    let t = crate::io::OnchainTally {
        received_sat: 6_000,
        outpoints: format!("{}:1", "cd".repeat(32)),
        in_time_sat: 6_000,
    };
    assert!(l.store.lsps1_onchain_seen(order_id, &t).unwrap());
    let refused = l.service.claimable(&stored.payment_hash).unwrap().unwrap().unwrap_err();
    assert!(refused.contains("CREATED / PAID"), "{refused}");
    let got =
        ask(&l, a, json!({"jsonrpc": "2.0", "id": "g", "method": "lsps1.get_order", "params": {"order_id": order_id}}));
    assert_eq!(
        (&onchain(&got)["state"], &got["result"]["payment"]["bolt11"]["state"]),
        (&json!("PAID"), &json!("PAID"))
    );
}

#[test]
fn fresh_addresses_for_orders_stop_at_the_daily_cap_and_orders_are_then_offered_bolt11_only() {
    let onchain = |r: &Value| r["result"]["payment"]["onchain"].clone();
    let o = Lsps1Options {
        onchain_payment: true,
        min_onchain_payment_size_sat: 5_000,
        max_onchain_offers_per_day: 2,
        ..Default::default()
    };
    let l = lsp(o, false, PLENTY);
    // Two strangers' orders take the day's two addresses; a third client's order gets an
    // invoice only (one stranger with many node ids cannot make the wallet track more).
    assert!(onchain(&ask(&l, peer(1), create_order("c1", 400_000, json!({}))))["address"].is_string());
    assert!(onchain(&ask(&l, peer(2), create_order("c2", 400_000, json!({}))))["address"].is_string());
    let third = ask(&l, peer(3), create_order("c3", 400_000, json!({})));
    assert_eq!(onchain(&third), Value::Null);
    assert_eq!(third["result"]["payment"]["bolt11"]["state"], "EXPECT_PAYMENT");
    assert_eq!(l.store.lsps1_onchain_offers_since(0).unwrap(), 2);
}

#[test]
fn an_on_chain_offer_is_made_only_while_the_wallet_could_fund_every_one_outstanding() {
    let onchain = |r: &Value| r["result"]["payment"]["onchain"].clone();
    let o = Lsps1Options { onchain_payment: true, min_onchain_payment_size_sat: 5_000, ..Default::default() };
    // Room for one 400k channel and its funding fee, not two.
    let l = lsp(o, false, 700_000);
    assert!(onchain(&ask(&l, peer(1), create_order("c1", 400_000, json!({}))))["address"].is_string());
    // A payment to that address cannot be refused: a second on-chain offer would oversell. The
    // second order is still taken (its invoice can be refused at claim time if coins run short).
    let second = ask(&l, peer(2), create_order("c2", 400_000, json!({})));
    assert_eq!(onchain(&second), Value::Null);
    assert_eq!(second["result"]["payment"]["bolt11"]["state"], "EXPECT_PAYMENT");
}
