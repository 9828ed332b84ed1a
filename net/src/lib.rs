//! runnel's TCP and UDP sockets (filled by the net issue).
