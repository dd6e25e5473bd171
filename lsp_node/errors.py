"""Exception classes raised by the engine and the LSP; defined once here, imported by the Rust glue."""


class LspNodeError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(LspNodeError):
    """The configuration or data directory cannot be used as given."""


class StorageError(LspNodeError):
    """SQLite or a file in the data directory could not be read or written."""


class ChainSourceError(LspNodeError):
    """The Esplora chain source could not be reached or answered something unusable."""


class ChainError(LspNodeError):
    """The embedded regtest chain refused a transaction or request."""


class PeerError(LspNodeError):
    """A peer is unknown or unreachable, or the connection failed."""


class ChannelError(LspNodeError):
    """A channel operation was refused."""


class NoUsableChannelError(ChannelError):
    """No usable channel to the node can carry the amount now; retrying later may succeed."""


class InsufficientFundsError(LspNodeError):
    """The wallet or channel does not hold enough for the operation."""


class InvoiceError(LspNodeError):
    """A BOLT11 invoice is malformed, for another network, or expired."""


class PaymentError(LspNodeError):
    """A payment could not be started."""


class DuplicatePaymentError(PaymentError):
    """The invoice was already paid or is being paid."""


class AddressError(LspNodeError):
    """A Bitcoin address is malformed or for another network."""


class WalletError(LspNodeError):
    """The on-chain wallet failed to build, sign or sync a transaction."""


class OnionMessageError(LspNodeError):
    """An onion message could not be sent, forwarded or answered (no path, peer gone...)."""


class NodeNotRunningError(LspNodeError):
    """The call needs a running node."""


class InvalidArgumentError(LspNodeError, ValueError):
    """An argument was out of range or malformed."""


class NotFoundError(InvalidArgumentError):
    """The thing asked for (a hold, a push, a channel) does not exist."""
