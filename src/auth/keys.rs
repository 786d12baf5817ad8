//! X25519 keys: agent credentials, the platform key (serverkey) and known hosts.
