"""Deterministic tie-break keys: splitmix64(fnv1a64(host id) ^ splitmix64(seed))."""
MASK = (1 << 64) - 1


def splitmix64(x: int) -> int:
    """One step of the splitmix64 mixer (64-bit)."""
    z = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def fnv1a64(data: bytes) -> int:
    """64-bit FNV-1a hash."""
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & MASK
    return h


def tiekey(host_id: str, seed: int) -> int:
    """The key that orders hosts of equal score (lowest first) for a given seed."""
    return splitmix64(fnv1a64(str.encode(host_id, "utf-8")) ^ splitmix64(seed & MASK))  # the text, a subclass too
