//! Agent processes: launch, stop, watch.
