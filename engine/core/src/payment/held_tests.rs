use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use lightning::blinded_path::BlindedHop;
use lightning::routing::gossip::{NodeId, RoutingFees};
use lightning::routing::router::{
    BlindedTail, Path, PaymentParameters, Route, RouteHint, RouteHintHop, RouteHop, RouteParameters,
};
use lightning::types::features::{ChannelFeatures, NodeFeatures};

use super::*;

fn key(n: u8) -> PublicKey {
    PublicKey::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&[n; 32]).unwrap())
}

const PAYER: u8 = 1;
const LSP: u8 = 2;
const R: u8 = 3;
const LSP_B: u8 = 4;
const PAYEE: u8 = 5;
const OTHER: u8 = 6;

fn hop(node: u8, scid: u64, fee_msat: u64, cltv: u32) -> RouteHop {
    RouteHop {
        pubkey: key(node),
        node_features: NodeFeatures::empty(),
        short_channel_id: scid,
        channel_features: ChannelFeatures::empty(),
        fee_msat,
        cltv_expiry_delta: cltv,
        maybe_announced_channel: true,
    }
}

fn next(node: u8, scid: u64) -> HeldNext {
    HeldNext { node: key(node), scid, fee_base_msat: 1_000, fee_proportional_millionths: 2_000, cltv_expiry_delta: 72 }
}

fn held(hops: Vec<HeldNext>, extra: u32) -> HeldPayment {
    HeldPayment::new(key(LSP), hops, extra, &key(PAYER)).unwrap()
}

fn route(paths: Vec<Vec<RouteHop>>) -> Route {
    Route { paths: paths.into_iter().map(|hops| Path { hops, blinded_tail: None }).collect(), route_params: None }
}

fn hint_hop(src: u8, scid: u64) -> RouteHintHop {
    RouteHintHop {
        src_node_id: key(src),
        short_channel_id: scid,
        fees: RoutingFees { base_msat: 1, proportional_millionths: 1 },
        cltv_expiry_delta: 40,
        htlc_minimum_msat: None,
        htlc_maximum_msat: None,
    }
}

fn params(hints: Vec<RouteHint>, failed: Vec<u64>) -> RouteParameters {
    let mut pp = PaymentParameters::from_node_id(key(PAYEE), 18)
        .with_route_hints(hints)
        .unwrap()
        .with_max_total_cltv_expiry_delta(MAX_TOTAL_CLTV);
    pp.previously_failed_channels = failed;
    RouteParameters::from_payment_params_and_value(pp, 100_000_000)
}

#[test]
fn each_path_leaves_the_lsp_on_its_next_nodes_intercept_scid() {
    // MPP: one part over R, one straight to the payee's LSP; hops[0] is the LSP.
    let mut r = route(vec![
        vec![hop(LSP, 11, 5, 40), hop(R, 12, 7, 80), hop(LSP_B, 13, 3, 40), hop(PAYEE, 14, 60_000_000, 18)],
        vec![hop(LSP, 21, 5, 40), hop(LSP_B, 22, 3, 40), hop(PAYEE, 23, 40_000_000, 18)],
    ]);
    let h = held(vec![next(R, 900), next(LSP_B, 901)], 144);
    h.rewrite(&mut r, None).unwrap();

    let [a, b] = [&r.paths[0].hops, &r.paths[1].hops];
    assert_eq!((a[0].short_channel_id, a[1].short_channel_id, a[2].short_channel_id), (11, 900, 13));
    assert_eq!((b[0].short_channel_id, b[1].short_channel_id), (21, 901));
    assert!(!a[1].maybe_announced_channel && !b[1].maybe_announced_channel);
    // The LSP forwards everything after it: downstream fees plus the part's value.
    assert_eq!(a[0].fee_msat, 1_000 + (7 + 3 + 60_000_000) * 2_000 / 1_000_000);
    assert_eq!(b[0].fee_msat, 1_000 + (3 + 40_000_000) * 2_000 / 1_000_000);
    assert_eq!((a[0].cltv_expiry_delta, b[0].cltv_expiry_delta), (72, 72));
    assert_eq!((a[3].cltv_expiry_delta, b[2].cltv_expiry_delta), (18 + 144, 18 + 144));
    // Nothing downstream of the LSP hop changes.
    assert_eq!((a[1].fee_msat, a[1].cltv_expiry_delta, a[3].fee_msat), (7, 80, 60_000_000));
}

