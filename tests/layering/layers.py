"""The layers of the sources, as data: which folder may use which.

A folder may include a header of, and call a function defined in, its own folder
or a folder of a lower layer; never one of a higher layer, nor a sibling
(images/ and net/ know nothing of each other). systemd's basic/ and shared/ rule,
written down so a test holds it (docs/architecture.md)."""

# folder (relative to the top) -> (side, rank); a higher rank may use a lower one
LAYERS = {
    "core": ("core", 5),        # the orchestrator, re-adoption, streams
    "core/vm": ("core", 4),     # the VM object, its processes, verbs, files
    "core/images": ("core", 3), # binaries and base images
    "core/net": ("core", 3),    # bridge, TAPs, leases, firewall
    "core/fc": ("core", 2),     # the Firecracker API: client, config, payloads
    "core/base": ("core", 1),   # errors, log sink, rings, loop, spawn, host paths
    "fs": ("fs", 3),            # the daemon: options, mount, checks, its log
    "fs/tree": ("fs", 2),       # what the tree is: the tables and their handlers
    "fs/serve": ("fs", 1),      # how any tree is served over FUSE
}
# the headers every side may include: core's public interface, and the scoped
# release idiom both sides use
PUBLIC = ("core/smartvm.h", "core/cleanup.h")


def may_use(user, used):
    """May a file of folder `user` use a file of folder `used`?"""
    if used == user:
        return True
    su, ru = LAYERS[user]
    sd, rd = LAYERS[used]
    if su != sd:
        return False  # fs reaches core through PUBLIC only
    return rd < ru
