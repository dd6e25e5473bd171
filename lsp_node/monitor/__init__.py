"""What the operator watches: a one-read summary of the node (`summary`), samples of it kept over
time in monitor.sqlite (`samples`, `recorder`), and the Prometheus exposition (`metrics`).

Nothing is imported here: the LSP role imports `meters` while `summary` imports the admin layer
above the role, and a package-level import would make that a cycle."""
