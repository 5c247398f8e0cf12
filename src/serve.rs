//! `grace serve`: build the tree, run it, stop it cleanly.