#[test]
fn the_payee_as_next_node_takes_the_intercept_scid_on_its_own_hop() {
    // Payer and payee are clients of one LSP: the next node is the payee, its hop is the last.
    let mut r = route(vec![vec![hop(LSP, 11, 5, 40), hop(PAYEE, 12, 100_000_000, 18)]]);
    held(vec![next(PAYEE, 900)], 10).rewrite(&mut r, None).unwrap();
    let p = &r.paths[0].hops;
    assert_eq!((p[1].short_channel_id, p[1].fee_msat, p[1].cltv_expiry_delta), (900, 100_000_000, 28));
    assert_eq!(r.paths[0].final_value_msat(), 100_000_000);
    assert_eq!(r.paths[0].fee_msat(), 1_000 + 200_000);
}

#[test]
fn a_route_the_hold_does_not_cover_is_refused() {
    let h = held(vec![next(R, 900)], 0);
    let refuse = |hops: Vec<RouteHop>| h.clone().rewrite(&mut route(vec![hops]), None).unwrap_err();
    assert!(refuse(vec![hop(LSP, 11, 5, 40), hop(OTHER, 12, 1_000, 18)]).contains("does not cover"));
    assert!(refuse(vec![hop(OTHER, 11, 5, 40), hop(R, 12, 1_000, 18)]).contains("start at the LSP"));
    assert!(refuse(vec![hop(LSP, 11, 1_000, 18)]).contains("past the LSP"));
    let too_long = vec![hop(LSP, 11, 5, 40), hop(R, 12, 5, MAX_TOTAL_CLTV - 40 - 18), hop(PAYEE, 13, 1_000, 18)];
    assert!(refuse(too_long).contains("lock funds"));

    let mut blinded = route(vec![vec![hop(LSP, 11, 5, 40), hop(R, 12, 1_000, 18)]]);
    blinded.paths[0].blinded_tail = Some(BlindedTail {
        trampoline_hops: vec![],
        hops: vec![BlindedHop { blinded_node_id: key(OTHER), encrypted_payload: vec![] }],
        blinding_point: key(OTHER),
        excess_final_cltv_expiry_delta: 0,
        final_value_msat: 1_000,
    });
    assert!(h.rewrite(&mut blinded, None).unwrap_err().contains("blinded"));
}

#[test]
fn the_fee_budget_counts_the_holds_fee() {
    let h = held(vec![next(R, 900)], 0);
    let hops = || vec![hop(LSP, 11, 5, 40), hop(R, 12, 10, 40), hop(PAYEE, 13, 1_000_000, 18)];
    // 10 msat at R plus 1000 + 2000 ppm of 1_000_010 at the LSP.
    let fees = 10 + 1_000 + 2_000;
    h.rewrite(&mut route(vec![hops()]), Some(fees)).unwrap();
    assert!(h.rewrite(&mut route(vec![hops()]), Some(fees - 1)).unwrap_err().contains("fee budget"));
}

#[test]
fn restricting_excludes_the_lsps_other_edges_and_failed_next_hops() {
    let h = held(vec![next(R, 900), next(PAYEE, 901)], 144);
    let edges = [
        (100, NodeId::from_pubkey(&key(PAYER))), // the payer's own first hop: never excluded
        (101, NodeId::from_pubkey(&key(R))),
        (102, NodeId::from_pubkey(&key(OTHER))),
        (103, NodeId::from_pubkey(&key(LSP_B))),
    ];
    let hints = vec![
        RouteHint(vec![hint_hop(LSP, 200)]), // LSP -> payee: a next node
        RouteHint(vec![hint_hop(LSP, 201), hint_hop(OTHER, 202)]), // LSP -> OTHER: not one
        RouteHint(vec![hint_hop(LSP_B, 203)]), // not from the LSP
    ];
    let p = params(hints.clone(), vec![7]);
    let restricted = h.restrict(&key(PAYER), &p, &edges).unwrap();
    let mut failed = restricted.payment_params.previously_failed_channels.clone();
    failed.sort();
    assert_eq!(failed, vec![7, 102, 103, 201]);
    assert_eq!(restricted.payment_params.max_total_cltv_expiry_delta, MAX_TOTAL_CLTV - 144 - 72);
    assert_eq!(p.payment_params.previously_failed_channels, vec![7], "the caller's parameters are left alone");

    // LDK recorded the payee's intercept SCID as failed (the LSP refused): its real edges go.
    let p = params(hints, vec![901]);
    let restricted = h.restrict(&key(PAYER), &p, &edges).unwrap();
    let mut failed = restricted.payment_params.previously_failed_channels;
    failed.sort();
    assert_eq!(failed, vec![102, 103, 200, 201, 901]);
}

