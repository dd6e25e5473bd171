"""`make demo`: the LightningRod async payment on a local four-node network, step by step."""
