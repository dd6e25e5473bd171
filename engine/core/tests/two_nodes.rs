//! The engine alone, without Python: two nodes on the local regtest chain open a channel and
//! pay an invoice, with the events arriving through the persisted queue.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bitcoin::{Address, Amount, Network};
use lsp_engine::{Node, NodeConfig, NodeEvent};
use regtest_chain::{ChainServer, RegtestChain};

async fn event_of(node: &Node, kind: &str) -> NodeEvent {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let e = tokio::time::timeout_at(deadline, node.next_event())
            .await
            .unwrap_or_else(|_| panic!("no {kind} event in time"))
            .expect("event queue");
        node.event_handled(e.id).expect("ack");
        if e.event.kind() == kind {
            return e.event;
        }
    }
}

async fn wait_for(mut cond: impl FnMut() -> bool, what: &str) {
    for _ in 0..600 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_channel_and_pay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = Arc::new(RegtestChain::open(&dir.path().join("chain.sqlite")).expect("chain"));
    let server = ChainServer::start(Arc::clone(&chain), "127.0.0.1:0".parse().expect("addr")).await.expect("server");
    let config = |name: &str| {
        let mut cfg = NodeConfig::new(dir.path().join(name), Network::Regtest, &server.url());
        cfg.options.sync_interval_secs = 1;
        cfg
    };
    let alice = Node::start(config("alice")).await.expect("alice");
    let bob = Node::start(config("bob")).await.expect("bob");

    let addr = Address::from_str(&alice.new_address().expect("address"))
        .expect("parse")
        .require_network(Network::Regtest)
        .expect("regtest address");
    chain.fund(&addr.script_pubkey(), Amount::from_sat(2_000_000)).expect("fund");
    chain.mine_blocks(1, None).expect("mine");
    alice.sync().await.expect("sync");
    assert_eq!(alice.wallet_balance().confirmed_sat, 2_000_000);

    alice.connect(&bob.node_id(), &bob.listen_addr().to_string()).await.expect("connect");
    alice.open_channel(&bob.node_id(), 1_000_000, 0, false, false).expect("open");
    event_of(&alice, "channel_pending").await;
    wait_for(|| !chain.mempool_txids().is_empty(), "funding broadcast").await;
    chain.mine_blocks(6, None).expect("mine");
    alice.sync().await.expect("sync");
    bob.sync().await.expect("sync");
    event_of(&alice, "channel_ready").await;
    wait_for(|| alice.list_channels().iter().any(|c| c.is_usable), "usable channel").await;

    let invoice = bob.create_invoice(Some(42_000_000), "engine test", 600).expect("invoice");
    let hash = alice.pay_invoice(&invoice, None, None).expect("pay");
    match event_of(&alice, "payment_sent").await {
        NodeEvent::PaymentSent { payment_hash, .. } => assert_eq!(payment_hash, hash),
        other => panic!("{other:?}"),
    }
    match event_of(&bob, "payment_received").await {
        NodeEvent::PaymentReceived { amount_msat, .. } => assert_eq!(amount_msat, 42_000_000),
        other => panic!("{other:?}"),
    }
    let record = alice.payment(&hash).expect("store").expect("record");
    assert_eq!(record.status, "succeeded");

    alice.stop().await.expect("stop");
    bob.stop().await.expect("stop");
    server.stop().await;
}