#[test]
fn restricting_shrinks_the_fee_budget_and_refuses_the_lsp_as_payee() {
    let h = held(vec![next(R, 900)], 0);
    let mut p = params(vec![], vec![]);
    p.max_total_routing_fee_msat = Some(500_000);
    let restricted = h.restrict(&key(PAYER), &p, &[]).unwrap();
    assert_eq!(restricted.max_total_routing_fee_msat, Some(500_000 - 1_000 - 200_000));
    p.max_total_routing_fee_msat = Some(100_000);
    assert!(h.restrict(&key(PAYER), &p, &[]).unwrap_err().contains("fee budget"));

    let to_lsp = RouteParameters::from_payment_params_and_value(PaymentParameters::from_node_id(key(LSP), 18), 1_000);
    assert!(h.restrict(&key(PAYER), &to_lsp, &[]).unwrap_err().contains("is its LSP"));
}

#[test]
fn a_hold_is_checked_before_it_is_used() {
    let new =
        |hops: Vec<HeldNext>, extra: u32| HeldPayment::new(key(LSP), hops, extra, &key(PAYER)).unwrap_err().to_string();
    assert!(new(vec![], 0).contains("1 to 8 next hops"));
    assert!(new((10..19).map(|n| next(n, n as u64)).collect(), 0).contains("got 9"));
    assert!(new(vec![next(LSP, 1)], 0).contains("the LSP itself"));
    assert!(new(vec![next(PAYER, 1)], 0).contains("this node itself"));
    assert!(new(vec![next(R, 1), next(R, 2)], 0).contains("listed twice"));
    assert!(new(vec![next(R, 1), next(LSP_B, 1)], 0).contains("its own"));
    assert!(new(vec![next(R, 1)], MAX_TOTAL_CLTV - 72).contains("shorter hold"));
    assert_eq!(held(vec![next(R, 1)], 100).cltv_padding(), 172);
}

#[test]
fn next_nodes_are_distinct_and_in_order() {
    let r = route(vec![
        vec![hop(LSP, 11, 5, 40), hop(LSP_B, 12, 3, 40), hop(PAYEE, 13, 1, 18)],
        vec![hop(LSP, 21, 5, 40), hop(R, 22, 3, 40), hop(PAYEE, 23, 1, 18)],
        vec![hop(LSP, 31, 5, 40), hop(LSP_B, 32, 3, 40), hop(PAYEE, 33, 1, 18)],
    ]);
    assert_eq!(next_nodes(&r, &key(LSP)).unwrap(), vec![key(LSP_B), key(R)]);
    assert!(next_nodes(&route(vec![vec![hop(LSP, 11, 1, 18)]]), &key(LSP)).unwrap_err().contains("payee is the LSP"));
    assert!(next_nodes(&route(vec![vec![hop(R, 11, 1, 18)]]), &key(LSP)).is_err());
}

#[test]
fn hint_edges_lead_to_the_next_hint_hop_or_the_payee() {
    let hints = vec![RouteHint(vec![hint_hop(OTHER, 1), hint_hop(LSP, 2), hint_hop(LSP_B, 3)])];
    assert_eq!(lsp_hint_edges(&key(LSP), &key(PAYEE), &hints), vec![(2, key(LSP_B))]);
    let hints = vec![RouteHint(vec![hint_hop(LSP, 4)])];
    assert_eq!(lsp_hint_edges(&key(LSP), &key(PAYEE), &hints), vec![(4, key(PAYEE))]);
}

#[test]
fn the_hold_fee_does_not_overflow() {
    let n = HeldNext { fee_base_msat: u32::MAX, fee_proportional_millionths: u32::MAX, ..next(R, 1) };
    assert_eq!(n.fee_msat(u64::MAX), u64::MAX);
    assert_eq!(next(R, 1).fee_msat(0), 1_000);
}
