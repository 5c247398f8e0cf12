//! Triggers: actors that watch signals and open incidents.
