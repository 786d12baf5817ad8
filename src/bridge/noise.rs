//! Noise protocol handshake and encrypted stream for bridge links.
